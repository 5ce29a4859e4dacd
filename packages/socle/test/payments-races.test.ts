import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LedgerService, type PaymentsService, tenantSettings } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createOutboundModule } from '../src/modules/outbound/index.js';
import { createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import {
  createTestSocle,
  type FakeBtcpay,
  type FakeStripe,
  type StripeEvent,
  startFakeBtcpay,
  startFakeStripe,
  TEST_SECRET_KEY,
  type TestDatabase,
  type TestSocle,
  type TestTenant,
} from '../src/testing/index.js';
import { createPaymentsTestModules } from './fixtures/payments-module.js';
import { callAs } from './support/api-client.js';
import { killCliProcesses, spawnCli } from './support/cli-process.js';
import { postgresTarget } from './support/each-database.js';

const PAYMENTS_MODULE = fileURLToPath(new URL('./fixtures/payments-module.ts', import.meta.url));

// Postgres only: races need many database sessions (PGlite has one), and servers are processes.
describe.skipIf(!postgresTarget.available)('Payments under concurrency and crashes [postgres]', () => {
  let database: TestDatabase;
  let socle: TestSocle;
  let stripe: FakeStripe;
  let btcpay: FakeBtcpay;
  let payments: PaymentsService;
  let ledger: LedgerService;
  let baseUrl: string;
  const [ledgerModule, paymentsModule, shopModule] = createPaymentsTestModules(['stripe', 'btcpay']);
  // At most 64 sockets to the server, reused: 2,000 deliveries in flight without 2,000 connections.
  const agent = new Agent({ connections: 64, pipelining: 1 });
  afterEach(killCliProcesses);

  beforeAll(async () => {
    database = await postgresTarget.create();
    stripe = await startFakeStripe();
    btcpay = await startFakeBtcpay();
    socle = await createTestSocle(postgresTarget, {
      database,
      settings: {
        payments: {
          ...stripe.paymentsSettings(),
          ...btcpay.paymentsSettings(),
        },
      },
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createOutboundModule(),
        createRealtimeModule(),
        ledgerModule,
        paymentsModule,
        shopModule,
      ],
      config: { databasePoolMax: 20, jobsQueues: [] },
    });
    payments = socle.servicesOf(paymentsModule).payments;
    ledger = socle.servicesOf(ledgerModule).ledger;
    baseUrl = await socle.listen();
  }, 60_000);
  afterAll(async () => {
    await agent.close();
    await socle?.dispose();
    await database?.drop();
    await stripe?.close();
    await btcpay?.close();
  });

  const checkout = async (tenant: TestTenant, productId: string) => {
    const response = await callAs(socle, tenant.owner, 'POST', '/payments/checkout', {
      orgId: tenant.id,
      payload: { productId, successUrl: 'https://app.test/ok', cancelUrl: 'https://app.test/cancel' },
    });
    expect(response.statusCode).toBe(201);
    const body = response.json() as { id: string; providerReference: string };
    return { paymentId: body.id, sessionId: body.providerReference };
  };
  const deliver = async (url: string, event: StripeEvent) => {
    const { body, headers } = stripe.sign(event);
    const answer = await request(`${url}/payments/webhooks/stripe`, {
      method: 'POST',
      headers,
      body,
      dispatcher: agent,
    });
    await answer.body.dump();
    return answer.statusCode;
  };
  const inTenant = <T>(tenant: TestTenant, work: Parameters<typeof socle.db.transaction<T>>[0]) =>
    socle.db.transaction(work, { settings: tenantSettings({ tenantId: tenant.id }) });
  const walletOf = (tenant: TestTenant, unit: string) =>
    inTenant(tenant, async (trx) => {
      const accounts = await ledger.accounts(trx, { ownerUserId: tenant.owner.userId });
      return accounts.find((account) => account.unit === unit);
    });
  const historyOf = async (tenant: TestTenant, accountId: string) =>
    (await inTenant(tenant, (trx) => ledger.history(trx, accountId, { limit: 100 }))).transfers;

  it('posts once under a storm: the payment 1,000× and its refund 1,000×, concurrently, refund first or not', async () => {
    const tenant = await socle.newTenant();
    const { paymentId, sessionId } = await checkout(tenant, 'coins-500');
    const [completed] = stripe.completeCheckout(sessionId) as [StripeEvent];
    const charge = stripe.chargeOf(sessionId);
    charge.amount_refunded = 100;
    const refunded = {
      ...completed,
      id: `evt_storm_refund_${paymentId.slice(0, 8)}`,
      type: 'charge.refunded',
      created: completed.created + 1,
      data: { object: structuredClone(charge) },
    } as StripeEvent;
    // Interleaved: refunds arrive before, among and after the payment's copies.
    const storm = Array.from({ length: 2000 }, (_, index) => (index % 2 === 0 ? refunded : completed));
    const statuses = await Promise.all(storm.map((event) => deliver(baseUrl, event)));
    expect(statuses.filter((status) => status !== 200)).toEqual([]);

    const wallet = await walletOf(tenant, 'coins');
    // 500 credited, floor(500 × 100 / 499) = 100 reversed.
    expect(wallet?.balance.posted).toBe(400n);
    const transfers = await historyOf(tenant, wallet?.id as string);
    expect(transfers.map((transfer) => transfer.id).sort()).toEqual([
      `payments:${paymentId}:credit`,
      `payments:${paymentId}:reversal:0`,
    ]);
    const { rows } = await socle.db.withConnection(
      (connection) =>
        connection.query<{ outcome: string }>(
          'select outcome from payments.events where payment_id = $1 order by occurred_at',
          [paymentId],
        ),
      'owner',
    );
    // Two events stored (of 2,000 deliveries); which applied the reversal depends on who won.
    expect([
      ['paid', 'refund_recorded'],
      ['paid', 'refunded'],
    ]).toContainEqual(rows.map((row) => row.outcome).sort());
    expect((await ledger.check()).ok).toBe(true);
  }, 180_000);

  it('credits a Bitcoin pack once when BTCPay redelivers its settlement 1,000× concurrently, each with a new delivery id', async () => {
    const tenant = await socle.newTenant();
    const invoice = await socle.scope.run({ tenantId: tenant.id }, () =>
      payments.createInvoice({
        provider: 'btcpay',
        orderId: 'storm',
        amount: 499,
        currency: 'EUR',
        productId: 'coins-500',
        userId: tenant.owner.userId,
      }),
    );
    btcpay.settle(invoice.providerReference);
    const statuses = await Promise.all(
      Array.from({ length: 1000 }, async (_, index) => {
        const { body, headers } = btcpay.sign(
          invoice.providerReference,
          index % 2 === 0 ? 'InvoiceSettled' : 'InvoicePaymentSettled',
          { redelivery: index > 1 },
        );
        const answer = await request(`${baseUrl}/payments/webhooks/btcpay`, {
          method: 'POST',
          headers,
          body,
          dispatcher: agent,
        });
        await answer.body.dump();
        return answer.statusCode;
      }),
    );
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
    const wallet = await walletOf(tenant, 'coins');
    expect(wallet?.balance.posted).toBe(500n);
    expect(await historyOf(tenant, wallet?.id as string)).toHaveLength(1);
    expect((await ledger.check()).ok).toBe(true);
  }, 180_000);

  it('applies a webhook once when the server is killed -9 while applying it and the provider redelivers', async () => {
    const tenant = await socle.newTenant();
    const { paymentId, sessionId } = await checkout(tenant, 'coins-500');
    const [completed] = stripe.completeCheckout(sessionId) as [StripeEvent];
    const env = {
      DATABASE_URL: database.url as string,
      SECRET_KEY: TEST_SECRET_KEY,
      SOCLE_MODULES: PAYMENTS_MODULE,
      PAYMENTS_STRIPE_SECRET_KEY: stripe.secretKey,
      PAYMENTS_STRIPE_WEBHOOK_SECRETS: stripe.webhookSecret,
      PAYMENTS_STRIPE_API_URL: stripe.url,
      JOBS_QUEUES: '',
    };
    const first = spawnCli(['start'], { env: { ...env, PAYMENTS_TEST_PAUSE: '1' } });
    const firstUrl = (
      await first.waitForLog(
        (line) => typeof line.url === 'string' && line.msg.includes('listening'),
        120_000,
      )
    ).url as string;
    const lost = deliver(firstUrl, completed).catch(() => 'connection lost');
    // Killed with the event row and the ledger credit written but not committed.
    await first.waitForLog((line) => line.msg === 'Payment applying' && line.paymentId === paymentId, 60_000);
    first.signal('SIGKILL');
    await first.waitForExit(10_000);
    expect(await lost).toBe('connection lost');
    // Nothing of the killed transaction committed: the wallet (opened at checkout) holds nothing.
    const before = await walletOf(tenant, 'coins');
    expect(before?.balance.posted).toBe(0n);
    expect(await historyOf(tenant, before?.id as string)).toEqual([]);

    const second = spawnCli(['start'], { env });
    const secondUrl = (
      await second.waitForLog(
        (line) => typeof line.url === 'string' && line.msg.includes('listening'),
        120_000,
      )
    ).url as string;
    expect(await deliver(secondUrl, completed)).toBe(200);
    expect(await deliver(secondUrl, completed)).toBe(200);
    const wallet = await walletOf(tenant, 'coins');
    expect(wallet?.balance.posted).toBe(500n);
    expect(await historyOf(tenant, wallet?.id as string)).toHaveLength(1);
    expect(await socle.scope.run({ tenantId: tenant.id }, () => payments.payment(paymentId))).toMatchObject({
      status: 'succeeded',
    });
  }, 300_000);
});
