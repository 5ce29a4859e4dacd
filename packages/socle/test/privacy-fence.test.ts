import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { callAs, TEST_PASSWORD } from './support/api-client.js';
import { describeEachDatabase, nodesOnSharedDatabase, postgresTarget } from './support/each-database.js';

/**
 * An erased person keeps nothing that works: the access token they erased with, their refresh
 * token and the API keys they minted are all refused at once, on this node and on any other node
 * of the same database, before they expire.
 */
function fenceScenario(nodes: () => { first: TestSocle; second: TestSocle }) {
  it('refuses every credential of the erased person at once, on every node', async () => {
    const { first, second } = nodes();
    const person = await first.newUser({ email: `fenced-${crypto.randomUUID()}@example.com` });
    const colleague = await first.newUser({ email: `colleague-${crypto.randomUUID()}@example.com` });
    await sql`update identity.users set email_verified_at = now() where id = ${colleague.userId}`.execute(
      first.db.kysely,
    );
    const tenant = await first.newTenant({ owner: person, name: 'Fenced Ltd' });
    const orgId = tenant.id;
    // A colleague stays, so the organization outlives the person's erasure.
    await first.newMember(tenant, { user: colleague, role: 'member' });
    const { key: apiKey } = await first.newApiKey(tenant, {
      name: 'before erasure',
      scopes: [],
      role: 'admin',
    });
    // The second node has verified the token before: erasure must reach past what it remembers.
    expect((await callAs(second, person, 'GET', '/me')).statusCode).toBe(200);

    const erased = await callAs(first, person, 'POST', '/me/erase', { payload: { password: TEST_PASSWORD } });
    expect(erased.statusCode, erased.body).toBe(200);

    for (const node of [first, second]) {
      const attempts = [
        await callAs(node, person, 'GET', '/me'),
        await callAs(node, person, 'POST', '/orgs', { payload: { name: 'After erasure' } }),
        await callAs(node, person, 'POST', '/org/invitations', {
          orgId,
          payload: { email: 'accomplice@example.com', role: 'admin' },
        }),
        await callAs(node, person, 'POST', '/org/api-keys', {
          orgId,
          payload: { name: 'after erasure', scopes: [], role: 'admin' },
        }),
        await callAs(node, person, 'GET', '/me/export'),
        await node.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refreshToken: person.refreshToken },
        }),
        await node.app.inject({ method: 'GET', url: '/org/members', headers: { 'x-api-key': apiKey } }),
      ];
      expect(
        attempts.map((response) => response.statusCode),
        attempts.map((response) => response.body).join('\n'),
      ).toEqual([401, 401, 401, 401, 401, 401, 401]);
      expect(attempts[0]?.json().code).toBe('auth.credentials_revoked');
    }
    // Nothing was created in their name after the erasure.
    const { rows } = await sql<{ count: number }>`
      select count(*)::int as count from tenancy.api_keys where created_by = ${person.userId} and revoked_at is null`.execute(
      first.db.kysely,
    );
    expect(rows[0]?.count).toBe(0);
    // The colleague, who now owns the organization, keeps working.
    expect((await callAs(second, colleague, 'GET', '/org/members', { orgId })).statusCode).toBe(200);
  });
}

describeEachDatabase('Erasure fences the erased account (one node)', (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: createBuiltInModules() });
  });
  afterAll(() => socle?.dispose());
  fenceScenario(() => ({ first: socle, second: socle }));
});

describe.skipIf(!postgresTarget.available)(
  `Erasure fences the erased account on every node of one database [postgres${postgresTarget.available ? '' : `: ${postgresTarget.reason}`}]`,
  () => {
    const startNode = nodesOnSharedDatabase(postgresTarget, () => ({ modules: createBuiltInModules() }));
    let first: TestSocle;
    let second: TestSocle;
    beforeAll(async () => {
      first = await startNode({});
      second = await startNode({});
    });
    afterAll(async () => {
      await first?.dispose();
      await second?.dispose();
    });
    fenceScenario(() => ({ first, second }));
  },
);
