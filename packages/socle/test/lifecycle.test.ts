import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineModule, Type } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { checkWithPromtool } from './support/promtool.js';

const notes = defineModule<{ 'notes.notes': { id: number; body: string } }>({
  name: 'notes',
  migrations: [
    { name: '0001_notes.sql', sql: 'create table notes (id integer primary key, body text not null);' },
  ],
  routes(app, { db }) {
    app.get('/notes/:id', { schema: { params: Type.Object({ id: Type.Integer() }) } }, async (request) =>
      db.kysely.selectFrom('notes.notes').selectAll().where('id', '=', request.params.id).executeTakeFirst(),
    );
  },
});

describeEachDatabase('Server lifecycle, readiness and metrics', (target) => {
  let socle: TestSocle;
  let url: string;
  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [notes] });
    url = await socle.listen();
  });
  afterAll(() => socle?.dispose());

  it('serves over a real socket and is live and ready', async () => {
    expect((await fetch(`${url}/livez`)).status).toBe(200);
    const ready = await fetch(`${url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ok',
      checks: { database: { status: 'ok' }, migrations: { status: 'ok' }, shutdown: { status: 'ok' } },
    });
  });

  it('reports not ready, naming the check, when a migration is missing', async () => {
    const asOwner = (statement: string, parameters: unknown[] = []) =>
      socle.db.withConnection((connection) => connection.query(statement, parameters), 'owner');
    await asOwner("delete from socle.migrations where module = 'notes'");
    const response = await fetch(`${url}/readyz`);
    expect(response.status).toBe(503);
    const problem = (await response.json()) as { detail: string };
    expect(problem).toMatchObject({ code: 'health.not_ready', failing: ['migrations'] });
    expect(problem.detail).toContain('notes/0001_notes.sql');
    await asOwner(
      "insert into socle.migrations (module, name, checksum, duration_ms) values ('notes', '0001_notes.sql', $1, 0)",
      [socle.migrations[0]?.checksum],
    );
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it('exposes Prometheus metrics that promtool accepts', async () => {
    await fetch(`${url}/notes/1`);
    await fetch(`${url}/notes/abc`);
    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toMatch(
      /socle_http_request_duration_seconds_count\{method="GET",route="\/notes\/:id",status_code="200"\} 1/,
    );
    expect(text).toMatch(
      /socle_http_request_duration_seconds_count\{method="GET",route="\/notes\/:id",status_code="400"\} 1/,
    );
    expect(text).toMatch(/socle_db_query_duration_seconds_count\{outcome="ok"\} [1-9]/);
    expect(text).toMatch(/socle_db_pool_connections\{state="max"\} (1|5)/);
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(text).toContain('process_cpu_user_seconds_total');
    checkWithPromtool(text);
  });

  it('reports how long callers waited for a pooled database session', async () => {
    const metric = async (pattern: RegExp) => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return Number(text.match(pattern)?.[1] ?? Number.NaN);
    };
    const waitCount = /socle_db_pool_wait_seconds_count\{pool="request"\} ([0-9.e+-]+)/;
    const waitSum = /socle_db_pool_wait_seconds_sum\{pool="request"\} ([0-9.e+-]+)/;
    const countBefore = await metric(waitCount);
    const sumBefore = await metric(waitSum);
    expect(countBefore).toBeGreaterThan(0);
    // Every session of the request pool held by a transaction, then one more request: it queues.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const { max } = socle.db.statistics();
    let held = 0;
    const holders = Array.from({ length: max }, () =>
      socle.db.transaction(async () => {
        held++;
        await gate;
      }),
    );
    await expect.poll(() => held, { timeout: 30_000 }).toBe(max);
    const queued = fetch(`${url}/notes/1`);
    await expect
      .poll(() => metric(/socle_db_pool_connections\{state="waiting"\} ([0-9]+)/), { timeout: 30_000 })
      .toBeGreaterThan(0);
    // The queued request has waited at least from now until the gate opens.
    const seenWaiting = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const opened = performance.now();
    open();
    await Promise.all(holders);
    expect((await queued).status).toBe(200);
    expect(await metric(waitCount)).toBeGreaterThan(countBefore);
    expect((await metric(waitSum)) - sumBefore).toBeGreaterThanOrEqual((opened - seenWaiting) / 1000);
  });

  it('stops, closes the port, and close() is idempotent', async () => {
    const closing = socle.close();
    await closing;
    await expect(fetch(`${url}/livez`)).rejects.toThrow();
    expect(await socle.close()).toEqual({ drained: true });
  });
});
