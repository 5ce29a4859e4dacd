import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineModule, sql, Type } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { postgresTarget } from './support/each-database.js';

/**
 * Two rows locked in opposite orders by two concurrent requests: Postgres detects the deadlock and
 * rolls one transaction back (SQLSTATE 40P01). `db.transaction` runs the victim's work again (it
 * wrote nothing), so both requests succeed; when retrying is turned off, or every retry loses too,
 * the victim gets a clear, retryable 409, not a 500, and nothing of it stays written.
 */
const lockOrder = defineModule({
  name: 'lock_order',
  globalTables: { counters: 'test fixture' },
  migrations: [
    {
      name: '0001_counters.sql',
      sql: `create table counters (id text primary key, hits integer not null default 0);
            insert into counters (id) values ('a'), ('b');`,
    },
  ],
  routes(app, { db }) {
    app.post(
      '/lock-order/:first/:second',
      {
        schema: {
          params: Type.Object({
            first: Type.Union([Type.Literal('a'), Type.Literal('b')]),
            second: Type.Union([Type.Literal('a'), Type.Literal('b')]),
          }),
          querystring: Type.Object({ retries: Type.Optional(Type.Integer({ minimum: 0 })) }),
        },
      },
      async (request) =>
        db.transaction(
          async (trx) => {
            await sql`update lock_order.counters set hits = hits + 1 where id = ${request.params.first}`.execute(
              trx,
            );
            await sql`select pg_sleep(0.3)`.execute(trx);
            await sql`update lock_order.counters set hits = hits + 1 where id = ${request.params.second}`.execute(
              trx,
            );
            return { ok: true };
          },
          request.query.retries === undefined ? {} : { conflictRetries: request.query.retries },
        ),
    );
  },
});

describe.skipIf(!postgresTarget.available)('A transaction rolled back by a concurrent one [postgres]', () => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(postgresTarget, { modules: [lockOrder] });
  });
  afterAll(() => socle?.dispose());

  const hits = async () =>
    (
      await sql<{ id: string; hits: number }>`select id, hits from lock_order.counters order by id`.execute(
        socle.db.kysely,
      )
    ).rows;
  const retriesCounted = async () => {
    const text = (await socle.app.inject({ method: 'GET', url: '/metrics' })).body;
    return Number(/^socle_db_transaction_retries_total (\d+)/m.exec(text)?.[1]);
  };

  it("runs the deadlock victim's transaction again, so both requests succeed, and counts the retry", async () => {
    const before = await retriesCounted();
    const [one, two] = await Promise.all([
      socle.app.inject({ method: 'POST', url: '/lock-order/a/b' }),
      socle.app.inject({ method: 'POST', url: '/lock-order/b/a' }),
    ]);
    expect([one.statusCode, two.statusCode]).toEqual([200, 200]);
    expect(await hits()).toEqual([
      { id: 'a', hits: 2 },
      { id: 'b', hits: 2 },
    ]);
    expect((await retriesCounted()) - before).toBe(1);
    await sql`update lock_order.counters set hits = 0`.execute(socle.db.kysely);
  });

  it('answers 409 db.conflict with Retry-After to the deadlock victim, which wrote nothing, when it may not retry', async () => {
    const [one, two] = await Promise.all([
      socle.app.inject({ method: 'POST', url: '/lock-order/a/b?retries=0' }),
      socle.app.inject({ method: 'POST', url: '/lock-order/b/a?retries=0' }),
    ]);
    const statuses = [one.statusCode, two.statusCode].sort();
    expect(statuses).toEqual([200, 409]);
    const victim = one.statusCode === 409 ? one : two;
    expect(victim.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(victim.headers['retry-after']).toBe('1');
    expect(victim.json()).toMatchObject({ code: 'db.conflict', status: 409 });
    // Only the winner's two updates remain.
    expect(await hits()).toEqual([
      { id: 'a', hits: 1 },
      { id: 'b', hits: 1 },
    ]);
  });
});
