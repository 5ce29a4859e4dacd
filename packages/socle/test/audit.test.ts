import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AuditTables, createManualClock, sql } from '../src/index.js';
import { createAuditModule } from '../src/modules/audit/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createPrivacyModule } from '../src/modules/privacy/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle, type TestSocle, type TestUser } from '../src/testing/index.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

/** Unique enough that finding it anywhere in the log means a value was recorded. */
const PASSWORD = 'audit-secret correct horse battery staple 7f3a9c';

interface EventRow {
  id: string;
  tenant_id: string | null;
  actor_user_id: string | null;
  actor_api_key_id: string | null;
  action: string;
  target: string | null;
  changed_fields: string[];
  status: number;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
}

const descending = (x: string, y: string) => (x < y ? 1 : x > y ? -1 : 0);

describeEachDatabase('Audit log of mutating requests', (target) => {
  let socle: TestSocle;
  const clock = createManualClock(new Date('2026-06-01T08:00:00Z'));
  // Written only when a test settles, so what a test reads does not depend on timing.
  const audit = createAuditModule({ flushIntervalMs: 60_000 });
  const invitationTokens = new Map<string, string>();
  let counter = 0;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      clock,
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 30 * 24 * 3600, rateLimits: false }),
        createMailModule(),
        createTenancyModule({
          deliverInvitation: async (invitation) => {
            invitationTokens.set(invitation.email, invitation.token);
          },
        }),
        audit,
        createPrivacyModule(),
      ],
    });
  });
  afterAll(() => socle?.dispose());

  type Caller = TestUser;

  const user = (): Promise<Caller> =>
    socle.newUser({ email: `audited${++counter}@example.com`, password: PASSWORD });

  const call = (
    caller: Caller,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    options: { orgId?: string; payload?: object; headers?: Record<string, string> } = {},
  ) => callAs(socle, caller, method, url, options);

  async function orgOf(owner: Caller): Promise<string> {
    return (await socle.newTenant({ owner, name: 'Cabinet Audit' })).id;
  }

  async function join(orgId: string, admin: Caller, role: 'admin' | 'member'): Promise<Caller> {
    return socle.newMember(
      { id: orgId },
      { role, user: await user(), invitedBy: admin, invitationToken: (email) => invitationTokens.get(email) },
    );
  }

  /** Lets onResponse hooks run, then writes the queued events. */
  async function settle(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    await socle.servicesOf(audit).flush();
  }

  /** Every event, read as the owner of the tables (the operators' view). */
  async function eventsWhere(condition: string, parameters: unknown[]): Promise<EventRow[]> {
    await settle();
    const { rows } = await socle.db.withConnection(
      (connection) =>
        connection.query<EventRow>(
          `select * from audit.events where ${condition} order by occurred_at, id`,
          parameters,
        ),
      'owner',
    );
    return rows;
  }

  async function eventOf(response: { headers: Record<string, unknown> }): Promise<EventRow | undefined> {
    const rows = await eventsWhere('request_id = $1', [response.headers['x-request-id']]);
    expect(rows.length).toBeLessThanOrEqual(1);
    return rows[0];
  }

  it('records who did what to which resource in which organization, from where', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const member = await join(orgId, owner, 'member');
    const response = await call(owner, 'PATCH', `/org/members/${member.userId}`, {
      orgId,
      payload: { role: 'admin' },
      headers: { 'user-agent': 'audit-test/1.0', 'x-request-id': 'req-audit-1' },
    });
    expect(response.statusCode).toBe(204);
    expect(response.headers['x-request-id']).toBe('req-audit-1');
    expect(await eventOf(response)).toMatchObject({
      tenant_id: orgId,
      actor_user_id: owner.userId,
      actor_api_key_id: null,
      action: 'PATCH /org/members/:userId',
      target: JSON.stringify({ userId: member.userId }),
      changed_fields: ['role'],
      status: 204,
      ip: '127.0.0.1',
      user_agent: 'audit-test/1.0',
      request_id: 'req-audit-1',
    });

    const longAgent = await call(owner, 'PATCH', '/org', {
      orgId,
      payload: { name: 'Renamed' },
      headers: { 'user-agent': 'x'.repeat(2000) },
    });
    const event = await eventOf(longAgent);
    expect(event?.user_agent).toBe('x'.repeat(512));
    expect(event).toMatchObject({ action: 'PATCH /org', target: null, changed_fields: ['name'] });
    expect(event?.request_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("records who joined in the organization's log, and who left by erasure", async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const otherOrg = await orgOf(owner);
    const member = await join(orgId, owner, 'member');
    const joined = await eventsWhere('actor_user_id = $1 and action = $2', [
      member.userId,
      'POST /invitations/accept',
    ]);
    expect(joined).toEqual([
      expect.objectContaining({ tenant_id: orgId, status: 200, changed_fields: ['token'] }),
    ]);
    // The organization's admins see it in their log.
    const listed = await call(owner, 'GET', '/org/audit-events?action=POST%20/invitations/accept', { orgId });
    expect(listed.json().events.map((event: { actorUserId: string }) => event.actorUserId)).toEqual([
      member.userId,
    ]);

    // The same person in a second organization, then their account erased.
    const invited = await call(owner, 'POST', '/org/invitations', {
      orgId: otherOrg,
      payload: { email: member.email, role: 'viewer' },
    });
    expect(invited.statusCode).toBe(201);
    const accepted = await call(member, 'POST', '/invitations/accept', {
      payload: { token: invitationTokens.get(member.email) },
    });
    expect(accepted.statusCode).toBe(200);
    const erased = await call(member, 'POST', '/me/erase', { payload: { password: PASSWORD } });
    expect(erased.statusCode, erased.body).toBe(200);
    const left = await eventsWhere('action = $1 and target = $2', [
      'member.erased',
      JSON.stringify({ userId: member.userId }),
    ]);
    expect(left.map((event) => event.tenant_id).sort()).toEqual([orgId, otherOrg].sort());
    expect(left[0]).toMatchObject({ actor_user_id: null, ip: null, user_agent: null });
    // Erasure removed the person from the events they made; the organization still sees them join and leave.
    const history = await call(owner, 'GET', '/org/audit-events', { orgId });
    expect(history.json().events.map((event: { action: string }) => event.action)).toEqual(
      expect.arrayContaining(['member.erased', 'POST /invitations/accept']),
    );
  });

  it('records the names of body fields, never their values', async () => {
    const signIn = await socle.app.inject({
      method: 'POST',
      url: '/auth/sign-in',
      payload: { email: (await user()).email, password: PASSWORD },
    });
    expect(signIn.statusCode).toBe(200);
    expect(await eventOf(signIn)).toMatchObject({
      tenant_id: null,
      actor_user_id: null,
      action: 'POST /auth/sign-in',
      changed_fields: ['email', 'password'],
      status: 200,
    });
    const signUps = await eventsWhere('action = $1', ['POST /auth/sign-up']);
    expect(signUps.length).toBeGreaterThan(0);
    expect(signUps.every((row) => row.changed_fields.includes('password'))).toBe(true);
    const leaks = await eventsWhere('strpos(events::text, $1) > 0', [PASSWORD]);
    expect(leaks).toEqual([]);
  });

  it('records refused requests with their status, not reads nor paths without a route', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const member = await join(orgId, owner, 'member');

    const forbidden = await call(member, 'DELETE', `/org/members/${owner.userId}`, { orgId });
    expect(forbidden.statusCode).toBe(403);
    expect(await eventOf(forbidden)).toMatchObject({
      tenant_id: orgId,
      actor_user_id: member.userId,
      action: 'DELETE /org/members/:userId',
      target: JSON.stringify({ userId: owner.userId }),
      status: 403,
    });

    // A 404 names something that is not this organization's: the target is not kept.
    const missing = await call(owner, 'DELETE', `/org/members/${randomUUID()}`, { orgId });
    expect(missing.statusCode).toBe(404);
    expect(await eventOf(missing)).toMatchObject({
      action: 'DELETE /org/members/:userId',
      target: null,
      status: 404,
    });

    const unauthenticated = await socle.app.inject({
      method: 'POST',
      url: '/org/leave',
      headers: { 'x-org-id': orgId },
    });
    expect(unauthenticated.statusCode).toBe(401);
    expect(await eventOf(unauthenticated)).toMatchObject({
      tenant_id: null,
      actor_user_id: null,
      status: 401,
    });

    const read = await call(owner, 'GET', '/org/members', { orgId });
    expect(read.statusCode).toBe(200);
    expect(await eventOf(read)).toBeUndefined();
    const noRoute = await call(owner, 'POST', '/no/such/route', { orgId, payload: {} });
    expect(noRoute.statusCode).toBe(404);
    expect(await eventOf(noRoute)).toBeUndefined();
  });

  it('is append-only for the application role; inserting works', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    await settle();
    const app = socle.db.withTables<AuditTables>();
    const inOrg = { settings: { 'app.tenant_id': orgId } };

    const id = randomUUID();
    await app.transaction(
      (trx) =>
        trx
          .insertInto('audit.events')
          .values({ id, tenant_id: orgId, action: 'POST /test', status: 201 })
          .execute(),
      inOrg,
    );
    await app.kysely
      .insertInto('audit.events')
      .values({ id: randomUUID(), action: 'POST /test', status: 201 })
      .execute();
    // Row-level security: not into another organization.
    await expect(
      app.kysely
        .insertInto('audit.events')
        .values({ id: randomUUID(), tenant_id: orgId, action: 'x', status: 1 })
        .execute(),
    ).rejects.toThrow(/row-level security/);

    await expect(
      app.transaction(
        (trx) => trx.updateTable('audit.events').set({ status: 200 }).where('id', '=', id).execute(),
        inOrg,
      ),
    ).rejects.toThrow(/permission denied/);
    await expect(app.kysely.updateTable('audit.events').set({ status: 200 }).execute()).rejects.toThrow(
      /permission denied/,
    );
    await expect(
      app.transaction((trx) => trx.deleteFrom('audit.events').where('id', '=', id).execute(), inOrg),
    ).rejects.toThrow(/permission denied/);
    await expect(sql`truncate audit.events`.execute(app.kysely)).rejects.toThrow(/permission denied/);
    expect(await eventsWhere('id = $1', [id])).toMatchObject([{ status: 201 }]);
  });

  it('refuses changes to any role but the owner, even one with every privilege', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const rename = await call(owner, 'PATCH', '/org', { orgId, payload: { name: 'Before deletion' } });
    const event = await eventOf(rename);
    const role = `audit_probe_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    await socle.db.withConnection(async (connection) => {
      await connection.query(`create role ${role} superuser nologin`);
      try {
        await connection.query(`set role ${role}`);
        await expect(
          connection.query('update audit.events set status = 0 where id = $1', [event?.id]),
        ).rejects.toThrow(/append-only/);
        await expect(connection.query('delete from audit.events where id = $1', [event?.id])).rejects.toThrow(
          /append-only/,
        );
        await expect(connection.query('truncate audit.events')).rejects.toThrow(/append-only/);
      } finally {
        await connection.query('reset role');
        await connection.query(`drop role ${role}`);
      }
      // The owner may: deleting an organization takes its events with it (a cascade runs as owner).
      await connection.query('delete from tenancy.organizations where id = $1', [orgId]);
    }, 'owner');
    expect(await eventsWhere('tenant_id = $1', [orgId])).toEqual([]);
  });

  it("lists an organization's events to its admins only", async () => {
    const ownerA = await user();
    const orgA = await orgOf(ownerA);
    const memberA = await join(orgA, ownerA, 'member');
    const adminA = await join(orgA, ownerA, 'admin');
    const ownerB = await user();
    const orgB = await orgOf(ownerB);
    await call(ownerA, 'PATCH', '/org', { orgId: orgA, payload: { name: 'A' } });
    await call(ownerB, 'PATCH', '/org', { orgId: orgB, payload: { name: 'B' } });
    await settle();

    const listA = await call(adminA, 'GET', '/org/audit-events', { orgId: orgA });
    expect(listA.statusCode).toBe(200);
    const eventsA = listA.json().events as { actorUserId: string; action: string }[];
    expect(eventsA.map((event) => event.action)).toContain('PATCH /org');
    expect(eventsA.map((event) => event.action)).toContain('POST /org/invitations');
    expect(eventsA.every((event) => event.actorUserId !== ownerB.userId)).toBe(true);

    const listB = await call(ownerB, 'GET', '/org/audit-events', { orgId: orgB });
    const eventsB = listB.json().events as { actorUserId: string }[];
    expect(eventsB.length).toBeGreaterThan(0);
    expect(eventsB.every((event) => event.actorUserId === ownerB.userId)).toBe(true);
    expect(listB.body).not.toContain(orgA);
    expect(listB.body).not.toContain(ownerA.userId);

    const asMember = await call(memberA, 'GET', '/org/audit-events', { orgId: orgA });
    expect(asMember.statusCode).toBe(403);
    expect(asMember.json().code).toBe('tenancy.forbidden');
    expect((await call(ownerB, 'GET', '/org/audit-events', { orgId: orgA })).statusCode).toBe(403);
  });

  it('filters by actor, action and time, and pages through every event exactly once', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const admin = await join(orgId, owner, 'admin');
    const start = clock.now();
    // Twelve renames, two by two at the same instant: the cursor must break ties by id.
    const requestIds: string[] = [];
    for (let index = 0; index < 12; index++) {
      if (index % 2 === 0) clock.advance(1000);
      const response = await call(index % 3 === 0 ? admin : owner, 'PATCH', '/org', {
        orgId,
        payload: { name: `Name ${index}` },
      });
      expect(response.statusCode).toBe(204);
      requestIds.push(response.headers['x-request-id'] as string);
    }
    await settle();

    const pages: { id: string; requestId: string; occurredAt: string }[][] = [];
    let cursor: string | null = null;
    do {
      const query = new URLSearchParams({ action: 'PATCH /org', limit: '5', ...(cursor ? { cursor } : {}) });
      const response = await call(owner, 'GET', `/org/audit-events?${query}`, { orgId });
      expect(response.statusCode).toBe(200);
      pages.push(response.json().events);
      cursor = response.json().nextCursor;
    } while (cursor !== null && pages.length < 10);
    expect(pages.map((page) => page.length)).toEqual([5, 5, 2]);
    const walked = pages.flat();
    expect(walked.map((event) => event.requestId).sort()).toEqual([...requestIds].sort());
    const newestFirst = [...walked].sort(
      (x, y) => descending(x.occurredAt, y.occurredAt) || descending(x.id, y.id),
    );
    expect(walked).toEqual(newestFirst);

    const list = async (query: Record<string, string>) => {
      const response = await call(owner, 'GET', `/org/audit-events?${new URLSearchParams(query)}`, { orgId });
      expect(response.statusCode).toBe(200);
      return response.json().events as { actorUserId: string; action: string; occurredAt: string }[];
    };
    const byAdmin = await list({ actor: admin.userId, action: 'PATCH /org', limit: '200' });
    expect(byAdmin).toHaveLength(4);
    expect(byAdmin.every((event) => event.actorUserId === admin.userId)).toBe(true);
    expect((await list({ action: 'POST /org/invitations' })).map((event) => event.action)).toEqual([
      'POST /org/invitations',
    ]);
    expect(await list({ action: 'DELETE /org' })).toEqual([]);
    const since = new Date(start.getTime() + 2000).toISOString();
    const until = new Date(start.getTime() + 4000).toISOString();
    const window = await list({ action: 'PATCH', since, until });
    expect(window.map((event) => event.occurredAt)).toEqual([
      new Date(start.getTime() + 3000).toISOString(),
      new Date(start.getTime() + 3000).toISOString(),
      new Date(start.getTime() + 2000).toISOString(),
      new Date(start.getTime() + 2000).toISOString(),
    ]);
  });

  it('refuses a cursor it did not issue, and bad filters', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    for (const cursor of ['not-a-cursor', Buffer.from(`2026-01-01|${randomUUID()}`).toString('base64url')]) {
      const response = await call(owner, 'GET', `/org/audit-events?cursor=${cursor}`, { orgId });
      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('audit.invalid_cursor');
    }
    const badLimit = await call(owner, 'GET', '/org/audit-events?limit=500', { orgId });
    expect(badLimit.statusCode).toBe(400);
    expect(badLimit.json().errors).toEqual([expect.objectContaining({ field: 'query/limit' })]);
    const badActor = await call(owner, 'GET', '/org/audit-events?actor=someone', { orgId });
    expect(badActor.statusCode).toBe(400);
  });

  it('never fails a request when its event cannot be written, and counts the failure', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    await settle();
    const failures = async () =>
      (await socle.metrics.registry.getSingleMetric('socle_audit_write_failures_total')?.get())?.values[0]
        ?.value ?? 0;
    const before = await failures();
    const rename = await call(owner, 'PATCH', '/org', { orgId, payload: { name: 'Doomed' } });
    expect(rename.statusCode).toBe(204);
    // The organization disappears before the event is written: its insert breaks the foreign key.
    await new Promise((resolve) => setImmediate(resolve));
    await socle.db.withConnection(
      (connection) => connection.query('delete from tenancy.organizations where id = $1', [orgId]),
      'owner',
    );
    await settle();
    expect(await failures()).toBe(before + 1);
  });
});
