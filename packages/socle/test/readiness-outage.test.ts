import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import notesModule from './fixtures/notes-module/notes-module.js';
import {
  type DisposablePostgres,
  disposablePostgresSetup,
  startDisposablePostgres,
} from './support/disposable-postgres.js';

const { postgres, binaries, skip } = await disposablePostgresSetup();

interface ReadinessProblem {
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly failing: readonly string[];
  readonly checks: Readonly<Record<string, { status: string; detail?: string }>>;
}

describe.skipIf(skip)('readiness during a database outage (Postgres, disposable server)', () => {
  let server: DisposablePostgres | undefined;
  let socle: TestSocle | undefined;

  beforeAll(async () => {
    if (postgres === undefined) throw new Error('No Postgres test target');
    server = await startDisposablePostgres(binaries);
    const url = server.url;
    socle = await createTestSocle(postgres, {
      modules: [notesModule],
      // Socle does not own this database: the whole server is thrown away in afterAll.
      database: {
        dialect: 'postgres',
        name: 'postgres',
        url,
        dataDir: undefined,
        drop: async () => undefined,
      },
      config: { databaseConnectTimeoutMs: 2000 },
    });
  }, 120_000);

  afterAll(async () => {
    await socle?.dispose();
    await server?.destroy();
  }, 120_000);

  const get = async (url: string) => {
    if (socle === undefined) throw new Error('Socle did not start');
    return socle.app.inject({ method: 'GET', url });
  };

  it('turns /readyz 503 naming the database while Postgres is down, and 200 again once it is back, without a restart', async () => {
    if (server === undefined) throw new Error('Postgres did not start');
    const before = await get('/readyz');
    expect(before.statusCode, before.body).toBe(200);
    expect(before.json()).toMatchObject({
      status: 'ok',
      checks: { database: { status: 'ok' }, migrations: { status: 'ok' } },
    });

    await server.stop('immediate');

    const during = await get('/readyz');
    expect(during.statusCode, during.body).toBe(503);
    expect(during.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = during.json<ReadinessProblem>();
    expect(problem.code).toBe('health.not_ready');
    expect(problem.failing).toContain('database');
    expect(problem.failing).not.toContain('shutdown');
    expect(problem.checks.database?.status).toBe('failing');
    expect(problem.detail).toMatch(/^Not ready: database \(.+\)/);
    // The process itself is fine: an orchestrator must not restart it for a database outage.
    const live = await get('/livez');
    expect(live.statusCode).toBe(200);
    expect((await get('/readyz')).statusCode).toBe(503);
    expect((await get('/livez')).statusCode).toBe(200);

    await server.start();

    let after = await get('/readyz');
    for (let attempt = 0; after.statusCode !== 200 && attempt < 75; attempt++) {
      await sleep(200);
      after = await get('/readyz');
    }
    expect(after.statusCode, after.body).toBe(200);
    expect(after.json()).toMatchObject({ status: 'ok', checks: { database: { status: 'ok' } } });
  }, 60_000);
});
