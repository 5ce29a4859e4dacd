import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createIdentityModule,
  createLogger,
  createMailModule,
  createTenancyModule,
  type ModuleDefinition,
} from '../src/index.js';
import { createJobsModule } from '../src/modules/jobs/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import {
  type DisposablePostgres,
  disposablePostgresSetup,
  startDisposablePostgres,
} from './support/disposable-postgres.js';

const { postgres, binaries, skip } = await disposablePostgresSetup();

/** Two routes that need the database: a lone statement and a transaction. */
const probeModule: ModuleDefinition = {
  name: 'outage_probe',
  routes(app, context) {
    app.get('/probe/statement', async () => {
      await sql`select 1`.execute(context.db.kysely);
      return { ok: true };
    });
    app.get('/probe/transaction', async () => {
      await context.db.transaction(async (trx) => sql`select 1`.execute(trx));
      return { ok: true };
    });
  },
};

const OPERATOR_TOKEN = 'operator-token-of-the-outage-test-0123456789';

interface LogLine {
  readonly level: number;
  readonly msg: string;
}

describe.skipIf(skip)('requests during a database outage (Postgres, disposable server)', () => {
  let server: DisposablePostgres | undefined;
  let socle: TestSocle | undefined;
  const lines: LogLine[] = [];

  beforeAll(async () => {
    if (postgres === undefined) throw new Error('No Postgres test target');
    server = await startDisposablePostgres(binaries);
    const url = server.url;
    socle = await createTestSocle(postgres, {
      // The jobs module starts the job engine (its own pool, polling) and its operator API reads
      // through that pool.
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createJobsModule(),
        probeModule,
      ],
      log: createLogger(
        { logLevel: 'info', logFormat: 'json' },
        { write: (line: string) => lines.push(JSON.parse(line) as LogLine) },
      ),
      // Socle does not own this database: the whole server is thrown away in afterAll.
      database: {
        dialect: 'postgres',
        name: 'postgres',
        url,
        dataDir: undefined,
        drop: async () => undefined,
      },
      config: {
        databaseConnectTimeoutMs: 1000,
        databaseStatementTimeoutMs: 1000,
        jobsPollIntervalMs: 500,
      },
      settings: { identity: { operatorToken: OPERATOR_TOKEN } },
    });
  }, 120_000);

  afterAll(async () => {
    await server?.thaw().catch(() => undefined);
    await socle?.dispose();
    await server?.destroy();
  }, 120_000);

  const get = async (url: string) => {
    if (socle === undefined) throw new Error('Socle did not start');
    return socle.app.inject({ method: 'GET', url, headers: { 'x-operator-token': OPERATOR_TOKEN } });
  };
  const waitForOk = async (url: string) => {
    let response = await get(url);
    for (let attempt = 0; response.statusCode !== 200 && attempt < 100; attempt++) {
      await sleep(200);
      response = await get(url);
    }
    return response;
  };

  it('answers 503 db.unavailable with Retry-After while Postgres is down, logs the outage once, and serves again once it is back', async () => {
    if (server === undefined) throw new Error('Postgres did not start');
    // Warm the pool: idle connections that die with the server are the usual first casualty.
    await Promise.all(Array.from({ length: 5 }, () => get('/probe/transaction')));
    expect((await get('/probe/statement')).statusCode).toBe(200);
    expect((await get('/operator/jobs')).statusCode).toBe(200);
    const before = lines.length;

    await server.stop('immediate');

    const answers = [];
    for (let round = 0; round < 10; round++) {
      answers.push(
        ...(await Promise.all([get('/probe/statement'), get('/probe/transaction'), get('/operator/jobs')])),
      );
    }
    for (const answer of answers) {
      expect(answer.statusCode, answer.body).toBe(503);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(answer.headers['retry-after']).toMatch(/^\d+$/);
      expect(answer.json()).toMatchObject({ code: 'db.unavailable', status: 503 });
    }
    // The job engine keeps polling meanwhile: its failures are the same outage.
    await sleep(1500);
    const during = lines.slice(before);
    // One line says the database is gone; no line per request, no stack per request.
    expect(during.filter((line) => line.level >= 40).map((line) => line.msg)).toEqual([
      expect.stringMatching(/^Database unreachable/),
    ]);

    await server.start();
    expect((await waitForOk('/probe/statement')).statusCode).toBe(200);
    expect((await get('/probe/transaction')).statusCode).toBe(200);
    expect(lines.slice(before).filter((line) => /^Database reachable again/.test(line.msg))).toHaveLength(1);
  }, 90_000);

  it('answers 503 within the configured timeouts while Postgres is frozen (SIGSTOP), and 200 after SIGCONT', async () => {
    if (server === undefined) throw new Error('Postgres did not start');
    expect((await waitForOk('/probe/statement')).statusCode).toBe(200);
    // Connections already in the pool (they hang on a frozen server) and new ones (the connect hangs).
    await Promise.all(Array.from({ length: 5 }, () => get('/probe/transaction')));

    await server.freeze();
    try {
      const freezeLasts = sleep(15_000).then(() => 'still frozen' as const);
      const answers = await Promise.race([
        Promise.all([
          get('/probe/statement'),
          get('/probe/transaction'),
          ...Array.from({ length: 8 }, () => get('/probe/statement')),
        ]),
        freezeLasts,
      ]);
      expect(answers, 'requests were held for the whole freeze').not.toBe('still frozen');
      if (answers === 'still frozen') return;
      for (const answer of answers) {
        expect(answer.statusCode, answer.body).toBe(503);
        expect(answer.headers['retry-after']).toMatch(/^\d+$/);
        expect(answer.json()).toMatchObject({ code: 'db.unavailable' });
      }
      const ready = await get('/readyz');
      expect(ready.statusCode).toBe(503);
    } finally {
      await server.thaw();
    }
    expect((await waitForOk('/probe/statement')).statusCode).toBe(200);
    expect((await waitForOk('/probe/transaction')).statusCode).toBe(200);
    expect((await waitForOk('/readyz')).statusCode).toBe(200);
  }, 90_000);
});
