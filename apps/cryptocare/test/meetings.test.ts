import { testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startCryptoCare } from './cryptocare-fixture.js';
import { startFakeZoom } from './fake-zoom.js';

const targets = await testDatabaseTargets();
const ZURICH = { latitude: 47.3769, longitude: 8.5417 };
const credentials = { accountId: 'acc-1', clientId: 'client-1', clientSecret: 'secret-1' };

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'CryptoCare Zoom links [%s]',
  (_, target) => {
    let app: Awaited<ReturnType<typeof startCryptoCare>>;
    let zoom: Awaited<ReturnType<typeof startFakeZoom>>;
    beforeAll(async () => {
      if (!target.available) return;
      zoom = await startFakeZoom(credentials);
      app = await startCryptoCare(target, {
        now: new Date('2026-03-23T08:00:00Z'),
        settings: {
          zoomApiUrl: zoom.apiUrl,
          zoomTokenUrl: zoom.tokenUrl,
          zoomAccountId: credentials.accountId,
          zoomClientId: credentials.clientId,
          zoomClientSecret: credentials.clientSecret,
          zoomHosts: ['host-a@clinic.example', 'host-b@clinic.example'],
          zoomMeetingsPerHostPerDay: 2,
        },
      });
    });
    afterAll(async () => {
      await app?.dispose();
      await zoom?.close();
    });

    /** A confirmed (paid) appointment at `startsAt`. */
    async function confirmed(practice: Awaited<ReturnType<typeof app.newPractice>>, startsAt: string) {
      const patient = await app.socle.newUser();
      const hold = await app.call(patient, 'POST', '/cryptocare/appointments', {
        payload: { professionalId: practice.professionalId, startsAt },
      });
      expect(hold.statusCode, hold.body).toBe(201);
      const { id } = hold.json().appointment as { id: string };
      await app.services().booking.paymentSettled({
        appointmentId: id,
        orgId: practice.tenant.id,
        invoiceId: `inv-${id}`,
        paidChfCents: 12_000,
        paidAt: app.clock.now(),
      });
      return { id, patient };
    }

    it.skipIf(!target.available)(
      'creates the link by a job once payment confirms, spread over the host pool, once per appointment',
      async () => {
        const practice = await app.newPractice({ ...ZURICH });
        const first = await confirmed(practice, '2026-03-25T07:00:00.000Z');
        const callsBefore = zoom.calls.length;
        const outcome = await app.socle.jobs.runDueJobs();
        const failed = await app.socle.jobs.list({ tenantId: null, state: 'retry', limit: 10 });
        expect(failed.map((job) => [job.name, job.error])).toEqual([]);
        expect(outcome).toMatchObject({ failed: 0 });
        const seen = await app.call(first.patient, 'GET', `/cryptocare/appointments/${first.id}`);
        expect(seen.json()).toMatchObject({
          status: 'confirmed',
          zoomJoinUrl: expect.stringMatching(/^https:\/\/zoom\.example\/j\//),
        });
        expect(zoom.meetings.filter((m) => m.agenda === `cryptocare:${first.id}`)).toHaveLength(1);
        expect(zoom.meetings.find((m) => m.agenda === `cryptocare:${first.id}`)).toMatchObject({
          start_time: '2026-03-25T07:00:00Z',
          duration: 60,
        });
        expect(zoom.tokenRequests()).toBe(1);
        // A first attempt asks Zoom once: no earlier attempt can have made a meeting (the host is
        // recorded before the call), so the host's meetings are only listed by a retry.
        expect(zoom.calls.slice(callsBefore)).toEqual([
          expect.stringMatching(/^POST \/v2\/users\/host-[ab]%40clinic\.example\/meetings$/),
        ]);

        // Running the sync again (a duplicated job, a redelivered payment) makes nothing more.
        await app.services().booking.paymentSettled({
          appointmentId: first.id,
          orgId: practice.tenant.id,
          invoiceId: `inv-${first.id}`,
          paidChfCents: 12_000,
          paidAt: app.clock.now(),
        });
        expect(await app.services().meetings.sync(first.id, practice.tenant.id)).toBe('unchanged');
        await app.socle.jobs.runDueJobs();
        expect(zoom.meetings.filter((m) => m.agenda === `cryptocare:${first.id}`)).toHaveLength(1);

        // Two meetings per host and day here: the next ones go to the second host, then none is left.
        const second = await confirmed(practice, '2026-03-25T08:00:00.000Z');
        const third = await confirmed(practice, '2026-03-26T07:00:00.000Z');
        await app.socle.jobs.runDueJobs();
        const hosts = [first, second, third].map(
          ({ id }) => zoom.meetings.find((m) => m.agenda === `cryptocare:${id}`)?.host,
        );
        // Jobs of one batch run concurrently: which appointment gets which host varies, the counts do not.
        expect(hosts.sort()).toEqual([
          'host-a@clinic.example',
          'host-a@clinic.example',
          'host-b@clinic.example',
        ]);
        expect(await app.services().meetings.usage('2026-03-23')).toEqual({
          'host-a@clinic.example': 2,
          'host-b@clinic.example': 1,
        });
      },
    );

    it.skipIf(!target.available)(
      'keeps the appointment confirmed while Zoom is down and makes the link once it is back, once',
      async () => {
        // The next day: each host has its day's meetings again.
        app.clock.advance(24 * 60 * 60_000);
        const practice = await app.newPractice({ ...ZURICH });
        const { meetings, booking } = app.services();
        zoom.down();
        const appointment = await confirmed(practice, '2026-03-31T06:00:00.000Z');
        await expect(meetings.sync(appointment.id, practice.tenant.id)).rejects.toMatchObject({
          code: expect.stringMatching(/^outbound\./),
        });
        expect(await booking.get({ userId: appointment.patient.userId }, appointment.id)).toMatchObject({
          status: 'confirmed',
          zoomJoinUrl: null,
        });
        zoom.up();
        // The failures opened the circuit: the breaker reads Date.now(), moved past its half-open delay.
        vi.useFakeTimers({ toFake: ['Date'] });
        vi.setSystemTime(Date.now() + 16_000);
        expect(await meetings.sync(appointment.id, practice.tenant.id)).toBe('created');
        expect(zoom.meetings.filter((m) => m.agenda === `cryptocare:${appointment.id}`)).toHaveLength(1);

        // Zoom made the meeting but its answer was lost: the next attempt finds it, makes no second one.
        const lost = await confirmed(practice, '2026-03-31T07:00:00.000Z');
        zoom.loseNextAnswer();
        await expect(meetings.sync(lost.id, practice.tenant.id)).rejects.toMatchObject({
          code: expect.stringMatching(/^outbound\./),
        });
        expect(zoom.meetings.filter((m) => m.agenda === `cryptocare:${lost.id}`)).toHaveLength(1);
        expect(await meetings.sync(lost.id, practice.tenant.id)).toBe('created');
        expect(zoom.meetings.filter((m) => m.agenda === `cryptocare:${lost.id}`)).toHaveLength(1);
        const stored = await booking.get({ userId: lost.patient.userId }, lost.id);
        expect(stored.zoomJoinUrl).toBe(
          zoom.meetings.find((m) => m.agenda === `cryptocare:${lost.id}`)?.join_url,
        );

        // Rescheduled: the same meeting moves.
        const moved = await app.call(lost.patient, 'POST', `/cryptocare/appointments/${lost.id}/reschedule`, {
          payload: { startsAt: '2026-04-01T07:00:00.000Z' },
        });
        expect(moved.statusCode, moved.body).toBe(200);
        expect(await meetings.sync(lost.id, practice.tenant.id)).toBe('moved');
        expect(
          zoom.meetings.filter((m) => m.agenda === `cryptocare:${lost.id}`).map((m) => m.start_time),
        ).toEqual(['2026-04-01T07:00:00Z']);
        vi.useRealTimers();
      },
    );

    it.skipIf(!target.available)(
      'Zoom down for 30 s during a booking: confirmed at once, the link comes through the job engine after recovery, once',
      async () => {
        // Another day: each host has its day's meetings again.
        app.clock.advance(24 * 60 * 60_000);
        const practice = await app.newPractice({ ...ZURICH });
        const patient = await app.socle.newUser();
        zoom.down();
        const held = await app.call(patient, 'POST', '/cryptocare/appointments', {
          payload: { professionalId: practice.professionalId, startsAt: '2026-04-02T06:00:00.000Z' },
        });
        expect(held.statusCode, held.body).toBe(201);
        const { id } = held.json().appointment as { id: string };
        // Paid: the processor settles the invoice and its webhook reaches the real endpoint.
        const atProcessor = [...app.btcpay.invoices.values()].find(
          (invoice) => invoice.metadata.orderId === `appointment:${id}`,
        );
        if (atProcessor === undefined) throw new Error('no BTCPay invoice for the appointment');
        app.btcpay.settle(atProcessor.id);
        expect((await app.btcpayWebhook(atProcessor.id, 'InvoiceSettled')).statusCode).toBe(200);
        const seen = async () => (await app.call(patient, 'GET', `/cryptocare/appointments/${id}`)).json();
        const meetingsOf = () => zoom.meetings.filter((m) => m.agenda === `cryptocare:${id}`);
        const syncJobs = async () =>
          (await app.socle.jobs.list({ tenantId: null, limit: 1000 })).filter(
            (job) =>
              job.name === 'cryptocare.syncMeeting' &&
              (job.payload as { appointmentId?: string }).appointmentId === id,
          );

        // 30 s of Zoom down on the job engine's clock: the job runs, fails, is retried after its
        // backoff, and once the failures open the circuit it is postponed (attempts kept).
        const refusedBefore = zoom.refusedRequests();
        await app.socle.jobs.runDueJobs({ advanceMs: 30_000 });
        expect(zoom.refusedRequests()).toBeGreaterThan(refusedBefore);
        expect(await seen()).toMatchObject({ status: 'confirmed', zoomJoinUrl: null });
        expect(meetingsOf()).toHaveLength(0);
        const waiting = await syncJobs();
        // Waiting for its next time, not dead: attempts are left (an open circuit spends none).
        expect(waiting.map((job) => job.state)).toEqual([expect.stringMatching(/^(created|retry)$/)]);
        expect(waiting[0]?.attempts).toBeLessThan(waiting[0]?.maxAttempts ?? 0);

        // Zoom is back. The circuit reads Date.now(): moved past its half-open delay, as the 30 s
        // would have; the job's next time comes within the job clock's next minutes.
        zoom.up();
        vi.useFakeTimers({ toFake: ['Date'] });
        try {
          vi.setSystemTime(Date.now() + 30_000);
          await app.socle.jobs.runDueJobs({ advanceMs: 15 * 60_000 });
          const ready = await seen();
          expect(ready).toMatchObject({
            status: 'confirmed',
            zoomJoinUrl: expect.stringMatching(/^https:\/\/zoom\.example\/j\//),
          });
          expect(meetingsOf()).toHaveLength(1);
          expect(ready.zoomJoinUrl).toBe(meetingsOf()[0]?.join_url);
          expect((await syncJobs()).map((job) => job.state)).toEqual(['completed']);
          // Later runs (a redelivered webhook, more time) make no second meeting.
          expect((await app.btcpayWebhook(atProcessor.id, 'InvoiceSettled')).statusCode).toBe(200);
          await app.socle.jobs.runDueJobs({ advanceMs: 60 * 60_000 });
          expect(meetingsOf()).toHaveLength(1);
        } finally {
          vi.useRealTimers();
        }
      },
      120_000,
    );
  },
);
