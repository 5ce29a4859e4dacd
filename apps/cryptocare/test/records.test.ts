import { sql } from 'socle';
import { TEST_PASSWORD, testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCryptoCare } from './cryptocare-fixture.js';

const targets = await testDatabaseTargets();
const ZURICH = { latitude: 47.3769, longitude: 8.5417 };

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'CryptoCare notes, reminders and privacy [%s]',
  (_, target) => {
    let app: Awaited<ReturnType<typeof startCryptoCare>>;
    beforeAll(async () => {
      if (!target.available) return;
      app = await startCryptoCare(target, { now: new Date('2026-03-23T08:00:00Z') });
    });
    afterAll(() => app?.dispose());

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

    const outbox = async (to: string) =>
      (
        await sql<{
          subject: string;
        }>`select subject from mail.outbox where recipient = ${to} order by created_at, id`.execute(
          app.socle.db.kysely,
        )
      ).rows
        .map((row) => row.subject)
        .filter((subject) => subject.startsWith('Your consultation'));

    it.skipIf(!target.available)('seals notes with the practice key and logs every read', async () => {
      const practice = await app.newPractice({ ...ZURICH });
      const { id } = await confirmed(practice, '2026-03-25T07:00:00.000Z');
      const { professional, tenant } = practice;
      const written = await app.call(professional, 'POST', `/cryptocare/agenda/${id}/notes`, {
        orgId: tenant.id,
        payload: { body: 'Anxiety, follow-up in two weeks' },
      });
      expect(written.statusCode, written.body).toBe(201);
      // At rest: no plain text.
      const stored = await sql<{
        sealed: string;
      }>`select sealed_body as sealed from cryptocare.consultation_notes`.execute(
        app.socle.db.withSettings({ 'app.tenant_id': tenant.id }),
      );
      expect(stored.rows).toHaveLength(1);
      expect(stored.rows[0]?.sealed).not.toContain('Anxiety');
      const read = await app.call(professional, 'GET', `/cryptocare/agenda/${id}/notes`, {
        orgId: tenant.id,
      });
      expect(read.json().notes.map((note: { body: string }) => note.body)).toEqual([
        'Anxiety, follow-up in two weeks',
      ]);
      await app.call(tenant.owner, 'GET', `/cryptocare/agenda/${id}/notes`, { orgId: tenant.id });
      const reads = await app
        .services()
        .notes.reads({ orgId: tenant.id, userId: tenant.owner.userId }, written.json().id);
      expect(reads.map((entry) => entry.readerId)).toEqual([professional.userId, tenant.owner.userId]);
      // Another practice sees nothing and cannot write on this appointment.
      const other = await app.newPractice({ ...ZURICH });
      expect(
        (
          await app.call(other.professional, 'GET', `/cryptocare/agenda/${id}/notes`, {
            orgId: other.tenant.id,
          })
        ).json().notes,
      ).toEqual([]);
      const foreign = await app.call(other.professional, 'POST', `/cryptocare/agenda/${id}/notes`, {
        orgId: other.tenant.id,
        payload: { body: 'x' },
      });
      expect(foreign.json().code).toBe('cryptocare.appointment_not_found');
    });

    it.skipIf(!target.available)(
      'mails confirmations and reminders 24 h and 1 h before, once each',
      async () => {
        const practice = await app.newPractice({ ...ZURICH });
        const { patient } = await confirmed(practice, '2026-03-25T07:00:00.000Z');
        expect(await outbox(patient.email)).toEqual(['Your consultation is confirmed']);
        const { reminders } = app.services();
        // Now 2026-03-23T08:00Z: 47 h before, nothing due.
        expect(await reminders.sendDue()).toBe(0);
        app.clock.set(new Date('2026-03-24T07:30:00Z'));
        expect(await reminders.sendDue()).toBeGreaterThanOrEqual(1);
        expect(await reminders.sendDue()).toBe(0);
        app.clock.set(new Date('2026-03-25T06:10:00Z'));
        expect(await reminders.sendDue()).toBeGreaterThanOrEqual(1);
        expect(await outbox(patient.email)).toEqual([
          'Your consultation is confirmed',
          'Your consultation tomorrow',
          'Your consultation in one hour',
        ]);
        expect(app.module.jobs?.remind?.cron).toBe('*/5 * * * *');
      },
    );

    it.skipIf(!target.available)(
      "exports a patient's appointments and erases them, keeping the accounting",
      async () => {
        app.clock.set(new Date('2026-03-26T08:00:00Z'));
        const practice = await app.newPractice({ ...ZURICH });
        const { id, patient } = await confirmed(practice, '2026-03-30T06:00:00.000Z');
        const exported = await app.call(patient, 'GET', '/me/export');
        expect(exported.statusCode, exported.body).toBe(200);
        expect(exported.json().modules.cryptocare.appointments.map((a: { id: string }) => a.id)).toEqual([
          id,
        ]);
        const erased = await app.call(patient, 'POST', '/me/erase', { payload: { password: TEST_PASSWORD } });
        expect(erased.statusCode, erased.body).toBe(200);
        const agenda = await app.call(
          practice.professional,
          'GET',
          '/cryptocare/agenda?from=2026-03-30T00:00:00Z&to=2026-03-31T00:00:00Z',
          {
            orgId: practice.tenant.id,
          },
        );
        // The row stays (price, payment) without the person; the future slot is free again.
        expect(agenda.json().appointments).toMatchObject([
          { id, patientId: null, status: 'cancelled', priceChfCents: 12_000 },
        ]);
        const other = await app.socle.newUser();
        expect(
          (
            await app.call(other, 'POST', '/cryptocare/appointments', {
              payload: { professionalId: practice.professionalId, startsAt: '2026-03-30T06:00:00.000Z' },
            })
          ).statusCode,
        ).toBe(201);
      },
    );
  },
);
