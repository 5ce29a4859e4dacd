import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createManualClock, defineModule } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTenancyModule, requireOrgRole, requireScope } from '../src/modules/tenancy/index.js';
import { createTestSocle, type TestSocle, type TestUser } from '../src/testing/index.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

const KEY_SHAPE = /^sk_[A-Za-z0-9_-]{43}$/;

/** An app route guarded by a scope, as any module would write it. */
const reports = defineModule({
  name: 'reports',
  dependsOn: ['tenancy'],
  routes(app) {
    app.get('/reports/summary', async (request) => {
      const org = requireOrgRole(request, 'viewer');
      requireScope(request, 'reports:read');
      return { orgId: org.orgId, userId: org.userId, viaApiKey: request.apiKey?.id ?? null };
    });
  },
});

describeEachDatabase('Tenancy: API keys per organization', (target) => {
  let socle: TestSocle;
  const clock = createManualClock(new Date('2026-06-01T08:00:00Z'));
  let counter = 0;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      clock,
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 30 * 24 * 3600, rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        reports,
      ],
    });
  });
  afterAll(() => socle?.dispose());

  type Caller = TestUser;
  interface CreatedKey {
    id: string;
    name: string;
    prefix: string;
    scopes: string[];
    role: string;
    key: string;
  }

  const user = (): Promise<Caller> =>
    socle.newUser({ email: `keys${++counter}-${randomUUID().slice(0, 6)}@example.com` });

  const call = (
    caller: Caller,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    orgId?: string,
    payload?: object,
  ) => callAs(socle, caller, method, url, { orgId, payload });

  function withKey(
    key: string,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    url: string,
    extra: { orgId?: string; payload?: object } = {},
  ) {
    return socle.app.inject({
      method,
      url,
      ...(extra.payload ? { payload: extra.payload } : {}),
      headers: { 'x-api-key': key, ...(extra.orgId ? { 'x-org-id': extra.orgId } : {}) },
    });
  }

  async function orgOf(owner: Caller, name = 'Cabinet Dupont'): Promise<string> {
    return (await socle.newTenant({ owner, name })).id;
  }

  async function keyOf(admin: Caller, orgId: string, body: object): Promise<CreatedKey> {
    const response = await call(admin, 'POST', '/org/api-keys', orgId, body);
    expect(response.statusCode).toBe(201);
    return response.json();
  }

  it('shows the key once; listings show its prefix, never the key or its hash', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const created = await keyOf(owner, orgId, { name: 'CI deploy', scopes: ['crm:read', 'crm:write'] });
    expect(created).toMatchObject({ name: 'CI deploy', scopes: ['crm:read', 'crm:write'], role: 'member' });
    expect(created.key).toMatch(KEY_SHAPE);
    expect(created.prefix).toMatch(/^sk_[A-Za-z0-9_-]{8}$/);
    expect(created.key.startsWith(created.prefix)).toBe(true);

    const listed = await call(owner, 'GET', '/org/api-keys', orgId);
    expect(listed.statusCode).toBe(200);
    expect(listed.json()).toEqual([
      {
        id: created.id,
        name: 'CI deploy',
        prefix: created.prefix,
        scopes: ['crm:read', 'crm:write'],
        role: 'member',
        createdAt: expect.any(String),
        lastUsedAt: null,
        expiresAt: null,
      },
    ]);
    expect(listed.body).not.toContain(created.key);
    expect(listed.body).not.toContain(created.key.slice(created.prefix.length));
    expect(listed.body).not.toMatch(/hash/i);
  });

  it('acts in its organization with its role on org-scoped routes', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const { key } = await keyOf(owner, orgId, { name: 'sync', scopes: [], role: 'viewer' });

    const org = await withKey(key, 'GET', '/org');
    expect(org.statusCode).toBe(200);
    expect(org.json()).toMatchObject({ id: orgId, role: 'viewer' });
    const members = await withKey(key, 'GET', '/org/members', { orgId });
    expect(members.statusCode).toBe(200);
    expect(members.json().map((member: { userId: string }) => member.userId)).toEqual([owner.userId]);

    const rename = await withKey(key, 'PATCH', '/org', { payload: { name: 'Hijacked' } });
    expect(rename.statusCode).toBe(403);
    expect(rename.json()).toMatchObject({ code: 'tenancy.forbidden', requiredRole: 'admin' });

    const admin = await keyOf(owner, orgId, { name: 'admin bot', scopes: [], role: 'admin' });
    expect((await withKey(admin.key, 'PATCH', '/org', { payload: { name: 'Renamed' } })).statusCode).toBe(
      204,
    );
    expect((await call(owner, 'GET', '/org', orgId)).json().name).toBe('Renamed');
  });

  it('sees only its organization even when its creator belongs to several', async () => {
    const owner = await user();
    const orgA = await orgOf(owner, 'Cabinet A');
    await orgOf(owner, 'Cabinet B');
    const { key } = await keyOf(owner, orgA, { name: 'A only', scopes: [] });
    const members = (await withKey(key, 'GET', '/org/members')).json();
    expect(members).toHaveLength(1);
    expect((await call(owner, 'GET', '/org/members', orgA)).json()).toHaveLength(1);
  });

  it('is refused by user-only routes and cannot manage keys', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const { key } = await keyOf(owner, orgId, { name: 'bot', scopes: [], role: 'admin' });
    expect((await withKey(key, 'GET', '/orgs')).json().code).toBe('auth.unauthenticated');
    expect((await withKey(key, 'POST', '/org/leave')).statusCode).toBe(401);
    const mint = await withKey(key, 'POST', '/org/api-keys', {
      orgId,
      payload: { name: 'child', scopes: [] },
    });
    expect(mint.statusCode).toBe(401);
    expect((await withKey(key, 'GET', '/org/api-keys', { orgId })).statusCode).toBe(401);
  });

  it('never grants the owner role to a key', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const owned = await call(owner, 'POST', '/org/api-keys', orgId, {
      name: 'too strong',
      scopes: [],
      role: 'owner',
    });
    expect(owned.statusCode).toBe(400);
  });

  it('checks scopes on module routes; signed-in users are not limited by scopes', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const narrow = await keyOf(owner, orgId, { name: 'crm only', scopes: ['crm:read'] });
    const denied = await withKey(narrow.key, 'GET', '/reports/summary');
    expect(denied.statusCode).toBe(403);
    expect(denied.json()).toMatchObject({ code: 'auth.insufficient_scope', requiredScope: 'reports:read' });
    expect(denied.json().detail).toContain('reports:read');

    const reporting = await keyOf(owner, orgId, { name: 'reports', scopes: ['reports:read'] });
    const allowed = await withKey(reporting.key, 'GET', '/reports/summary');
    expect(allowed.statusCode).toBe(200);
    expect(allowed.json()).toEqual({ orgId, userId: owner.userId, viaApiKey: reporting.id });
    expect((await call(owner, 'GET', '/reports/summary', orgId)).json().viaApiKey).toBeNull();
  });

  it('rejects unknown, malformed, revoked (after the 5 s cache) and expired keys', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    for (const bad of ['sk_nope', `sk_${'A'.repeat(43)}`, 'not a key']) {
      const response = await withKey(bad, 'GET', '/org');
      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('auth.api_key_invalid');
    }

    const revoked = await keyOf(owner, orgId, { name: 'old', scopes: [] });
    expect((await withKey(revoked.key, 'GET', '/org')).statusCode).toBe(200);
    expect((await call(owner, 'DELETE', `/org/api-keys/${revoked.id}`, orgId)).statusCode).toBe(204);
    expect((await call(owner, 'GET', '/org/api-keys', orgId)).json()).toEqual([]);
    expect((await call(owner, 'DELETE', `/org/api-keys/${revoked.id}`, orgId)).statusCode).toBe(404);
    clock.advance(6000);
    const afterRevoke = await withKey(revoked.key, 'GET', '/org');
    expect(afterRevoke.statusCode).toBe(401);
    expect(afterRevoke.json().code).toBe('auth.api_key_invalid');

    const expiring = await keyOf(owner, orgId, { name: 'temp', scopes: [], expiresInDays: 1 });
    expect((await withKey(expiring.key, 'GET', '/org')).statusCode).toBe(200);
    clock.advance(24 * 60 * 60 * 1000 + 1000);
    const expired = await withKey(expiring.key, 'GET', '/org');
    expect(expired.statusCode).toBe(401);
    expect(expired.json().code).toBe('auth.api_key_invalid');
  });

  it('records the last use at most once a minute', async () => {
    const owner = await user();
    const orgId = await orgOf(owner);
    const created = await keyOf(owner, orgId, { name: 'used', scopes: [] });
    const lastUsed = async () =>
      (await call(owner, 'GET', '/org/api-keys', orgId)).json()[0].lastUsedAt as string | null;

    const first = clock.now().toISOString();
    await withKey(created.key, 'GET', '/org');
    expect(await lastUsed()).toBe(first);
    clock.advance(30_000);
    await withKey(created.key, 'GET', '/org');
    expect(await lastUsed()).toBe(first);
    clock.advance(30_000);
    const third = clock.now().toISOString();
    await withKey(created.key, 'GET', '/org');
    expect(await lastUsed()).toBe(third);
  });

  it("refuses an X-Org-Id other than the key's organization, and a key sent with a bearer token", async () => {
    const ownerA = await user();
    const orgA = await orgOf(ownerA, 'Cabinet A');
    const ownerB = await user();
    const orgB = await orgOf(ownerB, 'Cabinet B');
    const { key } = await keyOf(ownerA, orgA, { name: 'A', scopes: [] });

    const mismatch = await withKey(key, 'GET', '/org', { orgId: orgB });
    expect(mismatch.statusCode).toBe(403);
    expect(mismatch.json().code).toBe('auth.api_key_org_mismatch');
    expect((await withKey(key, 'GET', '/org', { orgId: orgA })).statusCode).toBe(200);
    expect((await withKey(key, 'GET', '/org', { orgId: 'not-a-uuid' })).json().code).toBe(
      'tenancy.invalid_org_id',
    );

    const both = await socle.app.inject({
      method: 'GET',
      url: '/org',
      headers: { authorization: `Bearer ${ownerA.token}`, 'x-api-key': key, 'x-org-id': orgA },
    });
    expect(both.statusCode).toBe(400);
    expect(both.json().code).toBe('auth.conflicting_credentials');
  });

  it("never shows or revokes another organization's keys", async () => {
    const ownerA = await user();
    const orgA = await orgOf(ownerA, 'Cabinet A');
    const ownerB = await user();
    const orgB = await orgOf(ownerB, 'Cabinet B');
    const keyA = await keyOf(ownerA, orgA, { name: 'A', scopes: [] });

    expect((await call(ownerB, 'GET', '/org/api-keys', orgB)).json()).toEqual([]);
    const revoke = await call(ownerB, 'DELETE', `/org/api-keys/${keyA.id}`, orgB);
    expect(revoke.statusCode).toBe(404);
    expect(revoke.json().code).toBe('tenancy.api_key_not_found');
    expect((await call(ownerB, 'DELETE', `/org/api-keys/${randomUUID()}`, orgB)).statusCode).toBe(404);
    clock.advance(6000);
    expect((await withKey(keyA.key, 'GET', '/org')).statusCode).toBe(200);
    expect((await call(ownerA, 'GET', '/org/api-keys', orgA)).json()).toHaveLength(1);
  });
});
