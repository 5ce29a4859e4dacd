import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestAccounts, createTestSocle, type TestSocle } from '../src/testing/index.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

describeEachDatabase('The test factory of tenants and users', (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: createBuiltInModules() });
  });
  afterAll(() => socle?.dispose());

  it('makes an organization owned by a signed-up account, members with their role, and API keys', async () => {
    const tenant = await socle.newTenant({ name: 'Factory Ltd' });
    const owned = await callAs(socle, tenant.owner, 'GET', '/org', { orgId: tenant.id });
    expect(owned.json()).toMatchObject({ id: tenant.id, name: 'Factory Ltd', role: 'owner' });

    const viewer = await socle.newMember(tenant, { role: 'viewer' });
    const members = await callAs(socle, viewer, 'GET', '/org/members', { orgId: tenant.id });
    expect(members.statusCode, members.body).toBe(200);
    expect(members.json()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ userId: tenant.owner.userId, role: 'owner' }),
        expect.objectContaining({ userId: viewer.userId, email: viewer.email, role: 'viewer' }),
      ]),
    );

    const { key } = await socle.newApiKey(tenant);
    const withKey = await socle.app.inject({ url: '/org', headers: { 'x-api-key': key } });
    expect(withKey.json()).toMatchObject({ id: tenant.id });
  });

  it('signs an account in again for a fresh access token', async () => {
    const user = await socle.newUser();
    const token = await socle.newAccessToken(user);
    expect(token).not.toBe(user.token);
    expect((await callAs(socle, { token }, 'GET', '/me')).json()).toMatchObject({ id: user.userId });
  });

  it('fails the test with what the route answered when it refuses', async () => {
    const user = await socle.newUser();
    await expect(socle.newUser({ email: user.email })).rejects.toThrow(/POST \/auth\/sign-up answered 409/);
  });

  it('opens many signed-in accounts at once, sharing one password hash, that sign in through the route', async () => {
    const players = await createTestAccounts(socle, 5, { emailPrefix: 'player' });
    expect(new Set(players.map((player) => player.userId)).size).toBe(5);
    for (const player of players)
      expect((await callAs(socle, player, 'GET', '/me')).json()).toMatchObject({
        id: player.userId,
        email: player.email,
      });
    // The real sign-in route takes the shared password (TEST_PASSWORD) for any of them.
    const token = await socle.newAccessToken(players[4] as (typeof players)[number]);
    expect((await callAs(socle, { token }, 'GET', '/me')).json()).toMatchObject({ id: players[4]?.userId });
    // Five rows, no more (one account each).
    const { rows } = await socle.db.withConnection(
      (connection) =>
        connection.query<{ count: string }>(
          "select count(*)::text as count from identity.users where email like 'player-%'",
        ),
      'owner',
    );
    expect(rows[0]?.count).toBe('5');
  });
});
