import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createManualClock } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { callAs, type TestUser } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

describeEachDatabase('Tenancy: organizations, members, invitations', (target) => {
  let socle: TestSocle;
  const clock = createManualClock(new Date('2026-06-01T08:00:00Z'));
  const sentInvitations = new Map<string, string>();
  let counter = 0;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      clock,
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 30 * 24 * 3600, rateLimits: false }),
        createMailModule(),
        createTenancyModule({
          deliverInvitation: async (invitation) => {
            sentInvitations.set(invitation.email, invitation.token);
          },
        }),
      ],
    });
  });
  afterAll(() => socle?.dispose());

  type Caller = TestUser;
  const user = (): Promise<Caller> => socle.newUser({ email: `member${++counter}@example.com` });
  const call = (
    caller: Caller,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    orgId?: string,
    payload?: object,
  ) => callAs(socle, caller, method, url, { orgId, payload });

  async function orgOf(owner: Caller, name = 'Cabinet Dupont'): Promise<string> {
    const response = await call(owner, 'POST', '/orgs', undefined, { name });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({ name, role: 'owner' });
    return response.json().id;
  }

  async function join(
    orgId: string,
    admin: Caller,
    role: 'admin' | 'member' | 'viewer' = 'member',
  ): Promise<Caller> {
    const invitee = await user();
    expect(
      (await call(admin, 'POST', '/org/invitations', orgId, { email: invitee.email, role })).statusCode,
    ).toBe(201);
    const accepted = await call(invitee, 'POST', '/invitations/accept', undefined, {
      token: sentInvitations.get(invitee.email),
    });
    expect(accepted.statusCode).toBe(200);
    expect(accepted.json()).toEqual({ orgId, role });
    return invitee;
  }

  it('creates an organization whose creator is the owner, and lists it', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const mine = (await call(owner, 'GET', '/orgs')).json();
    expect(mine).toEqual([expect.objectContaining({ id: orgId, role: 'owner' })]);
    const current = await call(owner, 'GET', '/org', orgId);
    expect(current.json()).toMatchObject({ id: orgId, role: 'owner' });
  });

  it('needs a valid X-Org-Id of an organization the caller belongs to', async () => {
    const owner = await user();
    const stranger = await user();
    const orgId = await orgOf(owner);
    const missing = await call(owner, 'GET', '/org');
    expect(missing.statusCode).toBe(400);
    expect(missing.json().errors).toEqual([{ field: 'header/x-org-id', message: 'is required' }]);
    const bad = await call(owner, 'GET', '/org', 'not-a-uuid');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('tenancy.invalid_org_id');
    const foreign = await call(stranger, 'GET', '/org', orgId);
    expect(foreign.statusCode).toBe(403);
    expect(foreign.json().code).toBe('tenancy.not_a_member');
    expect((await call(stranger, 'GET', '/org', randomUUID())).json().code).toBe('tenancy.not_a_member');
  });

  it('invites by email: only the addressee can accept, once', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const invitee = await user();
    const other = await user();
    await call(owner, 'POST', '/org/invitations', orgId, {
      email: invitee.email.toUpperCase(),
      role: 'viewer',
    });
    const token = sentInvitations.get(invitee.email) as string;
    const pending = (await call(owner, 'GET', '/org/invitations', orgId)).json();
    expect(pending).toEqual([expect.objectContaining({ email: invitee.email, role: 'viewer' })]);

    const wrongPerson = await call(other, 'POST', '/invitations/accept', undefined, { token });
    expect(wrongPerson.json().code).toBe('tenancy.invitation_email_mismatch');
    expect((await call(invitee, 'POST', '/invitations/accept', undefined, { token })).statusCode).toBe(200);
    const again = await call(invitee, 'POST', '/invitations/accept', undefined, { token });
    expect(again.json().code).toBe('tenancy.invitation_invalid');
    const members = (await call(owner, 'GET', '/org/members', orgId)).json();
    expect(members.map((member: { email: string; role: string }) => [member.email, member.role])).toEqual([
      [owner.email, 'owner'],
      [invitee.email, 'viewer'],
    ]);
  });

  it('verifies the address by the acceptance: the token was mailed there', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const invitee = await user();
    const other = await user();
    const verified = async (caller: Caller) => (await call(caller, 'GET', '/me')).json().emailVerified;
    expect(await verified(invitee)).toBe(false);
    await call(owner, 'POST', '/org/invitations', orgId, { email: invitee.email, role: 'member' });
    const token = sentInvitations.get(invitee.email) as string;
    // Someone else's account proves nothing with it, and is not verified by trying.
    expect((await call(other, 'POST', '/invitations/accept', undefined, { token })).statusCode).toBe(403);
    expect(await verified(other)).toBe(false);
    expect(await verified(invitee)).toBe(false);
    expect((await call(invitee, 'POST', '/invitations/accept', undefined, { token })).statusCode).toBe(200);
    expect(await verified(invitee)).toBe(true);
  });

  it('refuses expired and revoked invitations', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const late = await user();
    await call(owner, 'POST', '/org/invitations', orgId, { email: late.email, role: 'member' });
    clock.advance(8 * 24 * 60 * 60 * 1000);
    const expired = await call(late, 'POST', '/invitations/accept', undefined, {
      token: sentInvitations.get(late.email),
    });
    expect(expired.json().code).toBe('tenancy.invitation_invalid');

    const revokedUser = await user();
    const invitation = (
      await call(owner, 'POST', '/org/invitations', orgId, { email: revokedUser.email, role: 'member' })
    ).json();
    expect((await call(owner, 'DELETE', `/org/invitations/${invitation.id}`, orgId)).statusCode).toBe(204);
    const revoked = await call(revokedUser, 'POST', '/invitations/accept', undefined, {
      token: sentInvitations.get(revokedUser.email),
    });
    expect(revoked.json().code).toBe('tenancy.invitation_invalid');
  });

  it('enforces roles: members cannot manage, admins can, owners cannot be removed by admins', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const admin = await join(orgId, owner, 'admin');
    const member = await join(orgId, admin, 'member');

    const memberInvites = await call(member, 'POST', '/org/invitations', orgId, {
      email: 'x@example.com',
      role: 'member',
    });
    expect(memberInvites.statusCode).toBe(403);
    expect(memberInvites.json()).toMatchObject({ code: 'tenancy.forbidden', requiredRole: 'admin' });

    expect(
      (await call(admin, 'PATCH', `/org/members/${member.userId}`, orgId, { role: 'viewer' })).statusCode,
    ).toBe(204);
    expect((await call(admin, 'DELETE', `/org/members/${owner.userId}`, orgId)).json().code).toBe(
      'tenancy.forbidden',
    );
    expect((await call(admin, 'DELETE', `/org/members/${member.userId}`, orgId)).statusCode).toBe(204);
    // The removed member loses access once the short membership cache expires.
    clock.advance(6000);
    expect((await call(member, 'GET', '/org', orgId)).json().code).toBe('tenancy.not_a_member');
  });

  it('keeps an owner: the last owner cannot leave until ownership is transferred', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const admin = await join(orgId, owner, 'admin');
    expect((await call(owner, 'POST', '/org/leave', orgId)).json().code).toBe('tenancy.last_owner');
    expect(
      (await call(owner, 'POST', '/org/transfer-ownership', orgId, { userId: admin.userId })).statusCode,
    ).toBe(204);
    clock.advance(6000);
    expect((await call(admin, 'GET', '/org', orgId)).json().role).toBe('owner');
    expect((await call(owner, 'POST', '/org/leave', orgId)).statusCode).toBe(204);
  });

  it('counts owners of this organization only: owning another one does not let the last owner leave', async () => {
    const owner = await user();
    const orgA = await orgOf(owner, 'Cabinet A');
    await orgOf(owner, 'Cabinet B');
    const left = await call(owner, 'POST', '/org/leave', orgA);
    expect(left.statusCode).toBe(409);
    expect(left.json().code).toBe('tenancy.last_owner');
    const members = (await call(owner, 'GET', '/org/members', orgA)).json();
    expect(members).toHaveLength(1);
  });

  it("never shows or touches another organization's members", async () => {
    const ownerA = await user();
    const orgA = await orgOf(ownerA, 'Cabinet A');
    const memberA = await join(orgA, ownerA);
    const ownerB = await user();
    const orgB = await orgOf(ownerB, 'Cabinet B');

    const listed = (await call(ownerB, 'GET', '/org/members', orgB)).json();
    expect(listed.map((member: { userId: string }) => member.userId)).toEqual([ownerB.userId]);
    const removal = await call(ownerB, 'DELETE', `/org/members/${memberA.userId}`, orgB);
    expect(removal.statusCode).toBe(404);
    expect(removal.json().code).toBe('tenancy.member_not_found');
    const roleChange = await call(ownerB, 'PATCH', `/org/members/${memberA.userId}`, orgB, {
      role: 'viewer',
    });
    expect(roleChange.statusCode).toBe(404);
    expect((await call(ownerA, 'GET', '/org/members', orgA)).json()).toHaveLength(2);
  });
});
