import {
  createIdentityModule,
  createMailModule,
  createManualClock,
  createPrivacyModule,
  createTenancyModule,
} from 'socle';
import {
  createTestSocle,
  TEST_PASSWORD,
  type TestSocle,
  type TestUser,
  testDatabaseTargets,
} from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotesModule } from '../src/index.js';

// Every database test runs on PGlite and on Postgres (skipped, with the reason in its name, when
// Postgres is unreachable outside CI; CI requires it).
const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'notes module [%s]',
  (_, target) => {
    let socle: TestSocle;
    const clock = createManualClock(new Date('2026-06-01T08:00:00Z'));
    const notesModule = createNotesModule();

    beforeAll(async () => {
      if (!target.available) return;
      socle = await createTestSocle(target, {
        clock,
        modules: [
          createIdentityModule({ rateLimits: false }),
          createMailModule(),
          createTenancyModule(),
          createPrivacyModule(),
          notesModule,
        ],
        // The module's own setting, as NOTES_RETENTION_DAYS would set it.
        settings: { notes: { retentionDays: 30 } },
      });
    });
    afterAll(() => socle?.dispose());

    const call = (
      caller: Pick<TestUser, 'token'>,
      method: 'GET' | 'POST' | 'DELETE',
      url: string,
      options: { orgId?: string; payload?: object } = {},
    ) =>
      socle.app.inject({
        method,
        url,
        ...(options.payload === undefined ? {} : { payload: options.payload }),
        headers: {
          authorization: `Bearer ${caller.token}`,
          ...(options.orgId === undefined ? {} : { 'x-org-id': options.orgId }),
        },
      });

    const write = async (caller: TestUser, orgId: string, body: string) => {
      const response = await call(caller, 'POST', '/notes', { orgId, payload: { body } });
      expect(response.statusCode, response.body).toBe(201);
      return response.json() as { id: string; authorId: string; body: string };
    };
    const bodies = async (caller: TestUser, orgId: string) =>
      (await call(caller, 'GET', '/notes', { orgId }))
        .json()
        .notes.map((note: { body: string }) => note.body);

    it.skipIf(!target.available)("keeps each organization's notes to its members", async () => {
      const tenant = await socle.newTenant();
      const other = await socle.newTenant();
      const member = await socle.newMember(tenant);

      const note = await write(member, tenant.id, 'first');
      expect(note).toMatchObject({ authorId: member.userId, body: 'first' });
      clock.advance(1000);
      await write(tenant.owner, tenant.id, 'second');
      expect(await bodies(member, tenant.id)).toEqual(['first', 'second']);

      // Another organization sees none of them, and cannot delete one (row-level security: 404).
      expect(await bodies(other.owner, other.id)).toEqual([]);
      const foreign = await call(other.owner, 'DELETE', `/notes/${note.id}`, { orgId: other.id });
      expect(foreign.statusCode).toBe(404);
      expect(foreign.json().code).toBe('notes.not_found');
      // A non-member naming the organization is refused before the route runs.
      expect((await call(other.owner, 'GET', '/notes', { orgId: tenant.id })).json().code).toBe(
        'tenancy.not_a_member',
      );
    });

    it.skipIf(!target.available)(
      'refuses bad input and missing roles with a problem naming the cause',
      async () => {
        const tenant = await socle.newTenant();
        const viewer = await socle.newMember(tenant, { role: 'viewer' });

        const empty = await call(tenant.owner, 'POST', '/notes', { orgId: tenant.id, payload: { body: '' } });
        expect(empty.statusCode).toBe(400);
        expect(empty.json().code).toBe('http.validation_failed');
        expect(empty.json().errors.map((error: { field: string }) => error.field)).toContain('body/body');

        const noOrg = await call(tenant.owner, 'POST', '/notes', { payload: { body: 'x' } });
        expect(noOrg.statusCode).toBe(400);
        expect(noOrg.json().code).toBe('tenancy.org_required');

        const byViewer = await call(viewer, 'POST', '/notes', { orgId: tenant.id, payload: { body: 'x' } });
        expect(byViewer.statusCode).toBe(403);
        expect(byViewer.json().code).toBe('tenancy.forbidden');
        expect(await bodies(viewer, tenant.id)).toEqual([]);
      },
    );

    it.skipIf(!target.available)(
      'hides a deleted note at once and purges it after the retention period',
      async () => {
        const tenant = await socle.newTenant();
        const kept = await write(tenant.owner, tenant.id, 'kept');
        const deleted = await write(tenant.owner, tenant.id, 'deleted');
        expect(
          (await call(tenant.owner, 'DELETE', `/notes/${deleted.id}`, { orgId: tenant.id })).statusCode,
        ).toBe(204);
        expect(await bodies(tenant.owner, tenant.id)).toEqual(['kept']);
        // Deleting it again: it is gone for the organization.
        expect(
          (await call(tenant.owner, 'DELETE', `/notes/${deleted.id}`, { orgId: tenant.id })).statusCode,
        ).toBe(404);

        const { notes } = socle.servicesOf(notesModule);
        expect(await notes.purgeDeleted()).toBe(0); // deleted today: kept for 30 days
        clock.advance(31 * 24 * 60 * 60 * 1000);
        // The daily job's handler, as the job engine runs it (bound to the module's services).
        expect(notesModule.jobs?.purgeDeleted?.cron).toBe('0 4 * * *');
        expect(await notes.purgeDeleted()).toBe(1);
        expect(await notes.purgeDeleted()).toBe(0);
        expect(
          (await notes.list({ orgId: tenant.id, userId: tenant.owner.userId })).map((n) => n.id),
        ).toEqual([kept.id]);
      },
    );

    it.skipIf(!target.available)(
      "exports a person's notes and erases them in every organization",
      async () => {
        const first = await socle.newTenant();
        const second = await socle.newTenant();
        const person = await socle.newMember(first);
        await socle.newMember(second, { user: person });
        await write(person, first.id, 'mine in first');
        clock.advance(1000);
        await write(person, second.id, 'mine in second');
        await write(first.owner, first.id, "the owner's");

        const exported = await call(person, 'GET', '/me/export');
        expect(exported.statusCode).toBe(200);
        expect(exported.json().modules.notes.notes.map((note: { body: string }) => note.body)).toEqual([
          'mine in first',
          'mine in second',
        ]);

        const erased = await call(person, 'POST', '/me/erase', { payload: { password: TEST_PASSWORD } });
        expect(erased.statusCode, erased.body).toBe(200);
        expect(erased.json().erasedModules).toContain('notes');
        expect(await bodies(first.owner, first.id)).toEqual(["the owner's"]);
        expect(await bodies(second.owner, second.id)).toEqual([]);
      },
    );
  },
);
