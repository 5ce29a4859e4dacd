import {
  type FuzzCredential,
  type FuzzPreparation,
  fuzzEveryOperation,
  testDatabaseTargets,
} from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCryptoCare } from './cryptocare-fixture.js';

const targets = await testDatabaseTargets();
const ZURICH = { latitude: 47.3769, longitude: 8.5417 };

/**
 * The fuzz gate over CryptoCare's own operations (`only`), as the built-in modules have theirs:
 * every malformed request (missing or wrong-typed fields, bad ids, broken JSON, oversized or
 * hostile strings, raw-socket garbage) gets a 4xx problem+json, never a 5xx; and each operation's
 * valid request is prepared (a practice, a professional with hours, a patient's hold) so what lies
 * behind the checks is fuzzed too.
 */
describe.each(targets.map((target) => [target.dialect, target] as const))(
  'Fuzz gate over the CryptoCare operations [%s]',
  (_, target) => {
    // Monday 23 March 2026, 09:00 in Zurich.
    let app: Awaited<ReturnType<typeof startCryptoCare>>;
    let url: string;
    let practice: Awaited<ReturnType<typeof app.newPractice>>;
    beforeAll(async () => {
      if (!target.available) return;
      app = await startCryptoCare(target, { now: new Date('2026-03-23T08:00:00Z') });
      url = await app.socle.listen();
      practice = await app.newPractice(ZURICH);
    });
    afterAll(() => app?.dispose());

    /**
     * Slots of the practice's professional never handed out before, a week at a time from
     * 24 March: each preparation spends one (a hold, a reschedule target, the gate's own bookings).
     */
    const handedOut = new Set<string>();
    let week = 0;
    let restored = false;
    const HOURS = {
      hours: [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({ weekday, opens: '08:00', closes: '12:00' })),
    };
    async function restoreHours() {
      const set = await app.call(practice.professional, 'PUT', '/cryptocare/professionals/me/hours', {
        payload: HOURS,
      });
      if (set.statusCode !== 204) throw new Error(`hours: ${set.body}`);
    }
    async function nextSlot(patient: { token: string; email: string }): Promise<string> {
      for (; week < 200; week++) {
        const from = new Date(Date.UTC(2026, 2, 24 + 7 * week)).toISOString();
        const to = new Date(Date.UTC(2026, 2, 31 + 7 * week)).toISOString();
        const slots = await app.call(
          patient,
          'GET',
          `/cryptocare/professionals/${practice.professionalId}/slots?from=${from}&to=${to}`,
        );
        if (slots.statusCode !== 200) throw new Error(`slots: ${slots.body}`);
        if (slots.json().slots.length === 0 && !restored) {
          // The gate's valid PUT of the weekly hours may have left an empty week: put them back.
          restored = true;
          week--;
          await restoreHours();
          continue;
        }
        restored = false;
        const fresh = (slots.json().slots as { startsAt: string }[]).find(
          (slot) => !handedOut.has(slot.startsAt),
        );
        if (fresh !== undefined) {
          handedOut.add(fresh.startsAt);
          return fresh.startsAt;
        }
      }
      throw new Error('no slot left in 200 weeks');
    }
    /** An appointment `patient` holds: what the routes by id act on. */
    async function heldAppointment(patient: { token: string; email: string }) {
      for (let tries = 0; tries < 20; tries++) {
        const startsAt = await nextSlot(patient);
        const held = await app.call(patient, 'POST', '/cryptocare/appointments', {
          payload: { professionalId: practice.professionalId, startsAt },
        });
        if (held.statusCode === 201) return { id: held.json().appointment.id as string, startsAt };
      }
      throw new Error('could not hold a slot in 20 tries');
    }

    it.skipIf(!target.available)(
      'answers every malformed request with a 4xx problem+json, never a 5xx',
      { timeout: 600_000 },
      async () => {
        const patient = await app.socle.newUser();
        const patientToken = await app.socle.newAccessToken(patient);
        const professionalToken = await app.socle.newAccessToken(practice.professional);
        const ownerToken = await app.socle.newAccessToken(practice.tenant.owner);
        const credentials: FuzzCredential[] = [
          { name: 'anonymous', headers: {} },
          { name: 'patient', headers: { authorization: `Bearer ${patientToken}` }, scheme: 'accessToken' },
          {
            name: 'professional',
            headers: { authorization: `Bearer ${professionalToken}` },
            scheme: 'accessToken',
          },
          {
            name: 'owner',
            headers: { authorization: `Bearer ${ownerToken}`, 'x-org-id': practice.tenant.id },
            scheme: 'accessToken',
          },
        ];
        const asPatient = { token: patientToken, email: patient.email };
        const byId = async () => ({ path: { id: (await heldAppointment(asPatient)).id } });
        // The practice's own calls: the professional, a member, in the practice's organization.
        const inPractice = { authorization: `Bearer ${professionalToken}`, 'x-org-id': practice.tenant.id };
        const agendaById = async () => ({ ...(await byId()), headers: inPractice });
        const profile = (name: string) => ({
          displayName: `Dr ${name}`,
          specialties: ['general'],
          languages: ['de'],
          priceChfCents: 9_000,
        });
        /** A person without a professional profile yet (signing up spends them). */
        const newcomer = async () => {
          const user = await app.socle.newUser();
          return {
            headers: { authorization: `Bearer ${user.token}` },
            body: profile(user.userId.slice(0, 6)),
          };
        };
        /** A member of the practice with a professional profile, not practising there yet. */
        const joiner = async () => {
          const user = await app.socle.newMember(practice.tenant);
          const created = await app.call(user, 'POST', '/cryptocare/professionals', {
            payload: profile(user.userId.slice(0, 6)),
          });
          if (created.statusCode !== 201) throw new Error(`profile: ${created.body}`);
          return { headers: { authorization: `Bearer ${user.token}`, 'x-org-id': practice.tenant.id } };
        };
        const preparations: Record<
          string,
          Partial<Record<string, (credential: FuzzCredential) => Promise<FuzzPreparation>>>
        > = {
          'GET /cryptocare/professionals/{id}': {
            patient: async () => ({ path: { id: practice.professionalId } }),
          },
          'GET /cryptocare/professionals/{id}/slots': {
            patient: async () => ({ path: { id: practice.professionalId } }),
          },
          'POST /cryptocare/appointments': {
            patient: async () => ({
              body: { professionalId: practice.professionalId, startsAt: await nextSlot(asPatient) },
            }),
          },
          'GET /cryptocare/appointments/{id}': { patient: byId },
          'POST /cryptocare/appointments/{id}/cancel': { patient: byId },
          'POST /cryptocare/appointments/{id}/reschedule': {
            patient: async () => ({
              ...(await byId()),
              body: { startsAt: await nextSlot(asPatient) },
            }),
          },
          'POST /cryptocare/professionals': { patient: newcomer },
          'POST /cryptocare/practice/professionals': { professional: joiner },
          'POST /cryptocare/agenda/{id}/cancel': { professional: agendaById },
          'GET /cryptocare/agenda/{id}/notes': { professional: agendaById },
          'POST /cryptocare/agenda/{id}/notes': {
            professional: async () => ({ ...(await agendaById()), body: { body: 'Seen today; all well.' } }),
          },
          'PUT /cryptocare/professionals/me/hours': { professional: async () => ({ body: HOURS }) },
          'PUT /cryptocare/professionals/me/exceptions/{day}': {
            professional: async () => ({ path: { day: '2026-06-01' } }),
          },
          'DELETE /cryptocare/professionals/me/exceptions/{day}': {
            professional: async () => ({ path: { day: '2026-06-01' } }),
          },
        };
        const report = await fuzzEveryOperation(app.socle, {
          url,
          credentials: async () => credentials,
          only: (operation) => / \/cryptocare\//.test(operation),
          prepare: async (operation, credential) => preparations[operation]?.[credential.name]?.(credential),
        });
        console.log(
          `fuzz gate cryptocare [${target.dialect}]: ${report.sent} requests over ${report.operations.length} operations, ${report.serverErrors} × 5xx; never 2xx: ${report.operations.filter((operation) => !report.succeeded.includes(operation)).join(', ') || 'none'}`,
        );
        expect(report.findings).toEqual([]);
        // Every operation got past its checks at least once.
        expect(report.operations.filter((operation) => !report.succeeded.includes(operation))).toEqual([]);
        expect(report.serverErrors).toBe(0);
        expect(report.operations.length).toBeGreaterThanOrEqual(18);
        expect(report.sent).toBeGreaterThan(report.operations.length * 50);
      },
    );
  },
);
