import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLedgerModule,
  createPaymentsModule,
  defineModule,
  type Payment,
  type PaymentsServices,
  type SetupContext,
  sql,
  tenantSettings,
} from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createOutboundModule } from '../src/modules/outbound/index.js';
import { createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import {
  createTestSocle,
  type FakeBtcpay,
  type FakeSwissBitcoinPay,
  startFakeBtcpay,
  startFakeSwissBitcoinPay,
  type TestSocle,
  type TestTenant,
} from '../src/testing/index.js';
import { paymentsTestCatalog } from './fixtures/payments-module.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

const SBP_SECRET = 'sbp-webhook-secret-0123456789';

describeEachDatabase('Payments in Bitcoin', (target) => {
  let socle: TestSocle;
  let btcpay: FakeBtcpay;
  let swiss: FakeSwissBitcoinPay;
  let baseUrl: string;
  const ledgerModule = createLedgerModule();
  const paymentsModule = createPaymentsModule({
    providers: ['btcpay', 'swiss-bitcoin-pay'],
    catalog: paymentsTestCatalog,
  });
  // An app (a telehealth clinic) told of its orders' settlement and expiry inside the event's transaction.
  const told: { event: string; payment: Payment; inTransaction: boolean }[] = [];
  const clinic = defineModule({
    name: 'clinic',
    dependsOn: ['payments'],
    setup(context: SetupContext) {
      const { payments } = context.servicesOf<PaymentsServices>('payments');
      for (const event of [
        'payment.succeeded',
        'invoice.expired',
        'payment.partially_paid',
        'payment.underpaid',
      ] as const)
        payments.on(event, async (trx, payment) => {
          // The event's transaction has written (the event row): it holds a transaction id.
          const { rows } = await sql<{
            id: string | null;
          }>`select txid_current_if_assigned()::text as id`.execute(trx);
          told.push({ event, payment, inTransaction: rows[0]?.id != null });
        });
      return {};
    },
  });

  beforeAll(async () => {
    btcpay = await startFakeBtcpay();
    swiss = await startFakeSwissBitcoinPay();
    socle = await createTestSocle(target, {
      settings: {
        payments: {
          ...btcpay.paymentsSettings(),
          swissBitcoinPayUrl: swiss.url,
          swissBitcoinPayApiKey: swiss.apiKey,
          swissBitcoinPayWebhookSecret: SBP_SECRET,
          publicUrl: 'https://shop.example/',
        },
      },
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createOutboundModule(),
        createRealtimeModule(),
        ledgerModule,
        paymentsModule,
        clinic,
      ],
    });
    baseUrl = await socle.listen();
  });
  afterAll(async () => {
    await socle?.dispose();
    await btcpay?.close();
    await swiss?.close();
  });

  const payments = () => socle.servicesOf(paymentsModule).payments;
  const inTenant = <T>(tenant: TestTenant, work: () => Promise<T>) =>
    socle.scope.run({ tenantId: tenant.id }, work);
  const invoiceFor = (tenant: TestTenant, orderId: string, provider = 'btcpay', amount = 4500n) =>
    inTenant(tenant, () =>
      payments().createInvoice({
        provider,
        orderId,
        amount,
        currency: 'EUR',
        userId: tenant.owner.userId,
        description: 'Consultation',
        metadata: { appointmentId: orderId },
      }),
    );
  const eventRows = async (paymentId: string) =>
    (
      await socle.db.withConnection(
        (connection) =>
          connection.query<{ event_id: string; outcome: string }>(
            'select event_id, outcome from payments.events where payment_id = $1 order by received_at',
            [paymentId],
          ),
        'owner',
      )
    ).rows;
  const webhook = (provider: string) => `${baseUrl}/payments/webhooks/${provider}`;

  describe('BTCPay Greenfield', () => {
    it('opens an invoice for an order: sats and fiat, expiry, BIP21 with Lightning; the same order is the same invoice', async () => {
      const tenant = await socle.newTenant();
      const invoice = await invoiceFor(tenant, 'appointment:1');
      // 45.00 EUR at 50,000 EUR/BTC.
      expect(invoice).toMatchObject({
        kind: 'invoice',
        status: 'pending',
        amount: 4500n,
        currency: 'EUR',
        amountSats: 90_000n,
      });
      const created = btcpay.invoices.get(invoice.providerReference);
      expect(created?.amount).toBe('45.00');
      expect(invoice.paymentUri).toMatch(/^bitcoin:bcrt1q[a-z0-9]+\?amount=0\.0009&lightning=lnbcrt90000n1p/);
      expect(invoice.expiresAt?.getTime()).toBe((created?.expirationTime ?? 0) * 1000);
      expect((await invoiceFor(tenant, 'appointment:1')).id).toBe(invoice.id);
      await expect(invoiceFor(tenant, 'appointment:1', 'btcpay', 9900n)).rejects.toMatchObject({
        code: 'payments.order_exists',
        status: 409,
      });
      await expect(
        socle.scope.run({}, () => payments().createInvoice({ orderId: 'x', amount: 1, currency: 'EUR' })),
      ).rejects.toMatchObject({ code: 'payments.tenant_required' });
    });

    it('serves the QR code of the payment URI as PNG and SVG to its buyer only', async () => {
      const tenant = await socle.newTenant();
      const invoice = await invoiceFor(tenant, 'appointment:qr');
      const svg = await callAs(socle, tenant.owner, 'GET', `/payments/payments/${invoice.id}/qr.svg`, {
        orgId: tenant.id,
      });
      expect(svg.statusCode).toBe(200);
      expect(svg.headers['content-type']).toBe('image/svg+xml');
      expect(svg.body).toMatch(/^<svg /);
      const png = await callAs(socle, tenant.owner, 'GET', `/payments/payments/${invoice.id}/qr.png`, {
        orgId: tenant.id,
      });
      expect(png.headers['content-type']).toBe('image/png');
      expect(png.rawPayload.subarray(0, 8)).toEqual(
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      );
      const other = await socle.newMember(tenant);
      const refused = await callAs(socle, other, 'GET', `/payments/payments/${invoice.id}/qr.svg`, {
        orgId: tenant.id,
      });
      expect(refused.statusCode).toBe(404);
    });

    it('tells the app of a settlement once, inside the transaction, whatever the redeliveries (new delivery ids)', async () => {
      const tenant = await socle.newTenant();
      const invoice = await invoiceFor(tenant, 'appointment:2');
      btcpay.settle(invoice.providerReference);
      const statuses = await Promise.all(
        Array.from({ length: 30 }, (_, index) =>
          btcpay.deliver(
            webhook('btcpay'),
            invoice.providerReference,
            index % 3 === 0 ? 'InvoicePaymentSettled' : 'InvoiceSettled',
            {
              redelivery: index > 0,
            },
          ),
        ),
      );
      expect(statuses.every((status) => status === 200)).toBe(true);
      const mine = told.filter((entry) => entry.payment.id === invoice.id);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatchObject({
        event: 'payment.succeeded',
        inTransaction: true,
        payment: {
          orderId: 'appointment:2',
          status: 'succeeded',
          metadata: { appointmentId: 'appointment:2' },
        },
      });
      expect((await eventRows(invoice.id)).map((row) => row.event_id)).toEqual([
        `${invoice.providerReference}:Settled`,
      ]);
    });

    it('believes the invoice, not the delivery: a settled event for an unpaid invoice settles nothing', async () => {
      const tenant = await socle.newTenant();
      const invoice = await invoiceFor(tenant, 'appointment:3');
      expect(await btcpay.deliver(webhook('btcpay'), invoice.providerReference, 'InvoiceSettled')).toBe(200);
      expect(await inTenant(tenant, () => payments().payment(invoice.id))).toMatchObject({
        status: 'pending',
      });
      expect(told.filter((entry) => entry.payment.id === invoice.id)).toEqual([]);
      // Paid afterwards: the early delivery did not swallow the real one.
      btcpay.settle(invoice.providerReference);
      expect(await btcpay.deliver(webhook('btcpay'), invoice.providerReference, 'InvoiceSettled')).toBe(200);
      expect(await btcpay.deliver(webhook('btcpay'), invoice.providerReference, 'InvoiceSettled')).toBe(200);
      expect(told.filter((entry) => entry.payment.id === invoice.id).map((entry) => entry.event)).toEqual([
        'payment.succeeded',
      ]);
    });

    it('refuses a bad BTCPay-Sig and an unknown event type with 400, storing nothing', async () => {
      const tenant = await socle.newTenant();
      const invoice = await invoiceFor(tenant, 'appointment:4');
      btcpay.settle(invoice.providerReference);
      expect(
        await btcpay.deliver(webhook('btcpay'), invoice.providerReference, 'InvoiceSettled', {
          secret: 'wrong',
        }),
      ).toBe(400);
      expect(await btcpay.deliver(webhook('btcpay'), invoice.providerReference, 'StoreUpdated')).toBe(400);
      const unsigned = await fetch(webhook('btcpay'), {
        method: 'POST',
        body: '{}',
        headers: { 'content-type': 'application/json' },
      });
      expect(unsigned.status).toBe(400);
      expect(await eventRows(invoice.id)).toEqual([]);
      const unknown = await fetch(`${baseUrl}/payments/webhooks/paypal`, { method: 'POST', body: '{}' });
      expect(unknown.status).toBe(404);
    });

    it('expires an unpaid invoice: the app and the buyer are told once', async () => {
      const tenant = await socle.newTenant();
      const invoice = await invoiceFor(tenant, 'appointment:5');
      btcpay.expire(invoice.providerReference);
      expect(await btcpay.deliver(webhook('btcpay'), invoice.providerReference, 'InvoiceExpired')).toBe(200);
      expect(await btcpay.deliver(webhook('btcpay'), invoice.providerReference, 'InvoiceExpired')).toBe(200);
      expect(await inTenant(tenant, () => payments().payment(invoice.id))).toMatchObject({
        status: 'expired',
      });
      expect(told.filter((entry) => entry.payment.id === invoice.id).map((entry) => entry.event)).toEqual([
        'invoice.expired',
      ]);
    });

    it('carries what a partly paid invoice received to the app, never credits an underpaid one, and settles an overpaid one once', async () => {
      const tenant = await socle.newTenant();
      const eventsOf = (paymentId: string) =>
        told.filter((entry) => entry.payment.id === paymentId).map((entry) => entry.event);
      // 45.00 EUR at the fake's rate: 90,000 sats. A wallet sends 30,000, then the invoice expires.
      const invoice = await invoiceFor(tenant, 'appointment:underpaid');
      expect(invoice.amountSats).toBe(90_000n);
      const reference = invoice.providerReference;
      expect(btcpay.pay(reference, 30_000)).toEqual(['InvoiceReceivedPayment']);
      for (let i = 0; i < 2; i++)
        expect(
          await btcpay.deliver(webhook('btcpay'), reference, 'InvoiceReceivedPayment', { redelivery: i > 0 }),
        ).toBe(200);
      expect(await inTenant(tenant, () => payments().payment(invoice.id))).toMatchObject({
        status: 'partially_paid',
        receivedSats: 30_000n,
      });
      const partial = told.find((entry) => entry.payment.id === invoice.id);
      expect(partial).toMatchObject({ event: 'payment.partially_paid', inTransaction: true });
      expect(partial?.payment).toMatchObject({ receivedSats: 30_000n, amountSats: 90_000n });
      btcpay.expire(reference);
      // A forged or early "settled" delivery changes nothing: the invoice read back is expired.
      for (const type of ['InvoiceExpired', 'InvoiceSettled', 'InvoiceExpired'])
        expect(await btcpay.deliver(webhook('btcpay'), reference, type)).toBe(200);
      expect(await inTenant(tenant, () => payments().payment(invoice.id))).toMatchObject({
        status: 'underpaid',
        receivedSats: 30_000n,
        settledAt: null,
      });
      expect(eventsOf(invoice.id)).toEqual(['payment.partially_paid', 'payment.underpaid']);

      // Paid in two parts, the second more than enough: settled (overpaid) once, told paid once.
      const over = await invoiceFor(tenant, 'appointment:overpaid');
      expect(btcpay.pay(over.providerReference, 40_000)).toEqual(['InvoiceReceivedPayment']);
      expect(btcpay.pay(over.providerReference, 60_000)).toEqual([
        'InvoiceReceivedPayment',
        'InvoiceSettled',
      ]);
      for (const type of ['InvoiceSettled', 'InvoiceReceivedPayment', 'InvoiceSettled'])
        expect(await btcpay.deliver(webhook('btcpay'), over.providerReference, type)).toBe(200);
      expect(await inTenant(tenant, () => payments().payment(over.id))).toMatchObject({
        status: 'succeeded',
        receivedSats: 100_000n,
      });
      expect(eventsOf(over.id)).toEqual(['payment.succeeded']);
    });

    it('credits a pack bought in Bitcoin through the route, once', async () => {
      const tenant = await socle.newTenant();
      const created = await callAs(socle, tenant.owner, 'POST', '/payments/invoices', {
        orgId: tenant.id,
        payload: { productId: 'coins-500', provider: 'btcpay' },
      });
      expect(created.statusCode).toBe(201);
      const invoice = created.json() as { id: string; providerReference: string; amountSats: string };
      expect(invoice.amountSats).toBe('9980'); // 4.99 EUR
      btcpay.settle(invoice.providerReference);
      expect(await btcpay.deliver(webhook('btcpay'), invoice.providerReference, 'InvoiceSettled')).toBe(200);
      expect(
        await btcpay.deliver(webhook('btcpay'), invoice.providerReference, 'InvoiceSettled', {
          redelivery: true,
        }),
      ).toBe(200);
      const balance = await socle.db.transaction(
        async (trx) =>
          (await socle.servicesOf(ledgerModule).ledger.accounts(trx, { ownerUserId: tenant.owner.userId }))[0]
            ?.balance.posted,
        { settings: tenantSettings({ tenantId: tenant.id }) },
      );
      expect(balance).toBe(500n);
      const unknown = await callAs(socle, tenant.owner, 'POST', '/payments/invoices', {
        orgId: tenant.id,
        payload: { productId: 'nope' },
      });
      expect(unknown.statusCode).toBe(404);
    });
  });

  describe('Swiss Bitcoin Pay', () => {
    it('opens a checkout with our webhook URL and secret, in sats with a Lightning invoice', async () => {
      const tenant = await socle.newTenant();
      const invoice = await invoiceFor(tenant, 'appointment:s1', 'swiss-bitcoin-pay', 2500n);
      expect(invoice.amountSats).toBe(50_000n);
      expect(invoice.paymentUri).toMatch(/^bitcoin:bc1q[a-z0-9]+\?amount=0\.0005&lightning=lnbc50000n1p/);
      const checkout = swiss.checkouts.get(invoice.providerReference);
      expect(checkout?.webhook).toEqual({
        url: 'https://shop.example/payments/webhooks/swiss-bitcoin-pay',
        headers: { 'X-Webhook-Secret': SBP_SECRET },
      });
      expect(checkout?.amount).toBe(50_000);
    });

    it('authenticates a webhook by its secret and re-reads the checkout: a forged "paid" body pays nothing', async () => {
      const tenant = await socle.newTenant();
      const invoice = await invoiceFor(tenant, 'appointment:s2', 'swiss-bitcoin-pay', 2500n);
      const url = webhook('swiss-bitcoin-pay');
      const id = invoice.providerReference;
      expect(
        await swiss.deliver(id, { url, headers: { 'x-webhook-secret': 'guess' }, body: { isPaid: true } }),
      ).toBe(400);
      expect(await swiss.deliver(id, { url, headers: {} })).toBe(400);
      expect(await eventRows(invoice.id)).toEqual([]);
      // With the secret but a lie in the body: the API says unpaid.
      expect(
        await swiss.deliver(id, { url, headers: { 'x-webhook-secret': SBP_SECRET }, body: { isPaid: true } }),
      ).toBe(200);
      expect(await inTenant(tenant, () => payments().payment(invoice.id))).toMatchObject({
        status: 'pending',
      });
      swiss.pay(id);
      expect(await swiss.deliver(id, { url: `${url}?secret=${SBP_SECRET}`, headers: {} })).toBe(200);
      expect(await swiss.deliver(id, { url, headers: { 'x-webhook-secret': SBP_SECRET } })).toBe(200);
      expect(await inTenant(tenant, () => payments().payment(invoice.id))).toMatchObject({
        status: 'succeeded',
      });
      expect(told.filter((entry) => entry.payment.id === invoice.id)).toHaveLength(1);
    });

    it('recovers a settlement whose webhook never came by re-reading open invoices', async () => {
      const tenant = await socle.newTenant();
      const invoice = await invoiceFor(tenant, 'appointment:s3', 'swiss-bitcoin-pay', 2500n);
      swiss.pay(invoice.providerReference);
      const first = await payments().backfill(new Date());
      expect(first.applied).toBeGreaterThanOrEqual(1);
      expect(await inTenant(tenant, () => payments().payment(invoice.id))).toMatchObject({
        status: 'succeeded',
      });
      await payments().backfill(new Date());
      expect(told.filter((entry) => entry.payment.id === invoice.id)).toHaveLength(1);
    });
  });
});
