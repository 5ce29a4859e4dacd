import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPEATED_SIGNAL_WINDOW_MS } from '../src/cli/stop-signals.js';
import {
  createTestPostgresDatabase,
  TEST_SECRET_KEY,
  type TestDatabase,
  testDatabaseTargets,
} from '../src/testing/index.js';
import { type CliProcess, killCliProcesses, spawnCli, waitForListening } from './support/cli-process.js';
import { type HttpResponse, httpGet } from './support/http-request.js';
import { createEmbeddedDataDirectory, removeTempDirectories } from './support/temp-directories.js';

const SLOW_MODULE = fileURLToPath(new URL('./fixtures/slow-module.ts', import.meta.url));
const postgres = (await testDatabaseTargets()).find((target) => target.dialect === 'postgres');

afterEach(killCliProcesses);
afterAll(removeTempDirectories);

/** What happened to a request: its response, or the socket error that ended it. */
type Outcome = { readonly response: HttpResponse } | { readonly error: NodeJS.ErrnoException };

function settle(request: Promise<HttpResponse>): Promise<Outcome> {
  return request.then(
    (response) => ({ response }),
    (error: NodeJS.ErrnoException) => ({ error }),
  );
}

/** Starts `socle start` with the slow module; resolves once it serves HTTP. */
async function startServer(env: Readonly<Record<string, string>>): Promise<{ cli: CliProcess; url: string }> {
  const dataDirectory = await createEmbeddedDataDirectory();
  const cli = spawnCli(['start'], {
    cwd: dataDirectory,
    env: { DATA_DIR: dataDirectory, SOCLE_MODULES: SLOW_MODULE, ...env },
  });
  return { cli, url: await waitForListening(cli) };
}

/**
 * Sends `GET /slow?ms=…` (one per server) and resolves once the server is running its handler,
 * with the request's eventual outcome (wrapped: an async function would wait for a returned promise).
 */
async function beginSlowRequest(
  cli: CliProcess,
  url: string,
  ms: number,
  agent?: http.Agent,
): Promise<{ outcome: Promise<Outcome> }> {
  const outcome = settle(httpGet(`${url}/slow?ms=${ms}`, agent === undefined ? {} : { agent }));
  await cli.waitForLog((line) => line.msg === 'slow request started');
  return { outcome };
}

const drainStarted = (cli: CliProcess) =>
  cli.waitForLog((line) => line.msg === 'Shutting down: draining in-flight requests');

/**
 * Tries new connections until one is refused: once draining, the server must stop listening. Until
 * then an attempt may be answered, but only with 503; a connection accepted in the instant before
 * the listener closes may also be reset (Node closes connections that have not sent a full request).
 */
async function expectNewConnectionsTurnedAway(url: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const outcome = await settle(httpGet(`${url}/livez`));
    if ('response' in outcome) expect(outcome.response.status).toBe(503);
    else if (outcome.error.code === 'ECONNREFUSED') return;
    else expect(outcome.error.code).toBe('ECONNRESET');
    await sleep(50);
  }
  throw new Error(`${url} still accepts connections while draining`);
}

/**
 * SIGTERM while a request is in flight: the request completes, new connections are turned away,
 * and the process exits 0 well before the deadline. The client keeps its connection open after the
 * response, as browsers and reverse proxies (nginx `keepalive`, HAProxy) do.
 */
async function expectGracefulDrain(env: Readonly<Record<string, string>>): Promise<void> {
  const { cli, url } = await startServer({ SHUTDOWN_TIMEOUT_MS: '8000', ...env });
  const keepAlive = new http.Agent({ keepAlive: true });
  try {
    const { outcome: slow } = await beginSlowRequest(cli, url, 1500, keepAlive);

    cli.signal('SIGTERM');
    await drainStarted(cli);
    await expectNewConnectionsTurnedAway(url);

    const outcome = await slow;
    expect(outcome).toHaveProperty('response');
    if ('response' in outcome) {
      expect(outcome.response.status).toBe(200);
      expect(JSON.parse(outcome.response.body)).toEqual({ waitedMs: 1500 });
    }
    const exit = await cli.waitForExit(15_000);
    expect(exit.code, cli.stdout() + cli.stderr()).toBe(0);
    expect(cli.logs().some((line) => line.msg === 'Stopped' && line.drained === true)).toBe(true);
  } finally {
    keepAlive.destroy();
  }
}

describe('socle start: graceful shutdown (embedded)', { timeout: 60_000 }, () => {
  it('lets an in-flight request finish on SIGTERM, refuses new connections, and exits 0', async () => {
    await expectGracefulDrain({});
  });

  it('cuts a request still running at SHUTDOWN_TIMEOUT_MS and exits 1 without waiting for it', async () => {
    const { cli, url } = await startServer({ SHUTDOWN_TIMEOUT_MS: '300' });
    const requestStarted = Date.now();
    const { outcome: slow } = await beginSlowRequest(cli, url, 5000);

    cli.signal('SIGTERM');
    const exit = await cli.waitForExit(15_000);
    const outcome = await slow;
    expect(exit.code, cli.stdout() + cli.stderr()).toBe(1);
    // The client sees its connection reset, not an answer; the process did not wait for the handler.
    expect(outcome).toHaveProperty('error');
    if ('error' in outcome) expect(['ECONNRESET', 'EPIPE']).toContain(outcome.error.code);
    expect(Date.now() - requestStarted).toBeLessThan(5000);
    expect(cli.logs().some((line) => line.msg === 'Stopped after cutting requests at the deadline')).toBe(
      true,
    );
  });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'exits 1 at once on a second signal (%s) while draining',
    async (second) => {
      const { cli, url } = await startServer({ SHUTDOWN_TIMEOUT_MS: '20000' });
      const requestStarted = Date.now();
      const { outcome: slow } = await beginSlowRequest(cli, url, 5000);

      cli.signal('SIGTERM');
      await drainStarted(cli);
      // Sooner, the same signal would be the same request (npm and a terminal both deliver Ctrl-C).
      await sleep(REPEATED_SIGNAL_WINDOW_MS);
      cli.signal(second);
      const exit = await cli.waitForExit(15_000);
      expect(exit.code, cli.stdout() + cli.stderr()).toBe(1);
      expect(cli.logs().some((line) => line.msg === 'Second signal: exiting now')).toBe(true);
      expect(await slow).toHaveProperty('error');
      expect(Date.now() - requestStarted).toBeLessThan(5000 + REPEATED_SIGNAL_WINDOW_MS);
    },
  );
});

describe.skipIf(!postgres?.available)(
  'socle start: graceful shutdown (Postgres)',
  { timeout: 60_000 },
  () => {
    let database: TestDatabase | undefined;
    beforeAll(async () => {
      database = await createTestPostgresDatabase();
    });
    afterAll(async () => {
      await killCliProcesses();
      await database?.drop();
    });

    it('lets an in-flight request finish on SIGTERM, refuses new connections, and exits 0', async () => {
      if (database?.url === undefined) throw new Error('No Postgres test database');
      await expectGracefulDrain({ DATABASE_URL: database.url, SECRET_KEY: TEST_SECRET_KEY });
    });
  },
);
