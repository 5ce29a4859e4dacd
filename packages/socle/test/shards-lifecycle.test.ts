import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AuditServices, defineJob, defineModule, Type } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createLedgerModule } from '../src/modules/ledger/index.js';
import { createPaymentsModule } from '../src/modules/payments/index.js';
import type { PrivacyService } from '../src/modules/privacy/index.js';
import { OrgHeaders, requireOrg } from '../src/modules/tenancy/index.js';
import {
  createTestPostgresDatabase,
  createTestSocle,
  type FakeStripe,
  type StripeEvent,
  startFakeStripe,
  type TestDatabase,
  type TestSocle,
  type TestTenant,
  testPostgresAdminUrl,
} from '../src/testing/index.js';
import { paymentsTestCatalog } from './fixtures/payments-module.js';
import { callAs } from './support/api-client.js';
import { postgresTarget } from './support/each-database.js';
import { pusherServer, testRealtimeApp } from './support/realtime-clients.js';
import { placeOnShard, rowsOn, startCheckout } from './support/shards.js';

// Postgres only, by nature: shards are Postgres databases (SHARDS needs DATABASE_URL). Unlike
// shards.test.ts (which moves tenants with logical replication, on a private cluster), nothing here
// needs wal_level=logical: the shards are databases of the shared server, made with unique names,
// and organizations are placed on them by writing the directory (what `socle shards move` does
// for an organization without rows).

interface LifecycleTables {
  'life_notes.notes': { id: string; tenant_id: string; body: string };
}

/** A tenant module: notes, each write enqueuing a job (which nothing works: JOBS_QUEUES is empty). */
function createLifeNotesModule() {
  return defineModule<LifecycleTables>({
    name: 'life_notes',
    dependsOn: ['tenancy', 'jobs'],
    migrations: [
      {
        name: '0001_notes.sql',
        sql: `
          create table notes (
            id uuid primary key,
            tenant_id uuid not null default socle.current_tenant_id() references tenancy.organizations (id) on delete cascade,
            body text not null
          );
          alter table notes enable row level security;
          alter table notes force row level security;
          create policy tenant_isolation on notes
            using (tenant_id = socle.current_tenant_id()) with check (tenant_id = socle.current_tenant_id());
        `,
      },
    ],
    jobs: { noted: defineJob({ async handler() {} }) },
    routes(app, { db, jobs }) {
      const notes = db.withTables<LifecycleTables>();
      app.post(
        '/life-notes',
        { schema: { headers: OrgHeaders, body: Type.Object({ body: Type.String() }) } },
        async (request, reply) => {
          requireOrg(request);
          const id = randomUUID();
          const { body } = request.body as { body: string };
          await notes.transaction(async (trx) => {
            await trx
              .insertInto('life_notes.notes')
              .values({ id, body } as never)
              .execute();
            await jobs.enqueue(trx, 'life_notes.noted', { id });
          });
          return reply.code(201).send({ id });
        },
      );
      app.get('/life-notes', { schema: { headers: OrgHeaders } }, async (request) => {
        requireOrg(request);
        return notes.kysely.selectFrom('life_notes.notes').select(['id', 'body']).execute();
      });
    },
  });
}

const OPERATOR_TOKEN = 'operator-token-of-the-shards-lifecycle-test-0123';

