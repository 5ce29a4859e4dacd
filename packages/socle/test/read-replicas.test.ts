import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../src/kernel/clock/index.js';
import type { ModuleDefinition } from '../src/kernel/modules/index.js';
import {
  createTestSocle,
  postgresRequirement,
  type TestSocle,
  testDatabaseTargets,
} from '../src/testing/index.js';
import probeModule from './fixtures/replica-probe-module.js';
import {
  canRunPrivateClusters,
  createStreamingPair,
  type StreamingPair,
} from './fixtures/streaming-replica.js';

const targets = await testDatabaseTargets();
/** Written against the built `socle` (the fleet test loads it into the built CLI): the same object, typed by the source here. */
const replicaProbe = probeModule as unknown as ModuleDefinition;

/** `socle_lsn=…` of a response's Set-Cookie, as a request Cookie header. */
function lsnCookie(response: { headers: Record<string, unknown> }): string {
  const setCookie = ([] as string[]).concat((response.headers['set-cookie'] as string | string[]) ?? []);
  const cookie = setCookie.find((value) => value.startsWith('socle_lsn='));
  if (cookie === undefined) throw new Error(`no socle_lsn cookie in ${JSON.stringify(setCookie)}`);
  return cookie.split(';')[0] as string;
}

describe.each(targets)('db.replica without replicas ($dialect)', (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    if (!target.available) return;
    socle = await createTestSocle(target, { modules: [replicaProbe] });
  });
  afterAll(async () => {
    await socle?.dispose();
  });

  it.skipIf(!target.available)('reads from the primary, and refuses writes and transactions', async () => {
    const write = await socle.app.inject({ method: 'POST', url: '/items', payload: { id: 'a' } });
    expect(write.statusCode).toBe(200);
    // No replica: no position to carry.
    expect(write.headers['set-cookie']).toBeUndefined();
    const read = await socle.app.inject({ method: 'GET', url: '/items' });
    expect(read.json()).toEqual({ ids: ['a'], readFromReplica: false });

    const db = socle.db.withTables<{ 'replica_probe.items': { id: string } }>();
    await expect(db.replica.insertInto('replica_probe.items').values({ id: 'b' }).execute()).rejects.toThrow(
      /read-only transaction/,
    );
    await expect(
      db.withSettings({ 'app.user_id': 'u' }, { replica: true }).deleteFrom('replica_probe.items').execute(),
    ).rejects.toThrow(/read-only transaction/);
    await expect(db.replica.transaction().execute(async () => undefined)).rejects.toThrow(
      /single statements/,
    );
    expect(socle.db.replicaStatus()).toEqual([]);
    expect(await socle.db.primaryPosition()).toBeUndefined();
    const count = await socle.app.inject({ method: 'GET', url: '/items/count' });
    expect(count.json()).toEqual({ count: 1 });
  });

  it.skipIf(!target.available)(
    'carries the scope settings to replica reads (row-level security sees them)',
    async () => {
      const setting = await socle.db
        .withSettings({ 'app.tenant_id': 'tenant-7' }, { replica: true })
        .selectNoFrom(sql<string>`current_setting('app.tenant_id', true)`.as('tenant'))
        .executeTakeFirstOrThrow();
      expect(setting.tenant).toBe('tenant-7');
    },
  );
});

const pairPossible =
  canRunPrivateClusters() && targets.some((target) => target.dialect === 'postgres' && target.available);
if (!pairPossible && postgresRequirement() === 'required')
  throw new Error('Read replica tests need the Postgres 15 server binaries (initdb, pg_basebackup) in CI');

