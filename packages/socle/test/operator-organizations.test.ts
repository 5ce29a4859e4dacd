import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createAuditModule,
  createIdentityModule,
  createMailModule,
  createRealtimeModule,
  createTenancyModule,
} from '../src/index.js';
import { createTestSocle, type TestSocle, type TestTenant, type TestUser } from '../src/testing/index.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

const OPERATOR_TOKEN = 'operator-token-of-the-operator-organizations-suite-0123';
const operator = { 'x-operator-token': OPERATOR_TOKEN };

interface AuditEvent {
  tenantId: string | null;
  actorUserId: string | null;
  actorOperator: boolean;
  action: string;
  target: Record<string, string> | null;
  status: number;
}

/**
 * With the operator token alone (no account): every organization's audit log and realtime apps,
 * and the members and invitations of an organization the operator does not belong to, changed
 * through the API and audited in that organization's log with the operator as actor.
 */
describeEachDatabase('Operator: audit log, realtime apps and members of every organization', (target) => {
  let socle: TestSocle;
  // Written only when a test settles, so what a test reads does not depend on timing.
  const audit = createAuditModule({ flushIntervalMs: 60_000 });
  const invitationTokens = new Map<string, string>();
  let alice: TestUser;
  let bruno: TestUser;
  let carla: TestUser;
  let alpha: TestTenant;
  let beta: TestTenant;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule({
          deliverInvitation: async (invitation) => {
            invitationTokens.set(invitation.email, invitation.token);
          },
        }),
        audit,
        createRealtimeModule(),
      ],
      settings: { identity: { operatorToken: OPERATOR_TOKEN } },
    });
    alice = await socle.newUser({ email: 'alice@operator-orgs.test' });
    bruno = await socle.newUser({ email: 'bruno@operator-orgs.test' });
    carla = await socle.newUser({ email: 'carla@operator-orgs.test' });
    alpha = await socle.newTenant({ owner: alice, name: 'Cabinet Alpha' });
    beta = await socle.newTenant({ owner: bruno, name: 'Cabinet Beta' });
    await socle.newMember(alpha, {
      user: carla,
      role: 'member',
      invitationToken: (email) => invitationTokens.get(email),
    });
  });
  afterAll(() => socle?.dispose());

  const asOperator = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    socle.app.inject({ method, url, headers: operator, ...(payload ? { payload } : {}) });
  /** Lets onResponse hooks run, then writes the queued events. */
  async function settle(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    await socle.servicesOf(audit).flush();
  }

  it('refuses the new routes without the operator token, even to an owner', async () => {
    for (const [method, url] of [
      ['GET', '/operator/audit-events'],
      ['GET', '/operator/realtime/apps'],
      ['GET', `/operator/organizations/${alpha.id}/invitations`],
      ['DELETE', `/operator/organizations/${alpha.id}/members/${carla.userId}`],
    ] as const) {
      const response = await callAs(socle, alice, method, url);
      expect(response.statusCode, url).toBe(401);
      expect(response.json().code).toBe('auth.not_operator');
    }
    // Carla is still a member.
    const members = (await callAs(socle, alice, 'GET', '/org/members', { orgId: alpha.id })).json();
    expect(members.map((member: { userId: string }) => member.userId)).toContain(carla.userId);
  });

  it("lists every organization's audit events, filtered and page after page", async () => {
    await callAs(socle, alice, 'PATCH', '/org', { orgId: alpha.id, payload: { name: 'Cabinet Alpha 2' } });
    await callAs(socle, bruno, 'PATCH', '/org', { orgId: beta.id, payload: { name: 'Cabinet Beta 2' } });
    await settle();
    const all = await asOperator('GET', '/operator/audit-events?action=PATCH%20%2Forg&limit=200');
    expect(all.statusCode, all.body).toBe(200);
    const renames = (all.json().events as AuditEvent[]).filter((event) => event.action === 'PATCH /org');
    expect(renames.map((event) => [event.tenantId, event.actorUserId, event.actorOperator])).toEqual([
      [beta.id, bruno.userId, false],
      [alpha.id, alice.userId, false],
    ]);
    // Events of no organization (sign-ups) are the operator's to see too.
    const signUps = (
      await asOperator('GET', '/operator/audit-events?action=POST%20%2Fauth%2Fsign-up')
    ).json();
    expect(signUps.events.length).toBeGreaterThan(0);
    expect(signUps.events.every((event: AuditEvent) => event.tenantId === null)).toBe(true);
    // One organization's, one actor's.
    const onlyBeta = (await asOperator('GET', `/operator/audit-events?org=${beta.id}`)).json();
    expect(onlyBeta.events.length).toBeGreaterThan(0);
    expect(onlyBeta.events.every((event: AuditEvent) => event.tenantId === beta.id)).toBe(true);
    const byAlice = (await asOperator('GET', `/operator/audit-events?actor=${alice.userId}`)).json();
    expect(byAlice.events.every((event: AuditEvent) => event.actorUserId === alice.userId)).toBe(true);
    // Pages: the second starts where the first ended.
    const first = (await asOperator('GET', '/operator/audit-events?limit=1')).json();
    expect(first.events).toHaveLength(1);
    const second = (
      await asOperator('GET', `/operator/audit-events?limit=1&cursor=${first.nextCursor}`)
    ).json();
    expect(second.events).toHaveLength(1);
    expect(second.events[0].id).not.toBe(first.events[0].id);
    // Bad input names the field.
    const bad = await asOperator('GET', '/operator/audit-events?org=not-a-uuid');
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toContain('org');
    expect((await asOperator('GET', '/operator/audit-events?cursor=nonsense')).json().code).toBe(
      'audit.invalid_cursor',
    );
  });

  it("lists every organization's realtime apps and any app's activity", async () => {
    const quiz = (
      await callAs(socle, alice, 'POST', '/realtime/apps', { orgId: alpha.id, payload: { name: 'Quiz' } })
    ).json();
    const chat = (
      await callAs(socle, bruno, 'POST', '/realtime/apps', { orgId: beta.id, payload: { name: 'Chat' } })
    ).json();
    const all = await asOperator('GET', '/operator/realtime/apps');
    expect(all.statusCode, all.body).toBe(200);
    const apps = all.json().apps as { id: string; name: string; orgId: string; secret?: string }[];
    expect(apps.map((app) => [app.name, app.orgId]).sort()).toEqual([
      ['Chat', beta.id],
      ['Quiz', alpha.id],
    ]);
    expect(all.body).not.toContain(quiz.secret);
    expect((await asOperator('GET', `/operator/realtime/apps?org=${beta.id}`)).json().apps).toEqual([
      expect.objectContaining({ id: chat.id, name: 'Chat', orgId: beta.id }),
    ]);
    const first = (await asOperator('GET', '/operator/realtime/apps?limit=1')).json();
    expect(first.apps).toHaveLength(1);
    const second = (await asOperator('GET', `/operator/realtime/apps?limit=1&after=${first.next}`)).json();
    expect(second).toEqual({ apps: [expect.objectContaining({})], next: null });
    expect(second.apps[0].id).not.toBe(first.apps[0].id);

    const activity = await asOperator('GET', `/operator/realtime/apps/${quiz.id}/activity`);
    expect(activity.statusCode, activity.body).toBe(200);
    expect(activity.json()).toEqual({ connections: 0, channels: [], truncated: false });
    const missing = await asOperator('GET', `/operator/realtime/apps/${crypto.randomUUID()}/activity`);
    expect(missing.statusCode).toBe(404);
  });

  it("changes another organization's members and invitations, audited with the operator as actor", async () => {
    // The operator belongs to no organization: it changes Carla's role in Cabinet Alpha.
    const promote = await asOperator('PATCH', `/operator/organizations/${alpha.id}/members/${carla.userId}`, {
      role: 'admin',
    });
    expect(promote.statusCode, promote.body).toBe(204);
    const members = async () =>
      (await callAs(socle, alice, 'GET', '/org/members', { orgId: alpha.id })).json() as {
        userId: string;
        role: string;
      }[];
    expect((await members()).find((member) => member.userId === carla.userId)?.role).toBe('admin');

    // Invites someone; the organization's owner sees the invitation, the invitee can accept it.
    const invite = await asOperator('POST', `/operator/organizations/${alpha.id}/invitations`, {
      email: 'dora@operator-orgs.test',
      role: 'viewer',
    });
    expect(invite.statusCode, invite.body).toBe(201);
    const pending = (await callAs(socle, alice, 'GET', '/org/invitations', { orgId: alpha.id })).json();
    expect(pending.map((invitation: { email: string }) => invitation.email)).toContain(
      'dora@operator-orgs.test',
    );
    expect((await asOperator('GET', `/operator/organizations/${alpha.id}/invitations`)).json()).toEqual([
      expect.objectContaining({ id: invite.json().id, email: 'dora@operator-orgs.test', role: 'viewer' }),
    ]);
    const dora = await socle.newUser({ email: 'dora@operator-orgs.test' });
    const accepted = await callAs(socle, dora, 'POST', '/invitations/accept', {
      payload: { token: invitationTokens.get('dora@operator-orgs.test') },
    });
    expect(accepted.statusCode, accepted.body).toBe(200);

    // Another invitation, revoked by the operator.
    const second = await asOperator('POST', `/operator/organizations/${alpha.id}/invitations`, {
      email: 'emile@operator-orgs.test',
      role: 'member',
    });
    const revoke = await asOperator(
      'DELETE',
      `/operator/organizations/${alpha.id}/invitations/${second.json().id}`,
    );
    expect(revoke.statusCode, revoke.body).toBe(204);
    expect((await asOperator('GET', `/operator/organizations/${alpha.id}/invitations`)).json()).toEqual([]);

    // Removes Carla; the last owner stays whoever asks.
    const remove = await asOperator('DELETE', `/operator/organizations/${alpha.id}/members/${carla.userId}`);
    expect(remove.statusCode, remove.body).toBe(204);
    expect((await members()).map((member) => member.userId)).not.toContain(carla.userId);
    const lastOwner = await asOperator(
      'DELETE',
      `/operator/organizations/${alpha.id}/members/${alice.userId}`,
    );
    expect(lastOwner.json().code).toBe('tenancy.last_owner');
    expect((await members()).map((member) => member.userId)).toContain(alice.userId);

    // An organization that does not exist, a member of another one: 404, nothing written.
    const nowhere = crypto.randomUUID();
    const noOrg = await asOperator('POST', `/operator/organizations/${nowhere}/invitations`, {
      email: 'ghost@operator-orgs.test',
      role: 'member',
    });
    expect(noOrg.statusCode).toBe(404);
    expect(noOrg.json().code).toBe('tenancy.organization_not_found');
    const notHere = await asOperator('PATCH', `/operator/organizations/${beta.id}/members/${alice.userId}`, {
      role: 'viewer',
    });
    expect(notHere.json().code).toBe('tenancy.member_not_found');
    const badRole = await asOperator('PATCH', `/operator/organizations/${alpha.id}/members/${dora.userId}`, {
      role: 'owner',
    });
    expect(badRole.statusCode).toBe(400);

    // The organization's own log shows what the operator did, with the operator as actor.
    await settle();
    const log = (
      await callAs(socle, alice, 'GET', '/org/audit-events?action=PATCH%20%2Foperator', { orgId: alpha.id })
    ).json();
    expect(log.events).toEqual([
      expect.objectContaining({
        action: 'PATCH /operator/organizations/:orgId/members/:userId',
        actorOperator: true,
        actorUserId: null,
        tenantId: alpha.id,
        target: { orgId: alpha.id, userId: carla.userId },
        status: 204,
      }),
    ]);
    const operatorActions = (
      await asOperator('GET', `/operator/audit-events?org=${alpha.id}&limit=200`)
    ).json().events as AuditEvent[];
    expect(
      operatorActions
        .filter((event) => event.actorOperator)
        .map((event) => `${event.action} ${event.status}`)
        .reverse(),
    ).toEqual([
      'PATCH /operator/organizations/:orgId/members/:userId 204',
      'POST /operator/organizations/:orgId/invitations 201',
      'POST /operator/organizations/:orgId/invitations 201',
      'DELETE /operator/organizations/:orgId/invitations/:id 204',
      'DELETE /operator/organizations/:orgId/members/:userId 204',
      'DELETE /operator/organizations/:orgId/members/:userId 409',
    ]);
    // Refused requests of people are not the operator's: Alice's own calls stay hers.
    expect(
      operatorActions
        .filter((event) => event.actorUserId === alice.userId)
        .every((event) => !event.actorOperator),
    ).toBe(true);
  });
});
