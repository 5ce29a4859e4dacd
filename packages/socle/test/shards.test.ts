import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineJob, defineModule, Type } from '../src/index.js';
import { moveTenant } from '../src/kernel/shards/index.js';
import { createAuditModule } from '../src/modules/audit/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createJobsModule } from '../src/modules/jobs/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTenancyModule, OrgHeaders, requireOrg } from '../src/modules/tenancy/index.js';
import {
  createTestSocle,
  postgresRequirement,
  TEST_SECRET_KEY,
  type TestSocle,
  type TestTenant,
} from '../src/testing/index.js';
import { runCli } from './support/cli-process.js';
import {
  type DisposablePostgres,
  disposablePostgresSetup,
  startDisposablePostgres,
} from './support/disposable-postgres.js';
import { rowsOn } from './support/shards.js';

// Postgres only, by nature: shards are Postgres databases (SHARDS needs DATABASE_URL), and the
// move uses logical replication, which needs wal_level=logical: the shared server runs with
// `replica`, so the test owns a private cluster with `logical` and makes its databases there.
const { postgres, binaries, skip } = await disposablePostgresSetup();
if (skip && postgresRequirement() === 'required')
  throw new Error('The shard tests need the Postgres server binaries (initdb, pg_ctl) in CI');

interface ShardNotesTables {
  'shard_notes.notes': { id: string; tenant_id: string; body: string };
  'shard_notes.counted': { job_id: string; tenant_id: string; notes: number };
}

/** A tenant module: notes by id (primary key without tenant_id, so a move changes its replica identity), and a job. */
function createShardNotesModule() {
  return defineModule<ShardNotesTables>({
    name: 'shard_notes',
    dependsOn: ['tenancy', 'jobs'],
    migrations: [
      {
        name: '0001_notes.sql',
        sql: `
          create table notes (
            id uuid primary key,
            tenant_id uuid not null default socle.current_tenant_id() references tenancy.organizations (id),
            body text not null
          );
          create table counted (
            job_id uuid primary key,
            tenant_id uuid not null default socle.current_tenant_id(),
            notes integer not null
          );
          alter table notes enable row level security;
          alter table notes force row level security;
          create policy tenant_isolation on notes
            using (tenant_id = socle.current_tenant_id()) with check (tenant_id = socle.current_tenant_id());
          alter table counted enable row level security;
          alter table counted force row level security;
          create policy tenant_isolation on counted
            using (tenant_id = socle.current_tenant_id()) with check (tenant_id = socle.current_tenant_id());
        `,
      },
    ],
    jobs: {
      count: defineJob({
        async handler({ job, db }) {
          const notes = db.withTables<ShardNotesTables>();
          await notes.transaction(async (trx) => {
            const rows = await trx.selectFrom('shard_notes.notes').select('id').execute();
            await trx
              .insertInto('shard_notes.counted')
              .values({ job_id: job.id, notes: rows.length } as never)
              .execute();
          });
        },
      }),
    },
    routes(app, { db, jobs }) {
      const notes = db.withTables<ShardNotesTables>();
      app.put(
        '/notes/:id',
        {
          schema: {
            headers: OrgHeaders,
            params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
            body: Type.Object({ body: Type.String() }),
          },
        },
        async (request) => {
          requireOrg(request);
          const { id } = request.params as { id: string };
          const { body } = request.body as { body: string };
          await notes.transaction(async (trx) => {
            await trx
              .insertInto('shard_notes.notes')
              .values({ id, body } as never)
              .onConflict((conflict) => conflict.column('id').doUpdateSet({ body }))
              .execute();
            await jobs.enqueue(trx, 'shard_notes.count', {});
          });
          return { id, body };
        },
      );
      app.get('/notes', { schema: { headers: OrgHeaders } }, async (request) => {
        requireOrg(request);
        return notes.kysely.selectFrom('shard_notes.notes').select(['id', 'body']).orderBy('id').execute();
      });
    },
  });
}

const modules = () => [
  createIdentityModule(),
  createMailModule(),
  createTenancyModule(),
  createAuditModule(),
  createJobsModule(),
  createShardNotesModule(),
];