describe.skipIf(!pairPossible)('read replicas with a real streaming replica (Postgres)', () => {
  let pair: StreamingPair;
  let socle: TestSocle;
  const clock = createManualClock(new Date('2026-03-01T00:00:00Z'));
  const MAX_LAG_MS = 5000;

  beforeAll(async () => {
    pair = await createStreamingPair();
    const primary = {
      dialect: 'postgres' as const,
      name: 'postgres',
      url: pair.primaryUrl,
      dataDir: undefined,
      drop: async () => undefined,
    };
    socle = await createTestSocle(
      targets.find((target) => target.dialect === 'postgres') ?? (targets[0] as never),
      {
        modules: [replicaProbe],
        database: primary,
        clock,
        config: {
          databaseReplicaUrls: [pair.replicaUrl],
          databaseReplicaMaxLagMs: MAX_LAG_MS,
          // The test drives every check itself (db.checkReplicas()).
          databaseReplicaCheckIntervalMs: 600_000,
        },
      },
    );
    // The migrations reached the replica: it may serve.
    await pair.waitForReplay();
    await socle.db.checkReplicas();
  }, 60_000);

  afterAll(async () => {
    await socle?.dispose();
    await pair?.destroy();
  });

  it('sends stale-allowed reads to the replica, writes and the writer’s own reads to the primary', async () => {
    expect(socle.db.replicaStatus()).toEqual([
      expect.objectContaining({ inRotation: true, lagSeconds: 0, problem: undefined }),
    ]);
    const anonymous = await socle.app.inject({ method: 'GET', url: '/items' });
    expect(anonymous.json()).toEqual({ ids: [], readFromReplica: true });
    expect(anonymous.headers['set-cookie']).toBeUndefined();

    const write = await socle.app.inject({ method: 'POST', url: '/items', payload: { id: 'first' } });
    // The request that wrote read its own write from the primary, and got the primary's position back.
    expect(write.json()).toEqual({ id: 'first', readFromReplica: false });
    expect(write.headers['socle-lsn']).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(lsnCookie(write)).toBe(`socle_lsn=${write.headers['socle-lsn']}`);
  });

  it('read-your-writes: a replica that has not replayed the client’s write is skipped for that client only', async () => {
    await pair.sql('replica', 'select pg_wal_replay_pause()');
    try {
      const write = await socle.app.inject({
        method: 'POST',
        url: '/items',
        payload: { id: 'while-paused' },
      });
      expect(write.statusCode).toBe(200);
      const cookie = lsnCookie(write);

      // The writer (its cookie, on any node) reads from the primary and sees its write.
      const own = await socle.app.inject({ method: 'GET', url: '/items', headers: { cookie } });
      expect(own.json()).toEqual({ ids: ['first', 'while-paused'], readFromReplica: false });
      // So does a client that echoes the header instead of a cookie.
      const byHeader = await socle.app.inject({
        method: 'GET',
        url: '/items',
        headers: { 'socle-lsn': String(write.headers['socle-lsn']) },
      });
      expect(byHeader.json().readFromReplica).toBe(false);
      // Anyone else may read the replica, stale: the write is not there yet.
      const other = await socle.app.inject({ method: 'GET', url: '/items' });
      expect(other.json()).toEqual({ ids: ['first'], readFromReplica: true });
    } finally {
      await pair.sql('replica', 'select pg_wal_replay_resume()');
    }
    await pair.waitForReplay();
    await socle.db.checkReplicas();
    const write = await socle.app.inject({ method: 'GET', url: '/items/count' });
    expect(write.json()).toEqual({ count: 2 });
    // Once replayed, the writer's reads go to the replica again.
    const last = await socle.app.inject({ method: 'POST', url: '/items', payload: { id: 'then' } });
    await pair.waitForReplay();
    await socle.db.checkReplicas();
    const after = await socle.app.inject({
      method: 'GET',
      url: '/items',
      headers: { cookie: lsnCookie(last) },
    });
    expect(after.json()).toEqual({ ids: ['first', 'then', 'while-paused'], readFromReplica: true });
  });

  it('refuses a malformed position header with 400; a malformed cookie reads from the primary', async () => {
    const bad = await socle.app.inject({
      method: 'GET',
      url: '/items',
      headers: { 'socle-lsn': 'yesterday' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      code: 'http.bad_request',
      detail: expect.stringContaining('socle-lsn'),
    });
    const edited = await socle.app.inject({
      method: 'GET',
      url: '/items',
      headers: { cookie: 'socle_lsn=junk' },
    });
    expect(edited.json().readFromReplica).toBe(false);
  });

  it('takes a lagging replica out of rotation past the threshold and back once it catches up', async () => {
    await pair.sql('replica', 'select pg_wal_replay_pause()');
    try {
      await socle.app.inject({ method: 'POST', url: '/items', payload: { id: 'lagging' } });
      await socle.db.checkReplicas(); // the primary is past the replica from now on
      expect(socle.db.replicaStatus()[0]?.inRotation).toBe(true);
      clock.advance(MAX_LAG_MS + 1000);
      await socle.db.checkReplicas();
      const [status] = socle.db.replicaStatus();
      expect(status?.inRotation).toBe(false);
      expect(status?.lagSeconds).toBeGreaterThan(MAX_LAG_MS / 1000);
      expect(status?.problem).toMatch(/lags/);
      const read = await socle.app.inject({ method: 'GET', url: '/items' });
      expect(read.json()).toMatchObject({ readFromReplica: false });
      expect(read.json().ids).toContain('lagging');
      const metrics = await socle.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/socle_db_replica_in_rotation\{replica="127\.0\.0\.1:\d+\/postgres"\} 0/);
      expect(metrics.body).toMatch(/socle_db_replica_lag_seconds\{replica="127\.0\.0\.1:\d+\/postgres"\} 6/);
    } finally {
      await pair.sql('replica', 'select pg_wal_replay_resume()');
    }
    await pair.waitForReplay();
    await socle.db.checkReplicas();
    expect(socle.db.replicaStatus()[0]).toMatchObject({ inRotation: true, lagSeconds: 0 });
    const read = await socle.app.inject({ method: 'GET', url: '/items' });
    expect(read.json()).toMatchObject({ readFromReplica: true });
  });

  it('serves reads from the primary while the replica is down, and from the replica once it is back', async () => {
    await pair.stopReplica();
    // The router still believes in the replica: the read fails over to the primary.
    const during = await socle.app.inject({ method: 'GET', url: '/items' });
    expect(during.statusCode).toBe(200);
    expect(during.json().readFromReplica).toBe(false);
    expect(socle.db.replicaStatus()[0]?.inRotation).toBe(false);
    await socle.db.checkReplicas();
    expect(socle.db.replicaStatus()[0]?.problem).toMatch(/does not answer/);
    expect((await socle.app.inject({ method: 'GET', url: '/items/count' })).statusCode).toBe(200);

    await pair.startReplica();
    await pair.waitForReplay();
    await socle.db.checkReplicas();
    expect(socle.db.replicaStatus()[0]?.inRotation).toBe(true);
    const back = await socle.app.inject({ method: 'GET', url: '/items' });
    expect(back.json().readFromReplica).toBe(true);
    const metrics = await socle.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/socle_db_reads_total\{target="primary"\} \d+/);
    expect(metrics.body).toMatch(/socle_db_reads_total\{target="127\.0\.0\.1:\d+\/postgres"\} \d+/);
  });
});