describe.skipIf(!postgresTarget.available)(
  'tenant shards: readiness, deletion, lookups, members (Postgres)',
  () => {
    let socle: TestSocle;
    const shards: Record<'a' | 'b', TestDatabase> = {} as never;
    const adminUrl = testPostgresAdminUrl();

    const admin = (text: string) => rowsOn(adminUrl, text);
    const place = (tenant: TestTenant, shard: 'a' | 'b') => placeOnShard(socle, tenant.id, shard);

    /** Refuses every connection to a shard's database and ends those open; `false` lets them in again. */
    async function cutOff(shard: 'a' | 'b', cut: boolean) {
      const name = shards[shard].name;
      await admin(`alter database ${name} allow_connections ${cut ? 'false' : 'true'}`);
      if (cut)
        await admin(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${name}'`);
    }

    const as = (tenant: TestTenant, token = tenant.owner.token) => ({
      authorization: `Bearer ${token}`,
      'x-org-id': tenant.id,
    });

    beforeAll(async () => {
      shards.a = await createTestPostgresDatabase(adminUrl, 'socle_shard');
      shards.b = await createTestPostgresDatabase(adminUrl, 'socle_shard');
      socle = await createTestSocle(postgresTarget, {
        modules: [...createBuiltInModules(), createLedgerModule(), createLifeNotesModule()],
        config: {
          shards: [
            { name: 'a', url: shards.a.url as string },
            { name: 'b', url: shards.b.url as string },
          ],
          shardsDirectoryCacheMs: 0,
          jobsQueues: [],
        },
        settings: { identity: { operatorToken: OPERATOR_TOKEN } },
      });
    }, 180_000);

    afterAll(async () => {
      await socle?.dispose();
      for (const shard of Object.values(shards)) await shard.drop();
    });

    it('is not ready while a shard is unreachable, naming it, and ready again when it is back; metrics per shard pool', async () => {
      const ready = await socle.app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(200);
      expect(ready.json().checks).toMatchObject({ 'shard:a': { status: 'ok' }, 'shard:b': { status: 'ok' } });

      const onB = await socle.newTenant();
      await place(onB, 'b');
      expect(
        (
          await socle.app.inject({
            method: 'POST',
            url: '/life-notes',
            headers: as(onB),
            payload: { body: 'x' },
          })
        ).statusCode,
      ).toBe(201);

      await cutOff('b', true);
      try {
        const down = await socle.app.inject({ method: 'GET', url: '/readyz' });
        expect(down.statusCode).toBe(503);
        expect(down.json().detail).toContain('shard:b');
        expect(down.json().detail).not.toContain('shard:a');
        expect(down.json().failing).toEqual(['shard:b']);
        // A request of a tenant on the shard answers 503 and counts as an error of that shard.
        const refused = await socle.app.inject({ method: 'GET', url: '/life-notes', headers: as(onB) });
        expect(refused.statusCode).toBe(503);
      } finally {
        await cutOff('b', false);
      }
      const back = await socle.app.inject({ method: 'GET', url: '/readyz' });
      expect(back.statusCode).toBe(200);
      expect(
        (await socle.app.inject({ method: 'GET', url: '/life-notes', headers: as(onB) })).statusCode,
      ).toBe(200);

      const metrics = (await socle.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toMatch(/socle_db_shard_pool_connections\{shard="a",state="max"\} [1-9]/);
      expect(metrics).toMatch(/socle_db_shard_pool_connections\{shard="b",state="total"\} [1-9]/);
      const errorsOf = (shard: string) =>
        Number(
          metrics.match(new RegExp(`socle_db_shard_errors_total\\{shard="${shard}"\\} (\\d+)`))?.[1] ?? 0,
        );
      expect(errorsOf('b')).toBeGreaterThan(0);
      expect(errorsOf('a')).toBe(0);
    }, 60_000);

    it('checks ledger owners against memberships on the primary for an organization on a shard', async () => {
      const tenant = await socle.newTenant();
      await place(tenant, 'a');
      const member = await socle.newMember(tenant);
      const stranger = await socle.newUser();
      const open = (userId: string) =>
        socle.app.inject({
          method: 'POST',
          url: '/org/ledger/accounts',
          headers: as(tenant),
          payload: { owner: { kind: 'user', userId }, unit: 'credits' },
        });
      const opened = await open(member.userId);
      expect(opened.json()).toMatchObject({ owner: { kind: 'user', userId: member.userId } });
      expect(opened.statusCode).toBe(201);
      const refused = await open(stranger.userId);
      expect(refused.statusCode).toBe(422);
      expect(refused.json().code).toBe('ledger.owner_not_member');
      // The account is on the shard.
      expect(
        await rowsOn(shards.a.url, 'select owner_user_id from ledger.accounts where tenant_id = $1', [
          tenant.id,
        ]),
      ).toEqual([{ owner_user_id: member.userId }]);
    }, 60_000);

    it('finds a realtime app of an organization on a shard by its key and id (the HTTP API, no organization named)', async () => {
      const tenant = await socle.newTenant();
      await place(tenant, 'b');
      const created = await socle.app.inject({
        method: 'POST',
        url: '/realtime/apps',
        headers: as(tenant),
        payload: { name: 'Quiz on a shard' },
      });
      expect(created.statusCode).toBe(201);
      const app = created.json() as { id: string; key: string; secret: string };
      expect(await rowsOn(shards.b.url, 'select id from realtime.apps where id = $1', [app.id])).toEqual([
        { id: app.id },
      ]);
      const baseUrl = await socle.listen();
      const pusher = pusherServer(baseUrl, { appId: app.id, appKey: app.key, appSecret: app.secret });
      const triggered = await pusher.trigger('news', 'posted', { on: 'shard b' });
      expect(triggered.status).toBe(200);
      // A key that is nowhere is still refused.
      const unknown = pusherServer(baseUrl, {
        appId: randomUUID(),
        appKey: 'nowhere',
        appSecret: app.secret,
      });
      await expect(unknown.trigger('news', 'posted', {})).rejects.toMatchObject({ status: 404 });
    }, 60_000);

    it('deleting an organization deletes its rows on its shard and its directory entry; a retry after a failure finishes it', async () => {
      const doomed = await socle.newTenant();
      const kept = await socle.newTenant();
      await place(doomed, 'a');
      await place(kept, 'a');
      for (const tenant of [doomed, kept]) {
        for (const body of ['one', 'two'])
          expect(
            (
              await socle.app.inject({
                method: 'POST',
                url: '/life-notes',
                headers: as(tenant),
                payload: { body },
              })
            ).statusCode,
          ).toBe(201);
        expect(
          (
            await socle.app.inject({
              method: 'POST',
              url: '/org/ledger/accounts',
              headers: as(tenant),
              payload: { owner: { kind: 'tenant' }, unit: 'credits' },
            })
          ).statusCode,
        ).toBe(201);
      }
      const countOn = async (tenantId: string) =>
        (
          await rowsOn(
            shards.a.url,
            `select (select count(*) from life_notes.notes where tenant_id = $1)::int as notes,
                  (select count(*) from ledger.accounts where tenant_id = $1)::int as accounts,
                  (select count(*) from audit.events where tenant_id = $1)::int as audit,
                  (select count(*) from jobs.job where data->>'tenantId' = $1::text)::int as jobs`,
            [tenantId],
          )
        )[0];
      expect(await countOn(doomed.id)).toMatchObject({ notes: 2, accounts: 1, jobs: 2 });
      // The audit module writes its rows in batches after the requests: have them written.
      await socle.servicesOf<AuditServices>('audit').flush();
      expect((await countOn(doomed.id)).audit).toBeGreaterThan(0);
      const keptBefore = await countOn(kept.id);

      // The owner, its only member, erases their account: the organization goes with it. The shard
      // refuses connections meanwhile: the erasure fails, and nothing of the shard's rows is lost half-way.
      const erase = () =>
        socle.app.inject({
          method: 'POST',
          url: `/operator/users/${doomed.owner.userId}/erase`,
          headers: { 'x-operator-token': OPERATOR_TOKEN },
          payload: { confirmEmail: doomed.owner.email },
        });
      await cutOff('a', true);
      let failed: Awaited<ReturnType<typeof erase>>;
      try {
        failed = await erase();
      } finally {
        await cutOff('a', false);
      }
      // A 500: its message (the shard's error) is not shown to the client.
      expect(failed.statusCode).toBe(500);
      // The tenant modules' privacy hooks run on the shard too (the person's rows there), so the
      // erasure stops at the first of them, before tenancy deletes the organization: it is still
      // on the primary, its directory entry unmarked, its rows on the shard.
      expect(
        await rowsOn(
          socle.database.url,
          'select deleted_at is not null as marked from socle.tenant_shards where tenant_id = $1',
          [doomed.id],
        ),
      ).toEqual([{ marked: false }]);
      expect(
        await rowsOn(socle.database.url, 'select id from tenancy.organizations where id = $1', [doomed.id]),
      ).toEqual([{ id: doomed.id }]);
      expect((await countOn(doomed.id)).notes).toBe(2);
      // Retried (as the erasure's own resume does), it finishes.
      const erased = await erase();
      expect(erased.statusCode).toBe(200);
      expect(await countOn(doomed.id)).toEqual({ notes: 0, accounts: 0, audit: 0, jobs: 0 });
      expect(
        await rowsOn(socle.database.url, 'select shard from socle.tenant_shards where tenant_id = $1', [
          doomed.id,
        ]),
      ).toEqual([]);
      expect(
        await rowsOn(socle.database.url, 'select id from tenancy.organizations where id = $1', [doomed.id]),
      ).toEqual([]);
      // The other organization of the shard is untouched.
      expect(await countOn(kept.id)).toEqual(keptBefore);
      expect(await socle.db.shardOf(kept.id)).toBe('a');
    }, 120_000);
  },
);

describe.skipIf(!postgresTarget.available)('tenant shards: payment webhooks (Postgres, fake Stripe)', () => {
  let socle: TestSocle;
  let stripe: FakeStripe;
  let shard: TestDatabase;
  const adminUrl = testPostgresAdminUrl();

  beforeAll(async () => {
    stripe = await startFakeStripe();
    shard = await createTestPostgresDatabase(adminUrl, 'socle_shard');
    socle = await createTestSocle(postgresTarget, {
      settings: {
        realtime: testRealtimeApp(),
        identity: { operatorToken: OPERATOR_TOKEN },
        payments: {
          ...stripe.paymentsSettings(),
        },
      },
      modules: [
        ...createBuiltInModules(),
        createLedgerModule(),
        createPaymentsModule({ providers: ['stripe'], catalog: paymentsTestCatalog }),
      ],
      config: {
        shards: [{ name: 's', url: shard.url as string }],
        shardsDirectoryCacheMs: 0,
        jobsQueues: [],
      },
    });
  }, 180_000);

  afterAll(async () => {
    await socle?.dispose();
    await stripe?.close();
    await shard?.drop();
  });

  it('applies a provider webhook to a payment of an organization on a shard', async () => {
    const tenant = await socle.newTenant();
    await placeOnShard(socle, tenant.id, 's');
    const { response, paymentId, sessionId } = await startCheckout(socle, tenant.owner, tenant.id);
    expect(response.statusCode).toBe(201);
    const [completed] = stripe.completeCheckout(sessionId as string) as [StripeEvent];
    expect(await stripe.deliver(`${await socle.listen()}/payments/webhooks/stripe`, completed)).toBe(200);
    const listed = await callAs(socle, tenant.owner, 'GET', '/payments/payments', { orgId: tenant.id });
    expect(listed.json().payments[0]).toMatchObject({ id: paymentId, status: 'succeeded' });
  }, 60_000);

  it("exports and erases a member's payments and ledger accounts kept on their organization's shard", async () => {
    const tenant = await socle.newTenant();
    await placeOnShard(socle, tenant.id, 's');
    const member = await socle.newMember(tenant);
    const { response, paymentId } = await startCheckout(socle, member, tenant.id);
    expect(response.statusCode).toBe(201);
    const account = await callAs(socle, tenant.owner, 'POST', '/org/ledger/accounts', {
      orgId: tenant.id,
      payload: { owner: { kind: 'user', userId: member.userId }, unit: 'credits' },
    });
    expect(account.statusCode).toBe(201);
    const accountId = account.json().id as string;
    // Both rows are on the shard, naming the member.
    const onShard = async () =>
      (
        await rowsOn(
          shard.url,
          `select (select user_id from payments.payments where id = $1)::text as "paymentUser",
                  (select owner_user_id from ledger.accounts where id = $2)::text as "accountOwner"`,
          [paymentId, accountId],
        )
      )[0];
    expect(await onShard()).toEqual({ paymentUser: member.userId, accountOwner: member.userId });

    const { privacy } = socle.servicesOf<{ privacy: PrivacyService }>('privacy');
    const subject = await privacy.findSubject(member.userId);
    const exported = await privacy.export(subject);
    expect(exported.modules.payments).toMatchObject({ payments: [{ id: paymentId, orgId: tenant.id }] });
    expect((exported.modules.ledger as { accounts: unknown[] }).accounts).toContainEqual(
      expect.objectContaining({ id: accountId, orgId: tenant.id }),
    );

    const erased = await socle.app.inject({
      method: 'POST',
      url: `/operator/users/${member.userId}/erase`,
      headers: { 'x-operator-token': OPERATOR_TOKEN },
      payload: { confirmEmail: member.email },
    });
    expect(erased.statusCode).toBe(200);
    // The rows stay (accounting keeps them) but no longer name the person, on the shard too.
    expect(await onShard()).toEqual({ paymentUser: null, accountOwner: null });
    // The organization and its owner are untouched.
    expect(await socle.db.shardOf(tenant.id)).toBe('s');
  }, 60_000);
});
