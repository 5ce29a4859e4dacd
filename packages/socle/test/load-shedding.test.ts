import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { defineModule, sql } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const QUEUE_MAX = 3;
const REQUESTS = 10;

/** A route that reads the database once, and one that writes then reads in two transactions. */
const probe = defineModule({
  name: 'shedding_probe',
  globalTables: { hits: 'test fixture' },
  migrations: [{ name: '0001_hits.sql', sql: 'create table hits (id serial primary key);' }],
  routes(app, context) {
    app.get('/shedding-probe/read', async () => {
      await sql`select 1`.execute(context.db.kysely);
      return { ok: true };
    });
    app.post('/shedding-probe/hit', async () => {
      await context.db.transaction((trx) => sql`insert into shedding_probe.hits default values`.execute(trx));
      const { rows } = await sql<{
        count: number;
      }>`select count(*)::int as count from shedding_probe.hits`.execute(context.db.kysely);
      return { hits: rows[0]?.count };
    });
  },
});

describeEachDatabase('load shedding of the request pool', (target) => {
  let socle: TestSocle;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [probe],
      config: { databasePoolMax: 1, databasePoolQueueMax: QUEUE_MAX, databaseConnectTimeoutMs: 60_000 },
    });
  });
  afterAll(() => socle?.dispose());

  /** Holds the request pool's one session in a transaction (work outside a request: never shed). */
  async function blockTheSession() {
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let holding = false;
    const done = socle.db.transaction(async (trx) => {
      await sql`select 1`.execute(trx);
      holding = true;
      await released;
    });
    await vi.waitFor(() => expect(holding).toBe(true));
    return async () => {
      release();
      await done;
    };
  }

  /**
   * Sends `REQUESTS` requests at once; `answered` fills as they are answered, and `settled` waits
   * until each is either answered or queued for the (blocked) session.
   */
  function sendAll(method: 'GET' | 'POST', url: string) {
    const answered: LightMyRequestResponse[] = [];
    const requests = Array.from({ length: REQUESTS }, () =>
      socle.app.inject({ method, url }).then((response) => {
        answered.push(response);
        return response;
      }),
    );
    const settled = () =>
      vi.waitFor(() => expect(socle.db.statistics().waiting + answered.length).toBe(REQUESTS), {
        timeout: 30_000,
      });
    return { answered, requests, settled };
  }

  it('answers 503 db.overloaded at once past the queue, serves the queued ones, and never sheds readiness', async () => {
    const unblock = await blockTheSession();
    const { answered, requests, settled } = sendAll('GET', '/shedding-probe/read');
    let ready: Promise<LightMyRequestResponse> | undefined;
    try {
      // Every request is either queued for the session or answered while it is still blocked.
      await settled();
      // Nobody queued past the threshold; the others were answered without waiting for the session.
      expect(socle.db.statistics().waiting).toBe(QUEUE_MAX);
      expect(answered).toHaveLength(REQUESTS - QUEUE_MAX);
      for (const response of answered) {
        expect(response.statusCode, response.body).toBe(503);
        expect(response.headers['content-type']).toContain('application/problem+json');
        expect(response.headers['retry-after']).toBe('1');
        expect(response.json()).toMatchObject({ code: 'db.overloaded', status: 503 });
      }
      // Readiness is asked while the queue is full: it is never refused for it.
      ready = socle.app.inject({ method: 'GET', url: '/readyz' });
    } finally {
      await unblock();
    }
    const all = await Promise.all(requests);
    expect(all.filter((response) => response.statusCode === 200)).toHaveLength(QUEUE_MAX);
    expect((await ready)?.statusCode).toBe(200);
    const metrics = (await socle.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(new RegExp(`^socle_db_requests_shed_total ${REQUESTS - QUEUE_MAX}$`, 'm'));
  }, 90_000);

  it('sheds a request before it writes, never between its transactions', async () => {
    const unblock = await blockTheSession();
    const { requests, settled } = sendAll('POST', '/shedding-probe/hit');
    try {
      await settled();
    } finally {
      await unblock();
    }
    const all = await Promise.all(requests);
    const served = all.filter((response) => response.statusCode === 200);
    const shed = all.filter((response) => response.statusCode === 503);
    expect(served.length + shed.length, all.map((response) => response.body).join('\n')).toBe(REQUESTS);
    expect(shed.length).toBe(REQUESTS - QUEUE_MAX);
    for (const response of shed) expect(response.json()).toMatchObject({ code: 'db.overloaded' });
    // Each request served did both of its transactions (its second lease queued, however long the
    // queue); each request shed wrote nothing.
    const { rows } = await sql<{
      count: number;
    }>`select count(*)::int as count from shedding_probe.hits`.execute(socle.db.kysely);
    expect(rows[0]?.count).toBe(served.length);
  }, 90_000);
});
