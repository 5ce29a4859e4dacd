import { sql } from 'socle';
import { testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCryptoCare } from './cryptocare-fixture.js';

const targets = await testDatabaseTargets();
const ZURICH = { latitude: 47.3769, longitude: 8.5417 };
const WINTERTHUR = { latitude: 47.4988, longitude: 8.7237 };
const GENEVA = { latitude: 46.2044, longitude: 6.1432 };
/**
 * Random concurrent holds of the race test, `RACE_CONCURRENCY` in flight at a time. The issue asks
 * 10,000 (`CRYPTOCARE_RACE_BOOKINGS=10000`); by default 3,000, what fits about a minute on the
 * shared 2-core machine at load ≈ 20 (1,000 took 18 s there, 10,000 took 137 s).
 */
const RACE_BOOKINGS = Number(process.env.CRYPTOCARE_RACE_BOOKINGS ?? 3_000);
const RACE_CONCURRENCY = 50;
const RACE_TIMEOUT_MS = Math.max(180_000, RACE_BOOKINGS * 60);

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'CryptoCare booking [%s]',
  (_, target) => {
    // Monday 23 March 2026, 09:00 in Zurich; summer time starts on Sunday 29 March.
    let app: Awaited<ReturnType<typeof startCryptoCare>>;
    beforeAll(async () => {
      if (!target.available) return;
      app = await startCryptoCare(target, { now: new Date('2026-03-23T08:00:00Z'), poolMax: 20 });
    });
    afterAll(() => app?.dispose());

    /** Transactions Postgres rolled back for a concurrent one and Socle ran again, so far. */
    const transactionRetries = async () => {
      const text = (await app.socle.app.inject({ method: 'GET', url: '/metrics' })).body;
      return Number(/^socle_db_transaction_retries_total (\d+)/m.exec(text)?.[1]);
    };

    const slots = async (
      caller: { token: string; email: string },
      professionalId: string,
      from: string,
      to: string,
      timeZone?: string,
    ) => {
      const response = await app.call(
        caller,
        'GET',
        `/cryptocare/professionals/${professionalId}/slots?from=${from}&to=${to}${timeZone ? `&timeZone=${timeZone}` : ''}`,
      );
      expect(response.statusCode, response.body).toBe(200);
      return response.json().slots as { startsAt: string; local: string }[];
    };

    it.skipIf(!target.available)(
      'cuts slots in Zurich time across both daylight-saving changes',
      async () => {
        const { professionalId } = await app.newPractice({ ...ZURICH });
        const patient = await app.socle.newUser();
        // Saturday 28 March (UTC+1) then Sunday 29 March (UTC+2): 08:00 and 09:00 local each day.
        expect(
          (await slots(patient, professionalId, '2026-03-28T00:00:00Z', '2026-03-30T00:00:00Z')).map(
            (s) => s.startsAt,
          ),
        ).toEqual([
          '2026-03-28T07:00:00.000Z',
          '2026-03-28T08:00:00.000Z',
          '2026-03-29T06:00:00.000Z',
          '2026-03-29T07:00:00.000Z',
        ]);
        // Last Sunday of October 2026 (25th): back to UTC+1.
        const october = await slots(
          patient,
          professionalId,
          '2026-10-24T00:00:00Z',
          '2026-10-26T00:00:00Z',
          'America/New_York',
        );
        expect(october.map((s) => s.startsAt)).toEqual([
          '2026-10-24T06:00:00.000Z',
          '2026-10-24T07:00:00.000Z',
          '2026-10-25T07:00:00.000Z',
          '2026-10-25T08:00:00.000Z',
        ]);
        // Shown in the patient's zone (New York is still on summer time on the 25th).
        expect(october.map((s) => s.local)).toEqual([
          '2026-10-24T02:00',
          '2026-10-24T03:00',
          '2026-10-25T03:00',
          '2026-10-25T04:00',
        ]);
        const badZone = await app.call(
          patient,
          'GET',
          `/cryptocare/professionals/${professionalId}/slots?from=2026-10-24T00:00:00Z&to=2026-10-26T00:00:00Z&timeZone=Mars/Base`,
        );
        expect(badZone.statusCode).toBe(400);
        expect(badZone.json().code).toBe('cryptocare.unknown_time_zone');
      },
    );

    it.skipIf(!target.available)(
      "shows a professional's page (profile, practices, hours, exceptions); 404 for an unknown one",
      async () => {
        const { tenant, professional, professionalId } = await app.newPractice({
          ...WINTERTHUR,
          specialties: ['dermatology'],
          hours: [
            { weekday: 2, opens: '13:00', closes: '17:00' },
            { weekday: 1, opens: '08:00', closes: '12:00' },
            { weekday: 1, opens: '13:30', closes: '16:00' },
          ],
        });
        for (const [day, hours] of [
          ['2026-04-06', []],
          ['2026-04-03', [{ opens: '09:00', closes: '11:00' }]],
        ] as const)
          expect(
            (
              await app.call(professional, 'PUT', `/cryptocare/professionals/me/exceptions/${day}`, {
                payload: { hours },
              })
            ).statusCode,
          ).toBe(204);
        const patient = await app.socle.newUser();
        const page = await app.call(patient, 'GET', `/cryptocare/professionals/${professionalId}`);
        expect(page.statusCode, page.body).toBe(200);
        expect(page.json()).toEqual({
          id: professionalId,
          displayName: expect.any(String),
          specialties: ['dermatology'],
          languages: ['de', 'fr'],
          priceChfCents: 12_000,
          timeZone: 'Europe/Zurich',
          slotMinutes: 60,
          bufferMinutes: 0,
          practices: [
            {
              orgId: tenant.id,
              name: `Practice ${tenant.id.slice(0, 4)}`,
              address: 'Bahnhofstrasse 1',
              ...WINTERTHUR,
            },
          ],
          schedule: {
            weekly: [
              { weekday: 1, opens: '08:00', closes: '12:00' },
              { weekday: 1, opens: '13:30', closes: '16:00' },
              { weekday: 2, opens: '13:00', closes: '17:00' },
            ],
            exceptions: [
              { day: '2026-04-03', opens: '09:00', closes: '11:00' },
              { day: '2026-04-06', opens: null, closes: null },
            ],
          },
        });
        const unknown = '00000000-0000-4000-8000-000000000000';
        for (const url of [
          `/cryptocare/professionals/${unknown}`,
          `/cryptocare/professionals/${unknown}/slots?from=2026-03-24T00:00:00Z&to=2026-03-25T00:00:00Z`,
        ]) {
          const missing = await app.call(patient, 'GET', url);
          expect(missing.statusCode, url).toBe(404);
          expect(missing.json().code).toBe('cryptocare.professional_not_found');
        }
        // A professional with no free slot in the range: 200 and none (not a 404).
        const closed = await app.call(
          patient,
          'GET',
          `/cryptocare/professionals/${professionalId}/slots?from=2026-04-06T00:00:00Z&to=2026-04-07T00:00:00Z`,
        );
        expect(closed.statusCode, closed.body).toBe(200);
        expect(closed.json().slots).toEqual([]);
      },
    );

    it.skipIf(!target.available)(
      "lists a practice's agenda only, not its member's own appointments as a patient elsewhere",
      async () => {
        const here = await app.newPractice({ ...ZURICH });
        const elsewhere = await app.newPractice({ ...GENEVA });
        // The professional of `here` books, as a patient, a slot of the other practice.
        const [slot] = await slots(
          here.professional,
          elsewhere.professionalId,
          '2026-05-04T00:00:00Z',
          '2026-05-05T00:00:00Z',
        );
        const held = await app.call(here.professional, 'POST', '/cryptocare/appointments', {
          payload: { professionalId: elsewhere.professionalId, startsAt: slot?.startsAt },
        });
        expect(held.statusCode, held.body).toBe(201);
        const agendaOf = async (caller: typeof here) => {
          const answer = await app.call(
            caller.professional,
            'GET',
            '/cryptocare/agenda?from=2026-05-01T00:00:00Z&to=2026-05-10T00:00:00Z',
            { orgId: caller.tenant.id },
          );
          expect(answer.statusCode, answer.body).toBe(200);
          return answer.json().appointments.map((appointment: { id: string }) => appointment.id);
        };
        expect(await agendaOf(here)).toEqual([]);
        expect(await agendaOf(elsewhere)).toEqual([held.json().appointment.id]);
      },
    );

    it.skipIf(!target.available)(
      'computes free slots without JIT compilation (it cost seconds per call)',
      async () => {
        // The cost is a time, which a test does not measure: what is checked is the function's setting.
        const { rows } = await sql<{ config: string[] | null }>`select p.proconfig as config
            from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where n.nspname = 'cryptocare' and p.proname = 'free_slots'`.execute(app.socle.db.kysely);
        expect(rows.map((row) => row.config)).toEqual([expect.arrayContaining(['jit=off'])]);
      },
    );

    it.skipIf(!target.available)(
      'applies holidays and special hours, and buffers between slots',
      async () => {
        const { professional, professionalId } = await app.newPractice({
          ...ZURICH,
          slotMinutes: 30,
          bufferMinutes: 15,
          hours: [{ weekday: 3, opens: '14:00', closes: '16:00' }],
        });
        const patient = await app.socle.newUser();
        // Wednesday 1 April (UTC+2): every 45 minutes, the last ending at 16:00 sharp.
        expect(
          (await slots(patient, professionalId, '2026-04-01T00:00:00Z', '2026-04-02T00:00:00Z')).map(
            (s) => s.local,
          ),
        ).toEqual(['2026-04-01T14:00', '2026-04-01T14:45', '2026-04-01T15:30']);
        const holiday = await app.call(
          professional,
          'PUT',
          '/cryptocare/professionals/me/exceptions/2026-04-01',
          { payload: { hours: [] } },
        );
        expect(holiday.statusCode, holiday.body).toBe(204);
        expect(await slots(patient, professionalId, '2026-04-01T00:00:00Z', '2026-04-02T00:00:00Z')).toEqual(
          [],
        );
        await app.call(professional, 'PUT', '/cryptocare/professionals/me/exceptions/2026-04-01', {
          payload: { hours: [{ opens: '09:00', closes: '09:30' }] },
        });
        expect(
          (await slots(patient, professionalId, '2026-04-01T00:00:00Z', '2026-04-02T00:00:00Z')).map(
            (s) => s.local,
          ),
        ).toEqual(['2026-04-01T09:00']);
        const backwards = await app.call(professional, 'PUT', '/cryptocare/professionals/me/hours', {
          payload: { hours: [{ weekday: 1, opens: '10:00', closes: '09:00' }] },
        });
        expect(backwards.statusCode).toBe(400);
        expect(backwards.json().code).toBe('cryptocare.closes_before_opens');
      },
    );

    it.skipIf(!target.available)(
      'searches by distance, specialty, language and price, paginated, with next free slots never stale',
      async () => {
        const near = await app.newPractice({
          latitude: ZURICH.latitude + 0.001,
          longitude: ZURICH.longitude,
          specialties: ['psychiatry'],
          languages: ['de'],
        });
        const farther = await app.newPractice({
          ...WINTERTHUR,
          specialties: ['psychiatry'],
          languages: ['de', 'en'],
          priceChfCents: 20_000,
        });
        await app.newPractice({ ...GENEVA, specialties: ['psychiatry'], languages: ['fr'] });
        const patient = await app.socle.newUser();
        const search = async (query: string) => {
          const response = await app.call(
            patient,
            'GET',
            `/cryptocare/search?latitude=${ZURICH.latitude}&longitude=${ZURICH.longitude}&specialty=psychiatry&${query}`,
          );
          expect(response.statusCode, response.body).toBe(200);
          return response.json() as {
            results: { id: string; distanceKm: number; nextSlots: { startsAt: string }[] }[];
            nextCursor: string | null;
          };
        };
        const all = await search('radiusKm=50');
        expect(all.results.map((r) => r.id)).toEqual([near.professionalId, farther.professionalId]);
        expect(all.results[1]?.distanceKm).toBeGreaterThan(15);
        expect(all.results[1]?.distanceKm).toBeLessThan(25);
        expect((await search('radiusKm=500')).results).toHaveLength(3);
        expect((await search('radiusKm=50&language=en')).results.map((r) => r.id)).toEqual([
          farther.professionalId,
        ]);
        expect((await search('radiusKm=50&maxPriceChf=150')).results.map((r) => r.id)).toEqual([
          near.professionalId,
        ]);

        const first = await search('radiusKm=50&limit=1');
        expect(first.results.map((r) => r.id)).toEqual([near.professionalId]);
        const second = await search(`radiusKm=50&limit=1&cursor=${first.nextCursor}`);
        expect(second.results.map((r) => r.id)).toEqual([farther.professionalId]);
        expect(second.nextCursor).toBeNull();
        const badCursor = await app.call(
          patient,
          'GET',
          `/cryptocare/search?latitude=1&longitude=1&cursor=nonsense`,
        );
        expect(badCursor.json().code).toBe('cryptocare.invalid_cursor');

        // The next free slot, cached by the first search, moves the moment it is booked.
        const nextSlot = first.results[0]?.nextSlots[0]?.startsAt as string;
        expect(nextSlot).toBe('2026-03-24T07:00:00.000Z'); // Tuesday 08:00 (today's 09:00 has started)
        const booked = await app.call(patient, 'POST', '/cryptocare/appointments', {
          payload: { professionalId: near.professionalId, startsAt: nextSlot },
        });
        expect(booked.statusCode, booked.body).toBe(201);
        expect((await search('radiusKm=50&limit=1')).results[0]?.nextSlots[0]?.startsAt).toBe(
          '2026-03-24T08:00:00.000Z',
        );
      },
    );

    it.skipIf(!target.available)(
      "shows a rarely open professional's next free slots however far ahead they are in the search window",
      async () => {
        // Open on Fridays 09:00–11:00 only: fewer than a cache entry's slots in the next days.
        const LUGANO = { latitude: 46.0037, longitude: 8.9511 };
        const { professionalId } = await app.newPractice({
          ...LUGANO,
          specialties: ['nutrition'],
          hours: [{ weekday: 5, opens: '09:00', closes: '11:00' }],
        });
        const patient = await app.socle.newUser();
        const search = await app.call(
          patient,
          'GET',
          `/cryptocare/search?latitude=${LUGANO.latitude}&longitude=${LUGANO.longitude}&radiusKm=5&specialty=nutrition`,
        );
        expect(search.statusCode, search.body).toBe(200);
        const [found] = search.json().results as { id: string; nextSlots: { startsAt: string }[] }[];
        expect(found?.id).toBe(professionalId);
        // Friday 27 March (winter time), then Friday 3 April (summer time).
        expect(found?.nextSlots.map((slot) => slot.startsAt)).toEqual([
          '2026-03-27T08:00:00.000Z',
          '2026-03-27T09:00:00.000Z',
          '2026-04-03T07:00:00.000Z',
        ]);
      },
    );

    it.skipIf(!target.available)(
      'holds a slot once, refuses it to others with 409, and releases it at expiry',
      async () => {
        const { tenant, professionalId } = await app.newPractice({ ...ZURICH });
        const alice = await app.socle.newUser();
        const bob = await app.socle.newUser();
        const startsAt = '2026-03-25T07:00:00.000Z';
        const hold = await app.call(alice, 'POST', '/cryptocare/appointments', {
          payload: { professionalId, startsAt },
        });
        expect(hold.statusCode, hold.body).toBe(201);
        const appointment = hold.json().appointment;
        expect(appointment).toMatchObject({
          status: 'held',
          orgId: tenant.id,
          priceChfCents: 12_000,
          holdExpiresAt: '2026-03-23T08:15:00.000Z',
        });

        const taken = await app.call(bob, 'POST', '/cryptocare/appointments', {
          payload: { professionalId, startsAt },
        });
        expect(taken.statusCode).toBe(409);
        expect(taken.headers['content-type']).toContain('application/problem+json');
        expect(taken.json().code).toBe('cryptocare.slot_taken');
        const offGrid = await app.call(bob, 'POST', '/cryptocare/appointments', {
          payload: { professionalId, startsAt: '2026-03-25T07:10:00.000Z' },
        });
        expect(offGrid.statusCode).toBe(422);
        expect(offGrid.json().code).toBe('cryptocare.not_a_slot');
        // Bob cannot see Alice's appointment.
        expect((await app.call(bob, 'GET', `/cryptocare/appointments/${appointment.id}`)).statusCode).toBe(
          404,
        );

        // The expiry job: run before the hold's expiry on Socle's clock (this test's manual clock is
        // behind the job engine's), it is postponed and changes nothing.
        expect(await app.socle.jobs.runDueJobs()).toMatchObject({ failed: 0 });
        const pending = await app.socle.jobs.list({
          tenantId: null,
          state: 'created',
          queue: 'high',
          limit: 100,
        });
        expect(
          pending.filter((job) => job.name === 'cryptocare.expireHold').map((job) => job.payload),
        ).toContainEqual({
          appointmentId: appointment.id,
          orgId: tenant.id,
        });
        expect(
          (await app.call(alice, 'GET', `/cryptocare/appointments/${appointment.id}`)).json().status,
        ).toBe('held');
        // At its expiry, the job's handler releases the slot (run here as the engine runs it).
        const { booking } = app.services();
        app.clock.advance(15 * 60_000 + 1);
        expect(await booking.expireHold(appointment.id, tenant.id)).toEqual({
          expired: true,
          remainingMs: 0,
        });
        expect(
          (await app.call(alice, 'GET', `/cryptocare/appointments/${appointment.id}`)).json().status,
        ).toBe('expired');
        const again = await app.call(bob, 'POST', '/cryptocare/appointments', {
          payload: { professionalId, startsAt },
        });
        expect(again.statusCode, again.body).toBe(201);

        // A hold past its expiry that the job has not reached yet does not keep the slot either.
        app.clock.advance(15 * 60_000 + 1);
        const carol = await app.socle.newUser();
        expect(
          (
            await app.call(carol, 'POST', '/cryptocare/appointments', {
              payload: { professionalId, startsAt },
            })
          ).statusCode,
        ).toBe(201);
        expect(
          (await app.call(bob, 'GET', `/cryptocare/appointments/${again.json().appointment.id}`)).json()
            .status,
        ).toBe('expired');
      },
    );

    it.skipIf(!target.available)(
      'confirms a paid hold once, flags underpaid and late payments, and applies the cancellation rules',
      async () => {
        const { tenant, professional, professionalId } = await app.newPractice({ ...ZURICH });
        const patient = await app.socle.newUser();
        const { booking } = app.services();
        const hold = async (startsAt: string) => {
          const response = await app.call(patient, 'POST', '/cryptocare/appointments', {
            payload: { professionalId, startsAt },
          });
          expect(response.statusCode, response.body).toBe(201);
          return response.json().appointment as { id: string };
        };
        const paid = await hold('2026-03-27T07:00:00.000Z');
        const settle = (id: string, paidChfCents: number) =>
          booking.paymentSettled({
            appointmentId: id,
            orgId: tenant.id,
            invoiceId: `inv-${id}`,
            paidChfCents,
            paidAt: app.clock.now(),
          });
        // The webhook twice (a redelivery): confirmed once.
        expect((await settle(paid.id, 12_000)).status).toBe('confirmed');
        expect((await settle(paid.id, 12_000)).status).toBe('confirmed');
        const underpaid = await hold('2026-03-27T08:00:00.000Z');
        expect(await settle(underpaid.id, 11_000)).toMatchObject({
          status: 'held',
          paymentFlag: 'underpaid',
        });
        const late = await hold('2026-03-28T07:00:00.000Z');
        app.clock.advance(20 * 60_000);
        expect(await settle(late.id, 12_000)).toMatchObject({
          status: 'expired',
          paymentFlag: 'late_payment',
        });

        // The practice sees its agenda; the patient cancels the confirmed one while it is more than 24 h away.
        const agenda = await app.call(
          professional,
          'GET',
          '/cryptocare/agenda?from=2026-03-27T00:00:00Z&to=2026-03-29T00:00:00Z',
          { orgId: tenant.id },
        );
        expect(agenda.json().appointments.map((a: { id: string }) => a.id)).toEqual([
          paid.id,
          underpaid.id,
          late.id,
        ]);
        const cancelled = await app.call(patient, 'POST', `/cryptocare/appointments/${paid.id}/cancel`);
        expect(cancelled.json()).toMatchObject({ status: 'cancelled', paymentFlag: 'refund_due' });
        expect(
          (await app.call(patient, 'POST', `/cryptocare/appointments/${paid.id}/cancel`)).json().code,
        ).toBe('cryptocare.not_cancellable');

        // Less than 24 h before: the patient may not cancel or move it; the practice may.
        const soon = await hold('2026-03-24T07:00:00.000Z');
        await settle(soon.id, 12_000);
        const tooLate = await app.call(patient, 'POST', `/cryptocare/appointments/${soon.id}/cancel`);
        expect(tooLate.statusCode).toBe(409);
        expect(tooLate.json().code).toBe('cryptocare.too_late');
        expect(
          (
            await app.call(patient, 'POST', `/cryptocare/appointments/${soon.id}/reschedule`, {
              payload: { startsAt: '2026-03-30T06:00:00.000Z' },
            })
          ).json().code,
        ).toBe('cryptocare.too_late');
        expect(
          (
            await app.call(professional, 'POST', `/cryptocare/agenda/${soon.id}/cancel`, { orgId: tenant.id })
          ).json().status,
        ).toBe('cancelled');

        // Rescheduling moves a confirmed appointment to a free slot, never onto a taken one.
        const moving = await hold('2026-03-31T06:00:00.000Z');
        await settle(moving.id, 12_000);
        const other = await hold('2026-03-31T07:00:00.000Z');
        const onto = await app.call(patient, 'POST', `/cryptocare/appointments/${moving.id}/reschedule`, {
          payload: { startsAt: '2026-03-31T07:00:00.000Z' },
        });
        expect(onto.json().code).toBe('cryptocare.slot_taken');
        const moved = await app.call(patient, 'POST', `/cryptocare/appointments/${moving.id}/reschedule`, {
          payload: { startsAt: '2026-04-01T06:00:00.000Z' },
        });
        expect(moved.json()).toMatchObject({ status: 'confirmed', startsAt: '2026-04-01T06:00:00.000Z' });
        expect(other.id).toBeDefined();
      },
      // Some twenty-five requests in a row: past the 30 s default on a loaded shared machine.
      90_000,
    );

    it.skipIf(!target.available || target.dialect !== 'postgres')(
      `${RACE_BOOKINGS} random concurrent holds on two slot grids never overlap (Postgres)`,
      async () => {
        const { tenant, professional, professionalId } = await app.newPractice({
          ...ZURICH,
          slotMinutes: 30,
        });
        const patients: Awaited<ReturnType<typeof app.socle.newUser>>[] = [];
        for (let batch = 0; batch < 4; batch++)
          patients.push(...(await Promise.all(Array.from({ length: 5 }, () => app.socle.newUser()))));
        const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)] as T;
        /** `count` holds on random free-at-start slots, `RACE_CONCURRENCY` in flight at any time. */
        const attempt = async (count: number) => {
          const free = await slots(
            pick(patients),
            professionalId,
            '2026-04-06T00:00:00Z',
            '2026-04-13T00:00:00Z',
          );
          const all = free.map((slot) => slot.startsAt);
          const answers: { statusCode: number; body: string }[] = [];
          let left = count;
          await Promise.all(
            Array.from({ length: RACE_CONCURRENCY }, async () => {
              while (left > 0) {
                left--;
                const answer = await app.call(pick(patients), 'POST', '/cryptocare/appointments', {
                  payload: { professionalId, startsAt: pick(all) },
                });
                answers.push({ statusCode: answer.statusCode, body: answer.body });
              }
            }),
          );
          return answers;
        };
        const retriesBefore = await transactionRetries();
        const started = performance.now();
        const first = await attempt(Math.ceil(RACE_BOOKINGS / 2));
        // The professional moves to 45-minute slots and longer days: the new grid overlaps the
        // first holds partially (09:30–10:15 against 09:30–10:00).
        await sql`update cryptocare.professionals set slot_minutes = 45 where id = ${professionalId}`.execute(
          app.socle.db.withSettings({ 'app.user_id': professional.userId }),
        );
        const longer = [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({ weekday, opens: '08:00', closes: '14:00' }));
        expect(
          (
            await app.call(professional, 'PUT', '/cryptocare/professionals/me/hours', {
              payload: { hours: longer },
            })
          ).statusCode,
        ).toBe(204);
        const second = await attempt(Math.floor(RACE_BOOKINGS / 2));
        const answers = [...first, ...second];
        console.info(
          `${answers.length} random concurrent holds (${RACE_CONCURRENCY} at a time): ${Math.round(performance.now() - started)} ms`,
        );
        expect(answers).toHaveLength(RACE_BOOKINGS);
        expect(
          answers.filter((a) => a.statusCode !== 201 && a.statusCode !== 409).map((a) => a.body),
        ).toEqual([]);
        // Holds on one professional wait for each other instead of deadlocking in the exclusion
        // constraint's check: no transaction was rolled back and run again (CI once saw a race
        // lose three times in a row and answer 409 db.conflict).
        expect(await transactionRetries()).toBe(retriesBefore);
        // Every refusal is the constraint's, named.
        expect(
          new Set(
            answers
              .filter((a) => a.statusCode === 409)
              .map((a) => (JSON.parse(a.body) as { code: string }).code),
          ),
        ).toEqual(new Set(['cryptocare.slot_taken']));
        const { rows } = await sql<{ overlaps: string; live: string }>`select
            (select count(*) from cryptocare.appointments a join cryptocare.appointments b
               on a.professional_id = b.professional_id and a.id < b.id and a.during && b.during
              where a.status in ('held', 'confirmed') and b.status in ('held', 'confirmed')) as overlaps,
            (select count(*) from cryptocare.appointments where professional_id = ${professionalId}
                and status = 'held') as live`.execute(
          app.socle.db.withSettings({ 'app.tenant_id': tenant.id }),
        );
        expect(rows[0]?.overlaps).toBe('0');
        expect(Number(rows[0]?.live)).toBe(answers.filter((a) => a.statusCode === 201).length);
      },
      RACE_TIMEOUT_MS,
    );

    it.skipIf(!target.available || target.dialect !== 'postgres')(
      '100 concurrent attempts on one slot make exactly one hold (Postgres)',
      async () => {
        const { professionalId } = await app.newPractice({ ...ZURICH });
        const patients = [];
        for (let batch = 0; batch < 10; batch++)
          patients.push(...(await Promise.all(Array.from({ length: 10 }, () => app.socle.newUser()))));
        const startsAt = '2026-04-02T06:00:00.000Z';
        const started = performance.now();
        const answers = await Promise.all(
          patients.map((patient) =>
            app.call(patient, 'POST', '/cryptocare/appointments', { payload: { professionalId, startsAt } }),
          ),
        );
        const statuses = answers.map((answer) => answer.statusCode);
        console.info(`100 concurrent holds on one slot: ${Math.round(performance.now() - started)} ms`);
        expect(
          answers.filter((a) => a.statusCode !== 201 && a.statusCode !== 409).map((a) => a.body),
        ).toEqual([]);
        expect(statuses.filter((status) => status === 201)).toHaveLength(1);
        expect(statuses.filter((status) => status === 409)).toHaveLength(99);
        expect(new Set(answers.filter((a) => a.statusCode === 409).map((a) => a.json().code))).toEqual(
          new Set(['cryptocare.slot_taken']),
        );
      },
      120_000,
    );
  },
);
