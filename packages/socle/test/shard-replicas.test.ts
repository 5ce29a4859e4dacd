import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock, defineModule, Type } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createJobsModule } from '../src/modules/jobs/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTenancyModule, OrgHeaders, requireOrg } from '../src/modules/tenancy/index.js';
import {
  createTestSocle,
  postgresRequirement,
  type TestSocle,
  type TestTenant,
  testDatabaseTargets,
} from '../src/testing/index.js';
import {
  canRunPrivateClusters,
  createStreamingPair,
  type StreamingPair,
} from './fixtures/streaming-replica.js';
import { placeOnShard } from './support/shards.js';

// Postgres only, by nature: a shard and its streaming replica are Postgres servers. The pair is
// private (initdb + pg_basebackup, owned by this test): its primary holds the directory (database
// `postgres`) and the shard (database `shard_s`); the replica streams both, so `shard_s` on the
// replica is the shard's replica. The primary is given no replica: every replica read seen here
// is the shard's.

interface NotesTables {
  'replica_notes.notes': { id: string; tenant_id: string };
}

/** A tenant module whose reads go through db.replica, each answer saying which server served it. */
const notesModule = defineModule<NotesTables>({
  name: 'replica_notes',
  dependsOn: ['tenancy'],
  migrations: [
    {
      name: '0001_notes.sql',
      sql: `
        create table notes (
          id text primary key,
          tenant_id uuid not null default socle.current_tenant_id() references tenancy.organizations (id) on delete cascade
        );
        alter table notes enable row level security;
        alter table notes force row level security;
        create policy tenant_isolation on notes
          using (tenant_id = socle.current_tenant_id()) with check (tenant_id = socle.current_tenant_id());`,
    },
  ],
  routes(app, { db }) {
    app.post(
      '/replica-notes',
      { schema: { headers: OrgHeaders, body: Type.Object({ id: Type.String({ minLength: 1 }) }) } },
      async (request) => {
        requireOrg(request);
        await db.kysely
          .insertInto('replica_notes.notes')
          .values({ id: request.body.id } as never)
          .execute();
        return { id: request.body.id };
      },
    );
    app.get('/replica-notes', { schema: { headers: OrgHeaders } }, async (request) => {
      requireOrg(request);
      const notes = await db.replica.selectFrom('replica_notes.notes').select('id').orderBy('id').execute();
      const { rows } = await sql<{ replica: boolean; database: string }>`
        select pg_is_in_recovery() as replica, current_database() as database`.execute(db.replica);
      return { ids: notes.map((note) => note.id), servedBy: rows[0] };
    });
  },
});

const targets = await testDatabaseTargets();
const postgres = targets.find((target) => target.dialect === 'postgres' && target.available);
const pairPossible = canRunPrivateClusters() && postgres !== undefined;
if (!pairPossible && postgresRequirement() === 'required')
  throw new Error('Shard replica tests need the Postgres 15 server binaries (initdb, pg_basebackup) in CI');

