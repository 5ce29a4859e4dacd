import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createOutboundCredentialsModule,
  defineModule,
  defineProvider,
  type OutboundClient,
  type OutboundServices,
  sql,
} from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import {
  createTestSocle,
  type FaultyProvider,
  startFaultyProvider,
  type TestSocle,
  type TestTenant,
} from '../src/testing/index.js';
import { callAs, type TestUser } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

const KEY_OF_A = 'r8_key-of-cabinet-A-SECRET-7Qa9';

describeEachDatabase(
  'Per-organization provider keys: sealed at rest, used for that organization only',
  (target) => {
    let socle: TestSocle;
    let fake: FaultyProvider;
    let alice: TestUser;
    let bruno: TestUser;
    let orgA: TestTenant;
    let orgB: TestTenant;

    beforeAll(async () => {
      fake = await startFaultyProvider();
      const provider = defineProvider('imagegen', {
        baseUrl: fake.url,
        retry: false,
        auth: { type: 'tenant-key' },
      });
      const app = defineModule<unknown, { imagegen: OutboundClient }>({
        name: 'studio',
        dependsOn: ['outbound', 'tenancy'],
        setup: (context) => ({
          imagegen: context.servicesOf<OutboundServices>('outbound').outbound.client(provider),
        }),
        routes(app, { services }) {
          app.post('/studio/renders', async () =>
            (await services.imagegen.request({ method: 'POST', path: 'predictions', json: {} })).json(),
          );
        },
      });
      socle = await createTestSocle(target, {
        modules: [...createBuiltInModules(), createOutboundCredentialsModule(), app],
        config: { jobsQueues: [] },
      });
      alice = await socle.newUser({ email: 'alice@keys.test' });
      bruno = await socle.newUser({ email: 'bruno@keys.test' });
      orgA = await socle.newTenant({ owner: alice, name: 'Cabinet A' });
      orgB = await socle.newTenant({ owner: bruno, name: 'Cabinet B' });
    });
    afterAll(async () => {
      await socle?.dispose();
      await fake?.close();
    });

    it('stores a key sealed, shows only its hint, and sends it on the calls of its organization only', async () => {
      const stored = await callAs(socle, alice, 'PUT', '/org/outbound/credentials/imagegen', {
        orgId: orgA.id,
        payload: { key: KEY_OF_A },
      });
      expect(stored.statusCode, stored.body).toBe(200);
      expect(stored.json()).toMatchObject({ provider: 'imagegen', hint: '…7Qa9' });
      const listed = await callAs(socle, alice, 'GET', '/org/outbound/credentials', { orgId: orgA.id });
      expect(listed.json().credentials).toEqual([
        { provider: 'imagegen', hint: '…7Qa9', updatedAt: expect.any(String) },
      ]);
      expect(listed.body).not.toContain(KEY_OF_A);
      const rows = await socle.scope.run({ tenantId: orgA.id }, () =>
        socle.db.transaction((trx) =>
          sql<{ sealed_key: string }>`select sealed_key from outbound_credentials.credentials`.execute(trx),
        ),
      );
      expect(rows.rows).toHaveLength(1);
      expect(rows.rows[0]?.sealed_key).toMatch(/^sb1\./);
      expect(rows.rows[0]?.sealed_key).not.toContain('SECRET');

      const call = await callAs(socle, alice, 'POST', '/studio/renders', { orgId: orgA.id });
      expect(call.statusCode, call.body).toBe(200);
      expect(fake.requests.at(-1)?.headers.authorization).toBe(`Bearer ${KEY_OF_A}`);

      const sent = fake.requests.length;
      const other = await callAs(socle, bruno, 'POST', '/studio/renders', { orgId: orgB.id });
      expect(other.statusCode).toBe(409);
      expect(other.json()).toMatchObject({ code: 'outbound.credential_missing' });
      expect(other.body).not.toContain(KEY_OF_A);
      expect(fake.requests).toHaveLength(sent);
      expect(
        (await callAs(socle, bruno, 'GET', '/org/outbound/credentials', { orgId: orgB.id })).json(),
      ).toEqual({
        credentials: [],
      });
    });

    it('lets admins only store or remove keys, and refuses bad input naming the field', async () => {
      const member = await socle.newMember(orgA, { role: 'member' });
      const refused = await callAs(socle, member, 'PUT', '/org/outbound/credentials/imagegen', {
        orgId: orgA.id,
        payload: { key: 'another-key-1234' },
      });
      expect(refused.statusCode).toBe(403);
      const tooShort = await callAs(socle, alice, 'PUT', '/org/outbound/credentials/imagegen', {
        orgId: orgA.id,
        payload: { key: 'short' },
      });
      expect(tooShort.statusCode).toBe(400);
      expect(tooShort.body).toContain('key');

      const removed = await callAs(socle, alice, 'DELETE', '/org/outbound/credentials/imagegen', {
        orgId: orgA.id,
      });
      expect(removed.statusCode).toBe(204);
      const again = await callAs(socle, alice, 'DELETE', '/org/outbound/credentials/imagegen', {
        orgId: orgA.id,
      });
      expect(again.statusCode).toBe(404);
      expect(again.json()).toMatchObject({ code: 'outbound.credential_not_found' });
    });
  },
);
