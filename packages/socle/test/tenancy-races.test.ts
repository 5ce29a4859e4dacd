import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import type { TestSocle } from '../src/testing/index.js';
import { TEST_PASSWORD } from './support/api-client.js';
import { nodesOnSharedDatabase, postgresTarget } from './support/each-database.js';

// Two nodes on one Postgres, called on real sockets at the same moment: races between
// transactions need several database sessions, which the embedded database does not have.
describe.skipIf(!postgresTarget.available)(
  `Membership changes racing on two nodes [postgres${postgresTarget.available ? '' : `: ${postgresTarget.reason}`}]`,
  () => {
    const startNode = nodesOnSharedDatabase(postgresTarget, () => ({ modules: createBuiltInModules() }));
    const nodes: { socle: TestSocle; url: string }[] = [];
    beforeAll(async () => {
      for (let index = 0; index < 2; index++) {
        const socle = await startNode({});
        nodes.push({ socle, url: await socle.listen() });
      }
    }, 60_000);
    afterAll(async () => {
      for (const node of nodes) await node.socle.dispose();
    });

    async function call(node: number, method: string, path: string, body?: object, headers = {}) {
      const response = await fetch(`${nodes[node]?.url}${path}`, {
        method,
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
    }
    async function signUp() {
      const email = `race-${randomUUID().slice(0, 8)}@example.com`;
      const { body } = await call(0, 'POST', '/auth/sign-up', { email, password: TEST_PASSWORD });
      return {
        email,
        userId: body.user.id as string,
        headers: { authorization: `Bearer ${body.tokens.accessToken}` },
      };
    }
    /** An organization of a new owner with `count` members, each with the headers to act in it. */
    async function organization(count: number) {
      const owner = await signUp();
      const org = (await call(0, 'POST', '/orgs', { name: 'Race' }, owner.headers)).body;
      const inOrg = (headers: object) => ({ ...headers, 'x-org-id': org.id as string });
      const members = [];
      for (let index = 0; index < count; index++) {
        const person = await signUp();
        await call(
          0,
          'POST',
          '/org/invitations',
          { email: person.email, role: 'member' },
          inOrg(owner.headers),
        );
        const { rows } = await sql<{ text_body: string }>`
          select text_body from mail.outbox where recipient = ${person.email}`.execute(
          (nodes[0] as { socle: TestSocle }).socle.db.kysely,
        );
        const token = rows
          .map((row) => /Your invitation token: (\S+)/.exec(row.text_body)?.[1])
          .find((found) => found !== undefined);
        expect((await call(0, 'POST', '/invitations/accept', { token }, person.headers)).status).toBe(200);
        members.push({ ...person, headers: inOrg(person.headers) });
      }
      return { orgId: org.id as string, owner: { ...owner, headers: inOrg(owner.headers) }, members };
    }
    /** Acting in the organization as `userId` (row-level security confines the statement). */
    const inOrganization = (orgId: string, userId: string) =>
      (nodes[0] as { socle: TestSocle }).socle.db.withSettings({
        'app.tenant_id': orgId,
        'app.user_id': userId,
      });
    const roles = async (orgId: string, userId: string) => {
      const { rows } = await sql<{ user_id: string; role: string }>`
        select user_id, role from tenancy.memberships where tenant_id = ${orgId}`.execute(
        inOrganization(orgId, userId),
      );
      return Object.fromEntries(rows.map((row) => [row.user_id, row.role]));
    };

    it('lets only one of two simultaneous ownership transfers through: one owner, chosen once', async () => {
      // Five organizations at once, so the two transfers of at least one overlap.
      const organizations = await Promise.all([1, 2, 3, 4, 5].map(() => organization(2)));
      await Promise.all(
        organizations.map(async ({ orgId, owner, members }) => {
          const [toFirst, toSecond] = members as [(typeof members)[0], (typeof members)[0]];
          const answers = await Promise.all([
            call(0, 'POST', '/org/transfer-ownership', { userId: toFirst.userId }, owner.headers),
            call(1, 'POST', '/org/transfer-ownership', { userId: toSecond.userId }, owner.headers),
          ]);
          expect(answers.map((answer) => answer.status).sort()).toEqual([204, 403]);
          expect(answers.find((answer) => answer.status === 403)?.body.code).toBe('tenancy.forbidden');
          const after = await roles(orgId, owner.userId);
          expect(Object.values(after).filter((role) => role === 'owner')).toHaveLength(1);
          expect(after[owner.userId]).toBe('admin');
        }),
      );
    });

    it('refuses a second transfer by the former owner at once, on the node that just saw it as owner', async () => {
      const { orgId, owner, members } = await organization(2);
      const [first, second] = members as [(typeof members)[0], (typeof members)[0]];
      // The node has the owner's membership fresh in memory from this request.
      expect((await call(0, 'GET', '/org', undefined, owner.headers)).status).toBe(200);
      expect(
        (await call(0, 'POST', '/org/transfer-ownership', { userId: first.userId }, owner.headers)).status,
      ).toBe(204);
      const again = await call(
        0,
        'POST',
        '/org/transfer-ownership',
        { userId: second.userId },
        owner.headers,
      );
      expect(again.status).toBe(403);
      expect((await roles(orgId, owner.userId))[second.userId]).toBe('member');
    });

    it('keeps an owner when the last two leave at the same moment', async () => {
      const { orgId, owner, members } = await organization(1);
      const other = members[0] as (typeof members)[0];
      // Two owners (the API makes one by transfer, which demotes the giver: set it in SQL).
      const promoted =
        await sql`update tenancy.memberships set role = 'owner' where tenant_id = ${orgId}`.execute(
          inOrganization(orgId, owner.userId),
        );
      expect(promoted.numAffectedRows).toBe(2n);
      const answers = await Promise.all([
        call(0, 'POST', '/org/leave', {}, owner.headers),
        call(1, 'POST', '/org/leave', {}, other.headers),
      ]);
      expect(answers.map((answer) => answer.status).sort()).toEqual([204, 409]);
      expect(Object.values(await roles(orgId, owner.userId))).toEqual(['owner']);
    });
  },
);
