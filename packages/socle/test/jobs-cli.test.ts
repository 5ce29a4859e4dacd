import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRecord } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, TEST_SECRET_KEY, type TestDatabase } from '../src/testing/index.js';
import { createJobsFixtureModule } from './fixtures/jobs-module.js';
import { killCliProcesses, runCli } from './support/cli-process.js';
import { describeEachDatabase } from './support/each-database.js';
import { createTempDirectory, removeTempDirectories } from './support/temp-directories.js';

const FIXTURE_MODULE = fileURLToPath(new URL('./fixtures/jobs-crash-module.ts', import.meta.url));
/** Each command spawns Node with tsx and opens the database: seconds each on a busy 2-core machine. */
const TIMEOUT_MS = 120_000;
const STACK_FRAME = /^ {4}at /m;
const TENANT = '3e1f6a2b-7c4d-4e5f-8a9b-0c1d2e3f4a5b';

afterAll(async () => {
  await killCliProcesses();
  await removeTempDirectories();
});

describeEachDatabase('socle jobs', (target) => {
  let database: TestDatabase;
  let dead: string;
  let delayed: string;
  let ofTenant: string;

  beforeAll(async () => {
    // The server works the queues until the failing job is dead, then stops: the CLI then has the
    // database to itself (in embedded mode the data directory belongs to one process).
    const socle = await createTestSocle(target, {
      modules: [...createBuiltInModules(), createJobsFixtureModule().module],
      config: { jobsConcurrency: 1, jobsPollIntervalMs: 500 },
    });
    database = socle.database;
    dead = (await socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.failing', { n: 1 })).id;
    delayed = (
      await socle.jobs.enqueue(
        socle.db.kysely,
        'jobs_fixture.effect',
        { label: 'later' },
        { delayMs: 3_600_000 },
      )
    ).id;
    ofTenant = (
      await socle.scope.run({ tenantId: TENANT }, () =>
        socle.jobs.enqueue(
          socle.db.kysely,
          'jobs_fixture.effect',
          { label: 'of a tenant' },
          { delayMs: 3_600_000 },
        ),
      )
    ).id;
    const until = Date.now() + 30_000;
    while ((await socle.jobs.get(dead, null)).state !== 'failed') {
      if (Date.now() > until) throw new Error('the failing job did not die in time');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await socle.close();
  }, TIMEOUT_MS);
  afterAll(() => database?.drop());

  const jobsCli = (args: readonly string[]) =>
    runCli(['jobs', ...args], {
      cwd: createTempDirectory('socle-jobs-cli-'),
      env: {
        SECRET_KEY: TEST_SECRET_KEY,
        SOCLE_MODULES: FIXTURE_MODULE,
        ...(database.url === undefined
          ? { DATA_DIR: database.dataDir as string }
          : { DATABASE_URL: database.url }),
      },
    });
  const jobOf = (stdout: string) => JSON.parse(stdout) as JobRecord;
  const jobsOf = (stdout: string) => (JSON.parse(stdout) as { jobs: JobRecord[] }).jobs;

  it('lists jobs as a table, and filters by state, queue and organization in JSON', {
    timeout: TIMEOUT_MS,
  }, async () => {
    const table = await jobsCli(['list']);
    expect(table.code, table.stderr).toBe(0);
    const [header, ...lines] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ID +JOB +QUEUE +STATE +ATTEMPTS +ORG +CREATED$/);
    expect(lines.find((line) => line.startsWith(dead))).toMatch(
      new RegExp(`^${dead} +jobs_fixture\\.failing +default +failed +2/2 +- +\\d{4}-`),
    );
    expect(lines.find((line) => line.startsWith(ofTenant))).toContain(TENANT);

    const failed = await jobsCli(['list', '--state', 'failed', '--json']);
    expect(failed.code, failed.stderr).toBe(0);
    expect(jobsOf(failed.stdout).map((job) => [job.id, job.state])).toEqual([[dead, 'failed']]);

    const tenant = await jobsCli(['list', '--org', TENANT, '--json']);
    expect(jobsOf(tenant.stdout).map((job) => job.id)).toEqual([ofTenant]);

    const high = await jobsCli(['list', '--queue', 'high']);
    expect(high.stdout).toBe('No jobs.\n');
  });

  it('shows a job, retries a dead one and cancels a queued one', { timeout: TIMEOUT_MS }, async () => {
    const shown = await jobsCli(['show', dead]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^state +failed$/m);
    expect(shown.stdout).toMatch(/^attempts +2 of 2$/m);
    expect(shown.stdout).toContain('the fake payment provider said no');

    const retried = await jobsCli(['retry', dead, '--json']);
    expect(retried.code, retried.stderr).toBe(0);
    expect(jobOf(retried.stdout)).toMatchObject({ id: dead, state: 'retry' });

    const cancelled = await jobsCli(['cancel', delayed]);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(cancelled.stdout).toMatch(/^state +cancelled$/m);
    const again = await jobsCli(['cancel', delayed]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('[jobs.not_cancellable]');
    expect(again.stderr).not.toMatch(STACK_FRAME);

    const afterwards = jobsOf((await jobsCli(['list', '--json'])).stdout);
    expect(afterwards.find((job) => job.id === dead)?.state).toBe('retry');
    expect(afterwards.find((job) => job.id === delayed)?.state).toBe('cancelled');
  });

  it('answers exit 1 naming the code for a job that does not exist', { timeout: TIMEOUT_MS }, async () => {
    const missing = await jobsCli(['show', '00000000-0000-4000-8000-000000000000']);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('[jobs.not_found]');
    expect(missing.stderr).not.toMatch(STACK_FRAME);
  });
});

describe('socle jobs usage errors', { timeout: TIMEOUT_MS }, () => {
  it('exits 2 naming what is wrong, before opening any database', async () => {
    const directory = createTempDirectory('socle-jobs-cli-');
    const results = await Promise.all(
      [
        ['jobs'],
        ['jobs', 'frobnicate'],
        ['jobs', 'list', '--state', 'dead'],
        ['jobs', 'list', '--queue', 'urgent'],
        ['jobs', 'list', '--org', 'cabinet-a'],
        ['jobs', 'list', '--limit', '0'],
        ['jobs', 'retry'],
        ['jobs', 'show', '--state', 'failed', '00000000-0000-4000-8000-000000000000'],
      ].map((args) => runCli(args, { cwd: directory, env: { DATA_DIR: directory } })),
    );
    for (const result of results) {
      expect(result.code, result.stderr).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('Usage: socle jobs <command>');
      expect(result.stderr).not.toMatch(STACK_FRAME);
    }
    expect(results.map((result) => result.stderr.split('\n')[0])).toEqual([
      'socle jobs needs a command: list, show, retry or cancel.',
      'Unknown command "jobs frobnicate".',
      '--state must be one of created, retry, active, completed, cancelled, failed; got "dead".',
      '--queue must be one of high, default, low; got "urgent".',
      '--org must be an organization id (a UUID); got "cabinet-a".',
      '--limit must be an integer from 1 to 1000; got "0".',
      'socle jobs retry needs one job id.',
      'socle jobs show takes no --state.',
    ]);
  });
});