describe.skipIf(skip)('tenant shards (Postgres, private cluster with wal_level=logical)', () => {
  let cluster: DisposablePostgres;
  let socle: TestSocle;
  const urls: Record<'primary' | 'a' | 'b', string> = { primary: '', a: '', b: '' };
  let admin: pg.Client;

  /** Rows of `table` per tenant in a database, read as the superuser (beneath row-level security). */
  const rowsIn = (database: 'primary' | 'a' | 'b', text: string, values: unknown[] = []) =>
    rowsOn(urls[database], text, values);

  const putNote = (tenant: TestTenant, id: string, body: string) =>
    socle.app.inject({
      method: 'PUT',
      url: `/notes/${id}`,
      headers: { authorization: `Bearer ${tenant.owner.token}`, 'x-org-id': tenant.id },
      payload: { body },
    });

  beforeAll(async () => {
    cluster = await startDisposablePostgres(binaries, { settings: { wal_level: 'logical' } });
    admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    for (const name of ['socle_primary', 'socle_shard_a', 'socle_shard_b'])
      await admin.query(`create database ${name}`);
    const base = cluster.url.replace(/\/postgres$/, '');
    urls.primary = `${base}/socle_primary`;
    urls.a = `${base}/socle_shard_a`;
    urls.b = `${base}/socle_shard_b`;
    socle = await createTestSocle(postgres as NonNullable<typeof postgres>, {
      database: {
        dialect: 'postgres',
        name: 'socle_primary',
        url: urls.primary,
        dataDir: undefined,
        drop: async () => {},
      },
      modules: modules(),
      config: {
        shards: [
          { name: 'a', url: urls.a },
          { name: 'b', url: urls.b },
        ],
        shardsDirectoryCacheMs: 200,
        jobsQueues: [],
      },
    });
  }, 180_000);

  afterAll(async () => {
    await socle?.dispose();
    await admin?.end();
    await cluster?.destroy();
  });

  it('migrates every shard, and runs a tenant’s requests and jobs on its shard, the others on the primary', async () => {
    // Every shard has the modules' tables and the job engine's, and no foreign key to the primary's tables.
    for (const shard of ['a', 'b'] as const) {
      const [tables] = await rowsIn(
        shard,
        "select to_regclass('shard_notes.notes') is not null as notes, to_regclass('jobs.job') is not null as jobs",
      );
      expect(tables).toEqual({ notes: true, jobs: true });
      const crossing = await rowsIn(
        shard,
        `select conname from pg_constraint c join pg_class r on r.oid = c.confrelid
           join pg_namespace n on n.oid = r.relnamespace where c.contype = 'f' and n.nspname in ('tenancy', 'identity')
           and c.conrelid::regclass::text like 'shard_notes.%'`,
      );
      expect(crossing).toEqual([]);
    }
    const onA = await socle.newTenant();
    const onPrimary = await socle.newTenant();
    // An organization with no data yet moves in an instant; its directory row is what matters.
    const placed = await moveTenant({
      config: socle.config,
      log: socle.log,
      modules: socle.modules,
      tenantId: onA.id,
      to: 'a',
    });
    expect(placed).toMatchObject({ from: 'primary', to: 'a' });
    expect(await socle.db.shardOf(onA.id)).toBe('a');
    expect(await socle.db.shardOf(onPrimary.id)).toBe('primary');

    const noteA = randomUUID();
    const noteP = randomUUID();
    expect((await putNote(onA, noteA, 'on shard a')).statusCode).toBe(200);
    expect((await putNote(onPrimary, noteP, 'on the primary')).statusCode).toBe(200);
    expect(await rowsIn('a', 'select id, tenant_id, body from shard_notes.notes')).toEqual([
      { id: noteA, tenant_id: onA.id, body: 'on shard a' },
    ]);
    expect(await rowsIn('primary', 'select id, tenant_id, body from shard_notes.notes')).toEqual([
      { id: noteP, tenant_id: onPrimary.id, body: 'on the primary' },
    ]);
    expect(await rowsIn('b', 'select id from shard_notes.notes')).toEqual([]);
    // The audit rows of each request (a tenant module) follow their organization too.
    expect(
      await rowsIn('a', 'select count(*)::int as n from audit.events where tenant_id = $1', [onA.id]),
    ).toEqual([{ n: expect.any(Number) }]);
    expect(
      (
        await rowsIn('primary', 'select count(*)::int as n from audit.events where tenant_id = $1', [onA.id])
      )[0]?.n,
    ).toBe(0);
    // Reads see only their shard's rows (and their tenant's).
    const listed = await socle.app.inject({
      method: 'GET',
      url: '/notes',
      headers: { authorization: `Bearer ${onA.owner.token}`, 'x-org-id': onA.id },
    });
    expect(listed.json()).toEqual([{ id: noteA, body: 'on shard a' }]);

    // Each job was enqueued in its request's transaction, so into that database's job tables, and
    // ran there: the count of shard a's tenant was made on shard a.
    expect(await rowsIn('a', "select data->>'tenantId' as tenant from jobs.job")).toEqual([
      { tenant: onA.id },
    ]);
    await socle.jobs.runDueJobs();
    expect(await rowsIn('a', 'select tenant_id, notes from shard_notes.counted')).toEqual([
      { tenant_id: onA.id, notes: 1 },
    ]);
    expect(await rowsIn('primary', 'select tenant_id, notes from shard_notes.counted')).toEqual([
      { tenant_id: onPrimary.id, notes: 1 },
    ]);
  }, 120_000);

  it('moves a tenant between shards while it writes continuously, losing nothing', async () => {
    const tenant = await socle.newTenant();
    await moveTenant({
      config: socle.config,
      log: socle.log,
      modules: socle.modules,
      tenantId: tenant.id,
      to: 'a',
    });
    const other = await socle.newTenant();
    await moveTenant({
      config: socle.config,
      log: socle.log,
      modules: socle.modules,
      tenantId: other.id,
      to: 'a',
    });
    const otherNote = randomUUID();
    expect((await putNote(other, otherNote, 'stays')).statusCode).toBe(200);

    /** What the tenant's notes must be at the end: every acknowledged write, inserts and updates. */
    const expected = new Map<string, string>();
    const ids: string[] = [];
    let refused = 0;
    let writing = true;
    const writer = (async () => {
      for (let index = 0; writing || index < 50; index++) {
        // Every fourth write changes an earlier note (an UPDATE through the stream), the rest insert.
        const update = index % 4 === 3 && ids.length > 0;
        const id = update ? (ids[index % ids.length] as string) : randomUUID();
        const body = `${update ? 'changed' : 'written'} ${index}`;
        for (;;) {
          const response = await putNote(tenant, id, body);
          if (response.statusCode === 200) break;
          // The freeze: refused whole, told to retry.
          expect(response.statusCode).toBe(503);
          expect(response.json().code).toBe('shards.tenant_moving');
          expect(response.headers['retry-after']).toBe('1');
          refused++;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        if (!update) ids.push(id);
        expected.set(id, body);
      }
    })();
    // Some rows exist before the copy starts, more arrive during it.
    while (ids.length < 20) await new Promise((resolve) => setTimeout(resolve, 10));
    const report = await moveTenant({
      config: socle.config,
      log: socle.log,
      modules: socle.modules,
      tenantId: tenant.id,
      to: 'b',
    });
    const afterMove = ids.length;
    // Writes go on, now on shard b.
    while (ids.length < afterMove + 10) await new Promise((resolve) => setTimeout(resolve, 10));
    writing = false;
    await writer;

    console.log(
      `tenant move: ${report.tables['shard_notes.notes']} notes copied, copy ${report.copyMs} ms, freeze ${report.freezeMs} ms (${JSON.stringify(report.freezeSteps)}), total ${report.totalMs} ms, ${refused} write(s) refused during the freeze and retried, ${expected.size} notes at the end`,
    );
    expect(report).toMatchObject({ from: 'a', to: 'b' });
    expect(report.freezeMs).toBeGreaterThanOrEqual(0);
    expect(await socle.db.shardOf(tenant.id)).toBe('b');
    // Everything acknowledged is on shard b, exactly; nothing of the tenant is left on shard a.
    const onB = await rowsIn('b', 'select id, body from shard_notes.notes where tenant_id = $1', [tenant.id]);
    expect(new Map(onB.map((row) => [row.id as string, row.body as string]))).toEqual(expected);
    expect(await rowsIn('a', 'select id from shard_notes.notes where tenant_id = $1', [tenant.id])).toEqual(
      [],
    );
    expect(
      await rowsIn('a', 'select count(*)::int as n from audit.events where tenant_id = $1', [tenant.id]),
    ).toEqual([{ n: 0 }]);
    // The other tenant of shard a was not touched, and writes there again (the freeze was the moved tenant's only).
    expect(
      await rowsIn('a', 'select id, body from shard_notes.notes where tenant_id = $1', [other.id]),
    ).toEqual([{ id: otherNote, body: 'stays' }]);
    expect((await putNote(other, randomUUID(), 'after')).statusCode).toBe(200);
    // The move left no replication behind.
    expect(await rowsIn('b', 'select subname from pg_subscription')).toEqual([]);
    expect(await rowsIn('a', 'select slot_name from pg_replication_slots')).toEqual([]);
    expect(await rowsIn('a', 'select pubname from pg_publication')).toEqual([]);
  }, 300_000);

  it('socle shards move moves an organization from the command line', async () => {
    const tenant = await socle.newTenant();
    const note = randomUUID();
    expect((await putNote(tenant, note, 'by the command')).statusCode).toBe(200);
    const env = {
      DATABASE_URL: urls.primary,
      SHARDS: `a=${urls.a},b=${urls.b}`,
      SHARDS_DIRECTORY_CACHE_MS: '200',
      SECRET_KEY: TEST_SECRET_KEY,
    };
    const usage = await runCli(['shards', 'move', tenant.id], { env });
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('socle shards move needs an organization id and a shard');
    const moved = await runCli(['shards', 'move', tenant.id, 'b'], { env }, 120_000);
    expect(moved.stderr).toBe('');
    expect(moved.code).toBe(0);
    expect(JSON.parse(moved.stdout)).toMatchObject({
      tenantId: tenant.id,
      from: 'primary',
      to: 'b',
      tables: { 'shard_notes.notes': 1 },
    });
    expect(
      await rowsIn('b', 'select id, body from shard_notes.notes where tenant_id = $1', [tenant.id]),
    ).toEqual([{ id: note, body: 'by the command' }]);
    // This server reads the directory again once its entry is older than SHARDS_DIRECTORY_CACHE_MS.
    const listed = await socle.app.inject({
      method: 'GET',
      url: '/notes',
      headers: { authorization: `Bearer ${tenant.owner.token}`, 'x-org-id': tenant.id },
    });
    expect(listed.json()).toEqual([{ id: note, body: 'by the command' }]);
    const again = await runCli(['shards', 'move', tenant.id, 'b'], { env }, 60_000);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('[shards.already_there]');
  }, 240_000);

  it('refuses a move to a shard SHARDS does not name, or to where the tenant already is', async () => {
    const tenant = await socle.newTenant();
    await expect(
      moveTenant({
        config: socle.config,
        log: socle.log,
        modules: socle.modules,
        tenantId: tenant.id,
        to: 'c',
      }),
    ).rejects.toMatchObject({ code: 'shards.unknown_shard' });
    await expect(
      moveTenant({
        config: socle.config,
        log: socle.log,
        modules: socle.modules,
        tenantId: tenant.id,
        to: 'primary',
      }),
    ).rejects.toMatchObject({ code: 'shards.already_there' });
    await expect(
      moveTenant({ config: socle.config, log: socle.log, modules: socle.modules, tenantId: 'nope', to: 'a' }),
    ).rejects.toMatchObject({ code: 'shards.invalid_tenant' });
  });
});