describe.skipIf(!pairPossible)('a shard with a streaming replica (Postgres, private pair)', () => {
  let pair: StreamingPair;
  let socle: TestSocle;
  let tenant: TestTenant;
  const clock = createManualClock(new Date('2026-03-01T00:00:00Z'));
  const MAX_LAG_MS = 5000;

  const inShard = (url: string) => {
    const parsed = new URL(url);
    parsed.pathname = '/shard_s';
    return parsed.toString();
  };
  const as = (extra: Record<string, string> = {}) => ({
    authorization: `Bearer ${tenant.owner.token}`,
    'x-org-id': tenant.id,
    ...extra,
  });
  const write = (id: string) =>
    socle.app.inject({ method: 'POST', url: '/replica-notes', headers: as(), payload: { id } });
  const read = (extra: Record<string, string> = {}) =>
    socle.app.inject({ method: 'GET', url: '/replica-notes', headers: as(extra) });
  /** The `socle_lsn` cookie a response set, as a request Cookie header. */
  const cookieOf = (response: { headers: Record<string, unknown> }) => {
    const set = ([] as string[]).concat((response.headers['set-cookie'] as string | string[]) ?? []);
    const cookie = set.find((value) => value.startsWith('socle_lsn='));
    if (cookie === undefined) throw new Error(`no socle_lsn cookie in ${JSON.stringify(set)}`);
    return cookie.split(';')[0] as string;
  };

  beforeAll(async () => {
    pair = await createStreamingPair();
    await pair.sql('primary', 'create database shard_s');
    socle = await createTestSocle(postgres as NonNullable<typeof postgres>, {
      database: {
        dialect: 'postgres',
        name: 'postgres',
        url: pair.primaryUrl,
        dataDir: undefined,
        drop: async () => undefined,
      },
      modules: [
        createIdentityModule(),
        createMailModule(),
        createTenancyModule(),
        createJobsModule(),
        notesModule,
      ],
      clock,
      config: {
        shards: [{ name: 's', url: inShard(pair.primaryUrl), replicaUrls: [inShard(pair.replicaUrl)] }],
        shardsDirectoryCacheMs: 0,
        databaseReplicaMaxLagMs: MAX_LAG_MS,
        // The test drives every check itself (db.checkReplicas()).
        databaseReplicaCheckIntervalMs: 600_000,
        jobsQueues: [],
      },
    });
    tenant = await socle.newTenant();
    await placeOnShard(socle, tenant.id, 's');
    // The shard's migrations reached its replica: it may serve.
    await pair.waitForReplay();
    await socle.db.checkReplicas();
  }, 180_000);

  afterAll(async () => {
    await socle?.dispose();
    await pair?.destroy();
  });

  it("sends a shard tenant's stale-allowed reads to the shard's replica; its writer reads its writes", async () => {
    expect(socle.db.replicaStatus()).toEqual([
      expect.objectContaining({ database: 's', inRotation: true, lagSeconds: 0 }),
    ]);
    const first = await write(`first-${randomUUID()}`);
    expect(first.statusCode).toBe(200);
    // The position handed back is the shard's, named.
    expect(first.headers['socle-lsn']).toMatch(/^s:[0-9A-F]+\/[0-9A-F]+$/);
    expect(cookieOf(first)).toBe(`socle_lsn=${first.headers['socle-lsn']}`);
    await pair.waitForReplay();
    await socle.db.checkReplicas();
    const anyone = await read();
    expect(anyone.json()).toEqual({
      ids: [first.json().id],
      servedBy: { replica: true, database: 'shard_s' },
    });

    await pair.sql('replica', 'select pg_wal_replay_pause()');
    try {
      const second = await write(`second-${randomUUID()}`);
      const ids = [first.json().id, second.json().id].sort();
      // The writer (its cookie, or the header echoed) reads the shard's primary and sees its write.
      const own = await read({ cookie: cookieOf(second) });
      expect(own.json()).toEqual({ ids, servedBy: { replica: false, database: 'shard_s' } });
      const echoed = await read({ 'socle-lsn': String(second.headers['socle-lsn']) });
      expect(echoed.json().servedBy.replica).toBe(false);
      // Anyone else reads the replica, stale: the second write is not there yet.
      expect((await read()).json()).toEqual({
        ids: [first.json().id],
        servedBy: { replica: true, database: 'shard_s' },
      });
      // A position on the primary only says nothing of the shard: its replica may serve.
      const primaryOnly = await read({ 'socle-lsn': '0/1' });
      expect(primaryOnly.json().servedBy.replica).toBe(true);
    } finally {
      await pair.sql('replica', 'select pg_wal_replay_resume()');
    }
    await pair.waitForReplay();
    await socle.db.checkReplicas();
    const third = await write(`third-${randomUUID()}`);
    await pair.waitForReplay();
    await socle.db.checkReplicas();
    // Once replayed, the writer's reads go to the replica again.
    const after = await read({ cookie: cookieOf(third) });
    expect(after.json().servedBy).toEqual({ replica: true, database: 'shard_s' });
    expect(after.json().ids).toContain(third.json().id);
  });

  it('refuses a malformed position header naming a shard with 400', async () => {
    const bad = await read({ 'socle-lsn': 's:yesterday' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      code: 'http.bad_request',
      detail: expect.stringContaining('socle-lsn'),
    });
  });

  it('takes a lagging shard replica out of rotation past the threshold and back once it catches up', async () => {
    await pair.sql('replica', 'select pg_wal_replay_pause()');
    try {
      await write(`lagging-${randomUUID()}`);
      await socle.db.checkReplicas(); // the shard is past its replica from now on
      expect(socle.db.replicaStatus()[0]?.inRotation).toBe(true);
      clock.advance(MAX_LAG_MS + 1000);
      await socle.db.checkReplicas();
      expect(socle.db.replicaStatus()[0]).toMatchObject({ database: 's', inRotation: false });
      expect(socle.db.replicaStatus()[0]?.problem).toMatch(/lags/);
      // Even a client that never wrote reads the shard's primary now.
      expect((await read()).json().servedBy).toEqual({ replica: false, database: 'shard_s' });
      const metrics = await socle.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/socle_db_replica_in_rotation\{replica="127\.0\.0\.1:\d+\/shard_s"\} 0/);
      expect(metrics.body).toMatch(/socle_db_reads_total\{target="s"\} \d+/);
    } finally {
      await pair.sql('replica', 'select pg_wal_replay_resume()');
    }
    await pair.waitForReplay();
    await socle.db.checkReplicas();
    expect(socle.db.replicaStatus()[0]).toMatchObject({ inRotation: true, lagSeconds: 0 });
    expect((await read()).json().servedBy).toEqual({ replica: true, database: 'shard_s' });
  });
});
