import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineJob, defineModule, Type } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

/** Polls until `check` holds (the engine runs jobs in the background); fails after 20 s. */
async function eventually<T>(read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  const until = Date.now() + 20_000;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > until)
      throw new Error(`Condition not met in time; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Jobs that record their attempts; `flaky` fails its first attempt and retries after a backoff. */
function wakeFixture() {
  const attempts: { name: string; label: string; attempt: number }[] = [];
  const module = defineModule({
    name: 'jobs_wake',
    jobs: {
      record: defineJob({
        schema: Type.Object({ label: Type.String() }),
        async handler({ payload, job }) {
          attempts.push({ name: 'record', label: payload.label, attempt: job.attempt });
        },
      }),
      flaky: defineJob({
        schema: Type.Object({ label: Type.String() }),
        maxAttempts: 2,
        backoff: { initialDelayMs: 1000, maxDelayMs: 2000 },
        async handler({ payload, job }) {
          attempts.push({ name: 'flaky', label: payload.label, attempt: job.attempt });
          if (job.attempt === 1) throw new Error('the provider is busy');
        },
      }),
    },
  });
  return { module, attempts };
}

describeEachDatabase('Idle job workers woken instead of polling', (target) => {
  let socle: TestSocle;
  const fixture = wakeFixture();
  const job = (id: string) => socle.jobs.get(id, null);

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [fixture.module],
      // An idle worker polls once an hour: every job below runs because it was woken.
      config: { jobsPollIntervalMs: 500, jobsIdlePollIntervalMs: 3_600_000, jobsConcurrency: 1 },
    });
  });
  afterAll(() => socle?.dispose());

  it('runs a job enqueued due now (NOTIFY wakes the worker)', async () => {
    const { id } = await socle.db.transaction((trx) =>
      socle.jobs.enqueue(trx, 'jobs_wake.record', { label: 'now' }),
    );
    await eventually(
      () => job(id),
      (record) => record.state === 'completed',
    );
    expect(fixture.attempts).toContainEqual({ name: 'record', label: 'now', attempt: 1 });
  });

  it('runs a job enqueued with a delay once its time comes (woken at its time)', async () => {
    const { id } = await socle.db.transaction((trx) =>
      socle.jobs.enqueue(trx, 'jobs_wake.record', { label: 'later' }, { delayMs: 1500 }),
    );
    expect((await job(id)).state).toBe('created');
    await eventually(
      () => job(id),
      (record) => record.state === 'completed',
    );
    expect(fixture.attempts).toContainEqual({ name: 'record', label: 'later', attempt: 1 });
  });

  it('runs the retry of a failed attempt once its backoff is over (woken at its time)', async () => {
    const { id } = await socle.db.transaction((trx) =>
      socle.jobs.enqueue(trx, 'jobs_wake.flaky', { label: 'retried' }),
    );
    const done = await eventually(
      () => job(id),
      (record) => record.state === 'completed',
    );
    expect(done.attempts).toBe(2);
    expect(fixture.attempts.filter((attempt) => attempt.label === 'retried')).toEqual([
      { name: 'flaky', label: 'retried', attempt: 1 },
      { name: 'flaky', label: 'retried', attempt: 2 },
    ]);
  });
});
