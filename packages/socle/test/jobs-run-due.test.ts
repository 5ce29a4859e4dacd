import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineJob, defineModule, type RunningJob, sql, Type } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

/** What the handlers saw: job name, attempt and allowed attempts, in the order they ran. */
type Seen = { name: string; label: string; attempt: number; maxAttempts: number }[];

function createFixture() {
  const seen: Seen = [];
  const see = (job: RunningJob, label: string) =>
    seen.push({ name: job.name, label, attempt: job.attempt, maxAttempts: job.maxAttempts });
  const Label = Type.Object({ label: Type.String() });
  const module = defineModule({
    name: 'run_due',
    globalTables: { effects: 'test fixture' },
    migrations: [
      { name: '0001_effects.sql', sql: 'create table effects (label text not null, attempt int not null);' },
    ],
    jobs: {
      /** Applies its effect and completes the job in one transaction, then fails if asked to. */
      completeThenThrow: defineJob({
        schema: Type.Object({ label: Type.String(), rollBackFirst: Type.Boolean() }),
        maxAttempts: 3,
        backoff: false,
        async handler({ payload, job, db, complete }) {
          see(job, payload.label);
          await db
            .transaction(async (trx) => {
              await sql`insert into run_due.effects (label, attempt) values (${payload.label}, ${job.attempt})`.execute(
                trx,
              );
              await complete(trx);
              if (payload.rollBackFirst && job.attempt === 1) throw new Error('the transaction rolls back');
            })
            .catch((error: unknown) => {
              if (!(error instanceof Error && error.message === 'the transaction rolls back')) throw error;
            });
          if (payload.rollBackFirst && job.attempt === 1) throw new Error('first attempt rolled back');
          // Fails after the commit: the job is completed already and stays so.
          if (!payload.rollBackFirst) throw new Error('failing after the commit');
        },
      }),
      chain: defineJob({
        schema: Label,
        async handler({ payload, job, db }) {
          see(job, payload.label);
          if (payload.label === 'first')
            await socleOf().jobs.enqueue(db.kysely, 'run_due.chain', { label: 'second' });
        },
      }),
      alwaysFails: defineJob({
        schema: Label,
        maxAttempts: 5,
        backoff: false,
        async handler({ payload, job }) {
          see(job, payload.label);
          throw new Error('refused');
        },
      }),
    },
  });
  let socle: TestSocle | undefined;
  const socleOf = () => socle as TestSocle;
  return { module, seen, attach: (started: TestSocle) => (socle = started) };
}

describeEachDatabase('Jobs: complete(trx), runDueJobs and per-enqueue attempts', (target) => {
  let socle: TestSocle;
  let fixture: ReturnType<typeof createFixture>;
  const effects = async (label: string) =>
    (
      await sql<{
        attempt: number;
      }>`select attempt from run_due.effects where label = ${label} order by attempt`.execute(socle.db.kysely)
    ).rows.map((row) => row.attempt);

  beforeAll(async () => {
    fixture = createFixture();
    socle = await createTestSocle(target, { modules: [fixture.module], config: { jobsQueues: [] } });
    fixture.attach(socle);
  });
  afterAll(() => socle?.dispose());

  it('commits the completion with the effect: a failure after that commit leaves the job completed', async () => {
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'run_due.completeThenThrow', {
      label: 'committed',
      rollBackFirst: false,
    });
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 1 });
    expect(await socle.jobs.get(id, null)).toMatchObject({ state: 'completed', attempts: 1 });
    expect(await effects('committed')).toEqual([1]);
  });

  it('rolls the completion back with its transaction: the job runs again', async () => {
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'run_due.completeThenThrow', {
      label: 'rolled back',
      rollBackFirst: true,
    });
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 1 });
    expect(await socle.jobs.get(id, null)).toMatchObject({ state: 'completed', attempts: 2 });
    expect(await effects('rolled back')).toEqual([2]);
  });

  it('runs jobs enqueued by the jobs it runs, until none is due', async () => {
    await socle.jobs.enqueue(socle.db.kysely, 'run_due.chain', { label: 'first' });
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 2, failed: 0 });
    expect(
      fixture.seen.filter((entry) => entry.name === 'run_due.chain').map((entry) => entry.label),
    ).toEqual(['first', 'second']);
  });

  it('takes maxAttempts from the enqueue over the declaration, and tells the handler', async () => {
    const { id } = await socle.jobs.enqueue(
      socle.db.kysely,
      'run_due.alwaysFails',
      { label: 'two attempts' },
      { maxAttempts: 2 },
    );
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 2 });
    expect(await socle.jobs.get(id, null)).toMatchObject({ state: 'failed', attempts: 2, maxAttempts: 2 });
    expect(fixture.seen.filter((entry) => entry.label === 'two attempts')).toEqual([
      { name: 'run_due.alwaysFails', label: 'two attempts', attempt: 1, maxAttempts: 2 },
      { name: 'run_due.alwaysFails', label: 'two attempts', attempt: 2, maxAttempts: 2 },
    ]);
    await expect(
      socle.jobs.enqueue(socle.db.kysely, 'run_due.alwaysFails', { label: 'none' }, { maxAttempts: 0 }),
    ).rejects.toMatchObject({ code: 'jobs.invalid_options', errors: [{ field: 'maxAttempts' }] });
  });

  it('stops after maxJobs attempts', async () => {
    await socle.jobs.enqueue(socle.db.kysely, 'run_due.alwaysFails', { label: 'capped' });
    expect(await socle.jobs.runDueJobs({ maxJobs: 3 })).toEqual({ completed: 0, failed: 3 });
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 2 });
  });

  it('makes a job whose definition is gone dead at once, with what happened', async () => {
    // What a deploy that removed a job leaves behind: its rows still name it.
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'run_due.alwaysFails', { label: 'removed' });
    await sql`update jobs.job set data = jsonb_set(data, '{job}', '"run_due.removed"') where id = ${id}::uuid`.execute(
      socle.db.kysely,
    );
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 1 });
    expect(await socle.jobs.get(id, null)).toMatchObject({
      state: 'failed',
      attempts: 1,
      error: { message: 'Unknown job run_due.removed' },
    });
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 0 });
    expect(fixture.seen.filter((entry) => entry.label === 'removed')).toEqual([]);
  });
});
