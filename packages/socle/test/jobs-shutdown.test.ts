import { afterAll, expect, it } from 'vitest';
import { createTestSocle, type TestDatabase, type TestSocle } from '../src/testing/index.js';
import { createJobsFixtureModule, type JobsFixtureLog } from './fixtures/jobs-module.js';
import { describeEachDatabase } from './support/each-database.js';

describeEachDatabase('Jobs at shutdown', (target) => {
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const database of databases) await database.drop();
  });

  /**
   * A worker node and a way to start the slow job on it, waiting until it runs. `deadlineMs` is the
   * shutdown deadline: generous where the job must finish (a loaded machine may take seconds to
   * settle a 300 ms job; close returns as soon as it has), short where it must be released.
   */
  async function workerWithRunningJob(
    ms: number,
    deadlineMs: number,
    maxAttempts?: number,
  ): Promise<{ socle: TestSocle; id: string; log: JobsFixtureLog }> {
    const database = await target.create();
    databases.push(database);
    const fixture = createJobsFixtureModule();
    const socle = await createTestSocle(target, {
      database,
      modules: [fixture.module],
      config: { shutdownTimeoutMs: deadlineMs, jobsPollIntervalMs: 500 },
    });
    const { id } = await socle.jobs.enqueue(
      socle.db.kysely,
      'jobs_fixture.slow',
      { ms },
      maxAttempts === undefined ? {} : { maxAttempts },
    );
    const until = Date.now() + 20_000;
    while (!fixture.log.started.some((entry) => entry.name === 'jobs_fixture.slow') && Date.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 20));
    return { socle, id, log: fixture.log };
  }

  /** The job as another node sees it once the first one is closed (PGlite: reopened). */
  async function stateAfterClose(socle: TestSocle, id: string) {
    const reader = await createTestSocle(target, {
      database: socle.database,
      modules: [createJobsFixtureModule().module],
      config: { jobsQueues: [] },
    });
    try {
      return await reader.jobs.get(id, null);
    } finally {
      await reader.close();
    }
  }

  it('lets a running job finish within the deadline', async () => {
    const { socle, id, log } = await workerWithRunningJob(300, 15_000);
    expect(log.started).toHaveLength(1);
    await socle.close();
    expect(await stateAfterClose(socle, id)).toMatchObject({ state: 'completed', attempts: 1 });
  });

  it('releases a job still running at the deadline, the attempt given back', async () => {
    const { socle, id } = await workerWithRunningJob(60_000, 1500);
    await socle.close();
    const released = await stateAfterClose(socle, id);
    // Started once; the release did not count against its three runs.
    expect(released).toMatchObject({ state: 'retry', attempts: 1, maxAttempts: 4 });
  });

  it('releases a job allowed a single run (a cron job) for another node to run, not dead', async () => {
    // Long enough to outlive the deadline, short enough to run to its end on the next node.
    const { socle, id } = await workerWithRunningJob(8000, 1500, 1);
    await socle.close();
    expect(await stateAfterClose(socle, id)).toMatchObject({ state: 'retry', attempts: 1, maxAttempts: 2 });
    // The next node runs it to the end.
    const fixture = createJobsFixtureModule();
    const next = await createTestSocle(target, {
      database: socle.database,
      modules: [fixture.module],
      config: { jobsQueues: [] },
    });
    try {
      const outcome = await next.jobs.runDueJobs();
      expect(outcome).toMatchObject({ completed: 1, failed: 0 });
      expect(await next.jobs.get(id, null)).toMatchObject({ state: 'completed', attempts: 2 });
    } finally {
      await next.close();
    }
  });
});
