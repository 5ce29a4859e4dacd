import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sql } from '../src/index.js';
import { createTestSocle, TEST_SECRET_KEY, type TestDatabase, type TestSocle } from '../src/testing/index.js';
import { createJobsFixtureModule } from './fixtures/jobs-module.js';
import { killCliProcesses, runCli, spawnCli } from './support/cli-process.js';
import { postgresTarget } from './support/each-database.js';
import { createTempDirectory, removeTempDirectories } from './support/temp-directories.js';

const CRASH_MODULE = fileURLToPath(new URL('./fixtures/jobs-crash-module.ts', import.meta.url));
const CRON_MODULE = fileURLToPath(new URL('./fixtures/jobs-cron-module.ts', import.meta.url));

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

  it('starts nodes together on a fresh database, and fires each cron occurrence once across them', async () => {
    // Three workers install the engine at once on a fresh database (all but one failed to start on
    // this before the install took a lock). The web node (this process) works no queue, so it runs
    // no cron pass; the workers do, each registering the same schedule. pg-boss lets one pass claim
    // each interval and files an occurrence under one key per minute: one job per occurrence
    // whatever the fleet's size.
    const cronDatabase = await postgresTarget.create();
    const env = { ...workerEnv(), DATABASE_URL: cronDatabase.url as string, SOCLE_MODULES: CRON_MODULE };
    const workers = [['default'], ['default,low'], ['high,default']].map((queues) =>
      spawnCli(['worker', '--queues', ...queues], { env }),
    );
    let web: TestSocle | undefined;
    try {
      await Promise.all(
        workers.map((worker) => worker.waitForLog((line) => line.msg.includes('worker started'), 60_000)),
      );
      web = await createTestSocle(postgresTarget, {
        database: cronDatabase,
        modules: [createJobsFixtureModule({ cron: '* * * * * *' }).module],
        config: { jobsQueues: [] },
      });
      const webDb = web.db;
      // pg-boss sends an occurrence through its send-it queue, one job per (schedule, minute slot) it
      // falls in: with an every-second expression that is one tick a minute, so a run that crosses
      // a minute boundary rightly has two. Each slot must give exactly one tick.
      const counts = async () =>
        (
          await sql<{ slots: number; forwards: number; pending: number; ticks: number; completed: number }>`
            select (select count(distinct data->>'slot') from jobs.job
                     where name = '__pgboss__send-it' and data->>'key' = 'jobs_fixture.tick')::int as slots,
                   (select count(*) from jobs.job
                     where name = '__pgboss__send-it' and data->>'key' = 'jobs_fixture.tick')::int as forwards,
                   (select count(*) from jobs.job
                     where name = '__pgboss__send-it' and data->>'key' = 'jobs_fixture.tick'
                       and state in ('created', 'retry', 'active'))::int as pending,
                   count(*)::int as ticks,
                   count(*) filter (where state = 'completed')::int as completed
              from jobs.job where data->>'job' = 'jobs_fixture.tick'`.execute(webDb.kysely)
        ).rows[0] as { slots: number; forwards: number; pending: number; ticks: number; completed: number };
      const until = Date.now() + 30_000;
      while ((await counts()).completed === 0) {
        if (Date.now() > until) throw new Error('No cron occurrence ran within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      // Both workers keep attempting a pass every second (JOBS_SUPERVISE_INTERVAL_MS): give them
      // a few to send the same occurrence again.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      // Then let the forwards already queued (a slot that began meanwhile) give their tick.
      let settled = await counts();
      while (settled.pending > 0 && Date.now() < until + 10_000) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        settled = await counts();
      }
      expect(settled.slots).toBeGreaterThan(0);
      expect(settled.forwards).toBe(settled.slots);
      expect(settled.ticks).toBe(settled.slots);
      const { rows: schedules } = await sql<{ name: string; key: string }>`
        select name, key from jobs.schedule where key = 'jobs_fixture.tick'`.execute(webDb.kysely);
      expect(schedules).toEqual([{ name: 'default', key: 'jobs_fixture.tick' }]);
    } finally {
      await killCliProcesses();
      await web?.close();
      await cronDatabase.drop();
    }
  }, 120_000);
});
