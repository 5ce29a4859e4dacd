import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineJob, defineModule, postponeJob, Type } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

/**
 * `runDueJobs({ advanceMs })`: jobs are due by the database's clock, which a test's manual clock
 * does not move; the advance runs what a delay, a backoff or a postponement put off, in order,
 * and nothing due later than it.
 */
function createFixture() {
  /** Labels in the order their handlers ran (`label#attempt`). */
  const ran: string[] = [];
  /** Runs left before `waitsTwice` stops postponing itself, by label. */
  const postponements = new Map<string, number>();
  const Label = Type.Object({ label: Type.String() });
  const module = defineModule({
    name: 'job_clock',
    jobs: {
      record: defineJob({
        schema: Label,
        async handler({ payload, job }) {
          ran.push(`${payload.label}#${job.attempt}`);
        },
      }),
      // Fails its first two attempts; retried after 2–4 s, then 4–8 s (pg-boss's jittered backoff).
      flaky: defineJob({
        schema: Label,
        maxAttempts: 5,
        backoff: { initialDelayMs: 2_000 },
        async handler({ payload, job }) {
          ran.push(`${payload.label}#${job.attempt}`);
          if (job.attempt < 3) throw new Error('not yet');
        },
      }),
      waitsTwice: defineJob({
        schema: Label,
        async handler({ payload, job }) {
          ran.push(`${payload.label}#${job.attempt}`);
          const left = postponements.get(payload.label) ?? 2;
          postponements.set(payload.label, left - 1);
          if (left > 0) throw postponeJob(new Error('waiting for something'), 10_000);
        },
      }),
      alwaysWaits: defineJob({
        schema: Label,
        async handler({ payload }) {
          ran.push(payload.label);
          throw postponeJob(new Error('never ready'), 1_000);
        },
      }),
    },
  });
  return { module, ran };
}

describeEachDatabase('Jobs: runDueJobs({ advanceMs }) moves the job clock', (target) => {
  let socle: TestSocle;
  let fixture: ReturnType<typeof createFixture>;

  beforeAll(async () => {
    fixture = createFixture();
    socle = await createTestSocle(target, { modules: [fixture.module], config: { jobsQueues: [] } });
  });
  afterAll(() => socle?.dispose());

  it('runs delayed jobs and retries whose time comes within the advance, and none later', async () => {
    const { ran } = fixture;
    ran.length = 0;
    const enqueue = (name: string, label: string, delayMs?: number) =>
      socle.jobs.enqueue(
        socle.db.kysely,
        `job_clock.${name}`,
        { label },
        delayMs === undefined ? {} : { delayMs },
      );
    await enqueue('record', 'now');
    await enqueue('record', 'in 20 s', 20_000);
    await enqueue('record', 'in 2 min', 120_000);
    await enqueue('flaky', 'flaky');

    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 1 });
    expect(ran.sort()).toEqual(['flaky#1', 'now#1']);
    // Without an advance, nothing else is due: the database's clock has not moved.
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 0 });

    ran.length = 0;
    // 30 s: the retries (at most 4 s, then at most 8 s later) and the job of 20 s; not the 2 min one.
    expect(await socle.jobs.runDueJobs({ advanceMs: 30_000 })).toEqual({ completed: 2, failed: 1 });
    expect(ran.filter((label) => label.startsWith('flaky'))).toEqual(['flaky#2', 'flaky#3']);
    expect(ran.sort()).toEqual(['flaky#2', 'flaky#3', 'in 20 s#1']);

    ran.length = 0;
    expect(await socle.jobs.runDueJobs({ advanceMs: 60_000 })).toEqual({ completed: 0, failed: 0 });
    expect(await socle.jobs.runDueJobs({ advanceMs: 40_000 })).toEqual({ completed: 1, failed: 0 });
    expect(ran).toEqual(['in 2 min#1']);
  });

  it('runs a postponed job again when its postponement ends within the advance, attempts untouched', async () => {
    const { ran } = fixture;
    ran.length = 0;
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'job_clock.waitsTwice', { label: 'waits' });
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 0 });
    expect(await socle.jobs.runDueJobs({ advanceMs: 5_000 })).toEqual({ completed: 0, failed: 0 });
    expect(ran).toEqual(['waits#1']);
    // Postponed by 10 s each time: at 10 s it postpones again, at 20 s it completes.
    expect(await socle.jobs.runDueJobs({ advanceMs: 20_000 })).toEqual({ completed: 1, failed: 0 });
    expect(ran).toEqual(['waits#1', 'waits#1', 'waits#1']);
    expect(await socle.jobs.get(id, null)).toMatchObject({ state: 'completed', attempts: 1 });
  });

  it('ends an advance over a job that postpones itself forever after maxJobs runs', async () => {
    const { ran } = fixture;
    ran.length = 0;
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'job_clock.alwaysWaits', { label: 'forever' });
    // An hour in steps of 1 s would be 3,600 runs: maxJobs counts postponed runs too.
    expect(await socle.jobs.runDueJobs({ advanceMs: 3_600_000, maxJobs: 5 })).toEqual({
      completed: 0,
      failed: 0,
    });
    expect(ran).toHaveLength(5);
    await socle.jobs.cancel(id, null);
  });
});
