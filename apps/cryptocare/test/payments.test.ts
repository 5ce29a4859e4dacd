import { testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCryptoCare } from './cryptocare-fixture.js';

const targets = await testDatabaseTargets();
const ZURICH = { latitude: 47.3769, longitude: 8.5417 };

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'CryptoCare paid through the payments module (fake BTCPay) [%s]',
  (_, target) => {
    let app: Awaited<ReturnType<typeof startCryptoCare>>;
    beforeAll(async () => {
      if (!target.available) return;
      app = await startCryptoCare(target, { now: new Date('2026-03-23T08:00:00Z') });
    });
    afterAll(() => app?.dispose());

    async function book(startsAt: string) {
      const { tenant, professionalId } = await app.newPractice({ ...ZURICH, priceChfCents: 12_000 });
      const patient = await app.socle.newUser();
      const held = await app.call(patient, 'POST', '/cryptocare/appointments', {
        payload: { professionalId, startsAt },
      });
      expect(held.statusCode, held.body).toBe(201);
      const { appointment, invoice } = held.json();
      // The processor's invoice for the appointment (its own id is what its webhooks name).
      const atProcessor = [...app.btcpay.invoices.values()].find(
        (candidate) => candidate.metadata.orderId === `appointment:${appointment.id}`,
      );
      if (atProcessor === undefined) throw new Error('no BTCPay invoice for the appointment');
      const status = async () =>
        (await app.call(patient, 'GET', `/cryptocare/appointments/${appointment.id}`)).json();
      return { tenant, professionalId, patient, appointment, invoice, atProcessor, status };
    }

    /** The Zoom jobs queued for the appointment (one per confirmation). */
    const jobsOf = async (appointmentId: string) =>
      (await app.socle.jobs.list({ tenantId: null, limit: 1000 })).filter(
        (job) =>
          job.name === 'cryptocare.syncMeeting' &&
          (job.payload as { appointmentId?: string }).appointmentId === appointmentId,
      ).length;

    it.skipIf(!target.available)(
      'book → invoice in CHF → settled at the processor → webhook → confirmed once, whatever the redeliveries and their order',
      async () => {
        const { appointment, invoice, atProcessor, status } = await book('2026-03-25T07:00:00.000Z');
        // The invoice: CHF at the processor, the hold's expiry, sats at its rate, BIP21 with Lightning, a QR.
        expect(atProcessor).toMatchObject({ amount: '120.00', currency: 'CHF', status: 'New' });
        expect(invoice).toMatchObject({ amountSats: 240_000 });
        expect(invoice.paymentUri).toMatch(/^bitcoin:[^?]+\?amount=0\.0024&lightning=/i);
        expect(invoice.qrSvg).toContain('<svg');
        expect(appointment.invoiceId).toBe(invoice.invoiceId);

        // Reordered: both "settled" types arrive before the processor settled it, then a
        // payment-received; none may keep the real settlement, delivered later, from applying.
        for (const type of ['InvoiceSettled', 'InvoicePaymentSettled', 'InvoiceReceivedPayment'])
          expect((await app.btcpayWebhook(atProcessor.id, type)).statusCode).toBe(200);
        expect((await status()).status).toBe('held');

        app.btcpay.settle(atProcessor.id);
        // Duplicated, concurrently, under both settlement types, with an older event type after them.
        const deliveries = await Promise.all(
          Array.from({ length: 8 }, (_, index) =>
            app.btcpayWebhook(atProcessor.id, index % 2 === 0 ? 'InvoiceSettled' : 'InvoicePaymentSettled'),
          ),
        );
        expect(deliveries.map((response) => response.statusCode)).toEqual(Array(8).fill(200));
        expect((await status()).status).toBe('confirmed');
        expect((await app.btcpayWebhook(atProcessor.id, 'InvoiceProcessing')).statusCode).toBe(200);
        expect(await status()).toMatchObject({
          status: 'confirmed',
          paymentFlag: null,
          invoiceId: invoice.invoiceId,
        });
        // Confirmed once: one Zoom job, queued in the payment event's transaction.
        expect(await jobsOf(appointment.id)).toBe(1);
      },
    );

    it.skipIf(!target.available)(
      'an invoice expired at the processor releases the slot at once; a payment after that is flagged late',
      async () => {
        const { professionalId, appointment, atProcessor, status } = await book('2026-03-26T07:00:00.000Z');
        app.btcpay.expire(atProcessor.id);
        expect((await app.btcpayWebhook(atProcessor.id, 'InvoiceExpired')).statusCode).toBe(200);
        expect((await app.btcpayWebhook(atProcessor.id, 'InvoiceExpired')).statusCode).toBe(200);
        expect((await status()).status).toBe('expired');
        // The slot is free again for another patient, before the hold's own time ran out.
        const other = await app.socle.newUser();
        const again = await app.call(other, 'POST', '/cryptocare/appointments', {
          payload: { professionalId, startsAt: '2026-03-26T07:00:00.000Z' },
        });
        expect(again.statusCode, again.body).toBe(201);

        // The first patient's coins arrive late (BTCPay settles an expired invoice paid late).
        app.btcpay.settle(atProcessor.id);
        expect((await app.btcpayWebhook(atProcessor.id, 'InvoiceSettled')).statusCode).toBe(200);
        expect(await status()).toMatchObject({ status: 'expired', paymentFlag: 'late_payment' });
        expect(await jobsOf(appointment.id)).toBe(0);
      },
    );

    it.skipIf(!target.available)(
      'an underpaid invoice is shown to the patient with what is missing and never confirmed; the rest in time confirms, expired underpaid frees the slot',
      async () => {
        const { professionalId, atProcessor, status } = await book('2026-03-30T07:00:00.000Z');
        // 120 CHF = 240,000 sats; the wallet sends 100,000 (BTCPay: InvoiceReceivedPayment).
        expect(app.btcpay.pay(atProcessor.id, 100_000)).toEqual(['InvoiceReceivedPayment']);
        for (let i = 0; i < 2; i++)
          expect((await app.btcpayWebhook(atProcessor.id, 'InvoiceReceivedPayment')).statusCode).toBe(200);
        expect(await status()).toMatchObject({
          status: 'held',
          paymentFlag: 'underpaid',
          receivedSats: 100_000,
          missingSats: 140_000,
        });
        // The invoice expires partly paid (InvoiceExpired, partiallyPaid): never confirmed, the
        // hold ends and the slot is free; the practice sees the flag and the amounts.
        app.btcpay.expire(atProcessor.id);
        for (const type of ['InvoiceExpired', 'InvoiceSettled', 'InvoiceExpired'])
          expect((await app.btcpayWebhook(atProcessor.id, type)).statusCode).toBe(200);
        expect(await status()).toMatchObject({
          status: 'expired',
          paymentFlag: 'underpaid',
          receivedSats: 100_000,
          missingSats: 140_000,
        });
        const other = await app.socle.newUser();
        const again = await app.call(other, 'POST', '/cryptocare/appointments', {
          payload: { professionalId, startsAt: '2026-03-30T07:00:00.000Z' },
        });
        expect(again.statusCode, again.body).toBe(201);

        // Another booking: part, then the rest before the hold ends → confirmed once, flag cleared.
        const second = await book('2026-03-31T07:00:00.000Z');
        app.btcpay.pay(second.atProcessor.id, 40_000);
        expect((await app.btcpayWebhook(second.atProcessor.id, 'InvoiceReceivedPayment')).statusCode).toBe(
          200,
        );
        expect(await second.status()).toMatchObject({ status: 'held', missingSats: 200_000 });
        expect(app.btcpay.pay(second.atProcessor.id, 200_000)).toEqual([
          'InvoiceReceivedPayment',
          'InvoiceSettled',
        ]);
        for (const type of ['InvoiceReceivedPayment', 'InvoiceSettled'])
          expect((await app.btcpayWebhook(second.atProcessor.id, type)).statusCode).toBe(200);
        expect(await second.status()).toMatchObject({
          status: 'confirmed',
          paymentFlag: null,
          missingSats: null,
        });
        expect(await jobsOf(second.appointment.id)).toBe(1);
      },
    );

    it.skipIf(!target.available)(
      'a settlement applied after the hold ran out is flagged late, never confirmed',
      async () => {
        const { atProcessor, status } = await book('2026-03-27T07:00:00.000Z');
        app.clock.advance(20 * 60_000);
        app.btcpay.settle(atProcessor.id);
        expect((await app.btcpayWebhook(atProcessor.id, 'InvoiceSettled')).statusCode).toBe(200);
        expect(await status()).toMatchObject({ status: 'expired', paymentFlag: 'late_payment' });
      },
    );

    it.skipIf(!target.available)(
      'a processor that cannot open the invoice answers its error and leaves the slot free',
      async () => {
        const { professionalId } = await app.newPractice({ ...ZURICH });
        const patient = await app.socle.newUser();
        const startsAt = '2026-03-28T07:00:00.000Z';
        app.btcpay.api.failAll({ status: 500 });
        const refused = await app.call(patient, 'POST', '/cryptocare/appointments', {
          payload: { professionalId, startsAt },
        });
        // BTCPay's calls go through the outbound module: its retries spent, its error answers.
        expect(refused.statusCode, refused.body).toBe(502);
        expect(refused.json().code).toBe('outbound.unavailable');
        app.btcpay.api.recover();
        const again = await app.call(patient, 'POST', '/cryptocare/appointments', {
          payload: { professionalId, startsAt },
        });
        expect(again.statusCode, again.body).toBe(201);
        expect(again.json().invoice.paymentUri).toMatch(/^bitcoin:/);
      },
    );
  },
);
