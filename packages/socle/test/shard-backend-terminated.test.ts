import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineModule, sql } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { OrgHeaders, requireOrg } from '../src/modules/tenancy/index.js';
import {
  createTestPostgresDatabase,
  createTestSocle,
  type TestDatabase,
  type TestSocle,
  type TestTenant,
  testPostgresAdminUrl,
} from '../src/testing/index.js';
import { postgresTarget } from './support/each-database.js';
import { placeOnShard, rowsOn } from './support/shards.js';

// Postgres only, by nature: an operator (or a failover) ending a shard's server sessions
// (pg_terminate_backend) is a Postgres server's doing; shards need DATABASE_URL.

/** A request that holds its shard connection between two statements until the test releases it. */
interface Hold {
  /** Resolved once the request holds its connection, its first statement done. */
  readonly held: Promise<void>;
  announce(): void;
  readonly released: Promise<void>;
  release(): void;
}
function newHold(): Hold {
  let announce: () => void = () => undefined;
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => {
    announce = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return { held, announce: () => announce(), released, release: () => release() };
}
let hold = newHold();

/** Routes of a tenant on its shard: a transaction that waits between statements, and one long statement. */
const holdingModule = defineModule({
  name: 'holding',
  dependsOn: ['tenancy'],
  routes(app, { db }) {
    app.post('/hold/between-statements', { schema: { headers: OrgHeaders } }, async (request) => {
      requireOrg(request);
      await db.transaction(async (trx) => {
        await sql`select 1`.execute(trx);
        hold.announce();
        await hold.released;
        await sql`select 2`.execute(trx);
      });
      return { done: true };
    });
    app.post('/hold/in-statement', { schema: { headers: OrgHeaders } }, async (request) => {
      requireOrg(request);
      await db.transaction(async (trx) => {
        await sql`select pg_sleep(60)`.execute(trx);
      });
      return { done: true };
    });
    app.get('/hold/ping', { schema: { headers: OrgHeaders } }, async (request) => {
      requireOrg(request);
      await sql`select 1`.execute(db.kysely);
      return { ok: true };
    });
  },
});

describe.skipIf(!postgresTarget.available)(
  "a shard's server sessions terminated (pg_terminate_backend) while idle and while busy (Postgres)",
  () => {
    let socle: TestSocle;
    let shard: TestDatabase;
    let tenant: TestTenant;
    const adminUrl = testPostgresAdminUrl();
    /** Every uncaught exception and unhandled rejection in this process while the suite runs. */
    const uncaught: unknown[] = [];
    const record = (error: unknown) => void uncaught.push(error);

    /** Ends every session on the shard's database but the caller's; how many it ended. */
    const terminateShardSessions = async () =>
      (
        await rowsOn(
          adminUrl,
          `select count(pg_terminate_backend(pid))::int as ended from pg_stat_activity
            where datname = $1 and pid <> pg_backend_pid()`,
          [shard.name],
        )
      )[0]?.ended as number;
    /** Sessions of the shard's database running `text` (to know a statement is under way). */
    const running = async (text: string) =>
      (
        await rowsOn(
          adminUrl,
          `select count(*)::int as n from pg_stat_activity where datname = $1 and query = $2 and state = 'active'`,
          [shard.name, text],
        )
      )[0]?.n as number;
    const call = (method: 'GET' | 'POST', url: string) =>
      socle.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${tenant.owner.token}`, 'x-org-id': tenant.id },
      });
    /** The shard answers again: a few requests at most, each on a new connection if the last broke. */
    const answersAgain = async () => {
      const statuses: number[] = [];
      for (let attempt = 0; attempt < 5; attempt++) {
        const response = await call('GET', '/hold/ping');
        statuses.push(response.statusCode);
        if (response.statusCode === 200) break;
      }
      return statuses;
    };

    beforeAll(async () => {
      process.on('uncaughtException', record);
      process.on('unhandledRejection', record);
      shard = await createTestPostgresDatabase(adminUrl, 'socle_shard');
      socle = await createTestSocle(postgresTarget, {
        modules: [...createBuiltInModules(), holdingModule],
        config: {
          shards: [{ name: 'a', url: shard.url as string }],
          shardsDirectoryCacheMs: 0,
          jobsQueues: [],
        },
      });
      tenant = await socle.newTenant();
      await placeOnShard(socle, tenant.id, 'a');
    }, 180_000);

    afterAll(async () => {
      process.off('uncaughtException', record);
      process.off('unhandledRejection', record);
      await socle?.dispose();
      await shard?.drop();
    });

    it('idle connections: dropped quietly, and the next requests get new ones', async () => {
      // Several requests at once leave several idle connections in the shard's pool.
      const warm = await Promise.all(Array.from({ length: 4 }, () => call('GET', '/hold/ping')));
      expect(warm.map((response) => response.statusCode)).toEqual([200, 200, 200, 200]);
      expect(await terminateShardSessions()).toBeGreaterThan(0);
      expect((await answersAgain()).at(-1)).toBe(200);
      expect(uncaught).toEqual([]);
    });

    it('a connection held by a transaction between two statements: 503 for that request, nothing uncaught', async () => {
      hold = newHold();
      const request = call('POST', '/hold/between-statements');
      await hold.held;
      expect(await terminateShardSessions()).toBeGreaterThan(0);
      // The ended session's farewell reaches the held client while no statement of its runs.
      expect(await answersAgain()).toContain(200);
      hold.release();
      const response = await request;
      expect(response.statusCode).toBe(503);
      expect(response.json().code).toBe('db.unavailable');
      expect((await answersAgain()).at(-1)).toBe(200);
      expect(uncaught).toEqual([]);
    });

    it('a connection in the middle of a statement: 503 for that request, nothing uncaught', async () => {
      const request = call('POST', '/hold/in-statement');
      while ((await running('select pg_sleep(60)')) === 0)
        await new Promise((resolve) => setImmediate(resolve));
      expect(await terminateShardSessions()).toBeGreaterThan(0);
      const response = await request;
      expect(response.statusCode).toBe(503);
      expect(response.json().code).toBe('db.unavailable');
      expect((await answersAgain()).at(-1)).toBe(200);
      expect(uncaught).toEqual([]);
    });
  },
);
