import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../src/index.js';
import { createTestSocle, TEST_SECRET_KEY, type TestDatabase, type TestSocle } from '../src/testing/index.js';
import { createJobsFixtureModule } from './fixtures/jobs-module.js';
import { killCliProcesses, runCli, spawnCli } from './support/cli-process.js';
import { postgresTarget } from './support/each-database.js';
import { createTempDirectory, removeTempDirectories } from './support/temp-directories.js';

const CRASH_MODULE = fileURLToPath(new URL('./fixtures/jobs-crash-module.ts', import.meta.url));

// Postgres only: several processes share the queue (PGlite belongs to one process).
describe.skipIf(!postgresTarget.available)('Job workers in processes of their own [postgres]', () => {
  let database: TestDatabase;
  let socle: TestSocle;
  afterEach(killCliProcesses);
  beforeAll(async () => {
    database = await postgresTarget.create();
    // This process only enqueues and inspects: it works no queue.
    socle = await createTestSocle(postgresTarget, {
      database,
      modules: [createJobsFixtureModule().module],
      config: { jobsQueues: [] },
    });
  });
  afterAll(async () => {
    await socle?.dispose();
    await database?.drop();
    await removeTempDirectories();
  });

  const workerEnv = () => ({
    DATABASE_URL: database.url as string,
    SECRET_KEY: TEST_SECRET_KEY,
    SOCLE_MODULES: CRASH_MODULE,
    JOBS_SUPERVISE_INTERVAL_MS: '1000',
    JOBS_POLL_INTERVAL_MS: '500',
    SHUTDOWN_TIMEOUT_MS: '2000',
  });

  it('retries on another worker a job whose worker was killed, and applies its effect once', async () => {
    const first = spawnCli(['worker', '--queues', 'default'], { env: workerEnv() });
    await first.waitForLog((line) => line.msg.includes('worker started'), 30_000);
    const { id } = await socle.db.transaction((trx) =>
      socle.jobs.enqueue(trx, 'jobs_fixture.effect', { label: 'crash', waitMs: 2500 }),
    );
    await first.waitForLog((line) => line.msg === 'Fixture effect committed' && line.jobId === id, 30_000);
    first.signal('SIGKILL');
    await first.waitForExit(10_000);

    const second = spawnCli(['worker', '--queues', 'default,high'], { env: workerEnv() });
    const retried = await second.waitForLog(
      (line) => line.msg === 'Fixture effect committed' && line.jobId === id,
      30_000,
    );
    expect(retried.attempt).toBe(2);
    const until = Date.now() + 30_000;
    while ((await socle.jobs.get(id, null)).state !== 'completed' && Date.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await socle.jobs.get(id, null)).toMatchObject({ state: 'completed', attempts: 2 });
    const { rows } = await sql<{
      job_id: string;
    }>`select job_id from jobs_fixture.effects where label = 'crash'`.execute(socle.db.kysely);
    expect(rows).toEqual([{ job_id: id }]);
  }, 90_000);

  it('refuses `socle worker` in embedded mode with a clear message', async () => {
    const directory = createTempDirectory();
    const result = await runCli(['worker'], { cwd: directory, env: { DATA_DIR: directory } });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('socle worker needs Postgres');
  });
});
