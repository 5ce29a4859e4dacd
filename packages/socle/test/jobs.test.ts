import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type JobRecord, sql, tenantSettings } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { createJobsFixtureModule, type JobsFixtureLog } from './fixtures/jobs-module.js';
import { describeEachDatabase } from './support/each-database.js';
import { checkWithPromtool } from './support/promtool.js';

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

describeEachDatabase('Durable jobs', (target) => {
  let socle: TestSocle;
  let log: JobsFixtureLog;
  const job = (id: string) => socle.jobs.get(id, null);
  const effects = async () =>
    (
      await sql<{
        job_id: string;
        label: string;
      }>`select job_id, label from jobs_fixture.effects order by id`.execute(socle.db.kysely)
    ).rows;

  beforeAll(async () => {
    const fixture = createJobsFixtureModule({ cron: '* * * * * *' });
    log = fixture.log;
    socle = await createTestSocle(target, {
      modules: [fixture.module],
      // One fetch loop: the priority order is the order of one fetch (two loops fetching at
      // once split a batch between them, and each starts its share when it gets it).
      config: { jobsSuperviseIntervalMs: 1000, jobsPollIntervalMs: 500, jobsConcurrency: 1 },
    });
  });
  afterAll(() => socle?.dispose());

  it('runs a job enqueued in a committed transaction, with its effect applied once', async () => {
    const { id, created } = await socle.db.transaction(async (trx) => {
      await sql`insert into jobs_fixture.items (id) values ('first')`.execute(trx);
      return socle.jobs.enqueue(trx, 'jobs_fixture.effect', { label: 'first' });
    });
    expect(created).toBe(true);
    const done = await eventually(
      () => job(id),
      (record) => record.state === 'completed',
    );
    expect(done).toMatchObject({
      name: 'jobs_fixture.effect',
      queue: 'default',
      attempts: 1,
      tenantId: null,
    });
    expect(await effects()).toEqual([{ job_id: id, label: 'first' }]);
  });

  it('enqueues nothing when the transaction rolls back', async () => {
    let enqueued: string | undefined;
    await expect(
      socle.db.transaction(async (trx) => {
        await sql`insert into jobs_fixture.items (id) values ('rolled-back')`.execute(trx);
        enqueued = (await socle.jobs.enqueue(trx, 'jobs_fixture.effect', { label: 'rolled back' })).id;
        throw new Error('the business write failed');
      }),
    ).rejects.toThrow('the business write failed');
    await expect(job(enqueued as string)).rejects.toMatchObject({ code: 'jobs.not_found' });
  });

  it('refuses a payload that does not match the schema at the call site', async () => {
    await expect(
      socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.effect', { label: '' }),
    ).rejects.toMatchObject({ code: 'jobs.invalid_payload', status: 400 });
    await expect(socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.nope', {})).rejects.toMatchObject({
      code: 'jobs.unknown_job',
    });
  });

  it('enqueues a batch in the transaction: all or nothing, keys de-duplicated, each job run', async () => {
    // One bad payload: nothing written, the error names its index.
    const refused = await socle.jobs
      .enqueueMany(socle.db.kysely, 'jobs_fixture.effect', [
        { payload: { label: 'batch ok' } },
        { payload: { label: '' } },
      ])
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'jobs.invalid_payload', status: 400 });
    expect(JSON.stringify(refused)).toContain('jobs/1/payload/label');
    expect(await effects()).not.toContainEqual(expect.objectContaining({ label: 'batch ok' }));

    // Rolled back with the business write.
    let rolledBack: string[] = [];
    await expect(
      socle.db.transaction(async (trx) => {
        rolledBack = (
          await socle.jobs.enqueueMany(trx, 'jobs_fixture.effect', [{ payload: { label: 'batch gone' } }])
        ).map((enqueued) => enqueued.id);
        throw new Error('the business write failed');
      }),
    ).rejects.toThrow('the business write failed');
    await expect(job(rolledBack[0] as string)).rejects.toMatchObject({ code: 'jobs.not_found' });

    const earlier = await socle.jobs.enqueue(
      socle.db.kysely,
      'jobs_fixture.effect',
      { label: 'batch keyed' },
      { key: 'batch-k' },
    );
    const tenantId = '5a0e8c7d-1f2b-4c3d-8e9f-0a1b2c3d4e5f';
    const batch = await socle.scope.run({ tenantId }, () =>
      socle.db.transaction((trx) =>
        socle.jobs.enqueueMany(trx, 'jobs_fixture.effect', [
          { payload: { label: 'batch 1' } },
          { payload: { label: 'batch 2' }, key: 'twice' },
          { payload: { label: 'batch 2 again' }, key: 'twice' },
          { payload: { label: 'batch later' }, delayMs: 3_600_000 },
        ]),
      ),
    );
    // A key is per tenant: the tenant's 'batch-k' would not be the global one.
    const global = await socle.db.transaction((trx) =>
      socle.jobs.enqueueMany(trx, 'jobs_fixture.effect', [
        { payload: { label: 'batch keyed again' }, key: 'batch-k' },
      ]),
    );
    expect(global).toEqual([{ id: earlier.id, created: false }]);
    expect(batch.map((enqueued) => enqueued.created)).toEqual([true, true, false, true]);
    expect(batch[2]?.id).toBe(batch[1]?.id);
    for (const enqueued of batch.slice(0, 2))
      await eventually(
        () => job(enqueued.id),
        (record) => record.state === 'completed',
      );
    expect((await job(batch[0]?.id as string)).tenantId).toBe(tenantId);
    expect((await job(batch[3]?.id as string)).state).toBe('created');
    await socle.jobs.cancel(batch[3]?.id as string, null);
    const labels = (await effects()).map((row) => row.label);
    expect(labels.filter((label) => label.startsWith('batch'))).toEqual(
      expect.arrayContaining(['batch 1', 'batch 2']),
    );
    expect(labels).not.toContain('batch 2 again');
    expect(labels).not.toContain('batch gone');
  });

  it('enqueues a job once per de-duplication key', async () => {
    const first = await socle.jobs.enqueue(
      socle.db.kysely,
      'jobs_fixture.effect',
      { label: 'keyed' },
      { key: 'k1' },
    );
    const second = await socle.jobs.enqueue(
      socle.db.kysely,
      'jobs_fixture.effect',
      { label: 'keyed' },
      { key: 'k1' },
    );
    expect(second).toEqual({ id: first.id, created: false });
    // Keys belong to a tenant: another tenant's job with the same key is its own.
    const ofTenant = await socle.scope.run({ tenantId: '0b6f3c1e-2c4a-4f6e-9d7b-3a1c5e7f9b2d' }, () =>
      socle.jobs.enqueue(
        socle.db.kysely,
        'jobs_fixture.effect',
        { label: 'keyed of a tenant' },
        { key: 'k1' },
      ),
    );
    expect(ofTenant.created).toBe(true);
    expect(ofTenant.id).not.toBe(first.id);
    await eventually(
      () => job(first.id),
      (record) => record.state === 'completed',
    );
    expect((await effects()).filter((row) => row.label === 'keyed')).toHaveLength(1);
  });

  it('retries a failing job, keeps it dead after its last attempt, and runs it again on retry', async () => {
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.failing', { n: 1 });
    const dead = await eventually(
      () => job(id),
      (record) => record.state === 'failed',
    );
    expect(dead).toMatchObject({ attempts: 2, maxAttempts: 2 });
    expect(dead.error).toMatchObject({ message: 'the fake payment provider said no' });
    expect(
      log.started.filter((entry) => entry.name === 'jobs_fixture.failing').map((entry) => entry.attempt),
    ).toEqual([1, 2]);
    expect(
      (await socle.jobs.list({ tenantId: null, state: 'failed', limit: 10 })).map((row) => row.id),
    ).toContain(id);
    await socle.jobs.retry(id, null);
    await eventually(
      async () => log.started.filter((entry) => entry.name === 'jobs_fixture.failing').length,
      (count) => count >= 3,
    );
  });

  it('waits an exponential backoff with jitter before the next attempt', async () => {
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.backingOff', {});
    const waiting = await eventually(
      () => job(id),
      (record) => record.state === 'retry',
    );
    expect(waiting).toMatchObject({ attempts: 1, maxAttempts: 4 });
    // pg-boss: delay · (2^n/2 + 2^n/2 · random) seconds after the failure, n the retries so far.
    const delaySeconds = (Date.parse(waiting.startAfter) - Date.now()) / 1000;
    expect(delaySeconds).toBeGreaterThan(20);
    expect(delaySeconds).toBeLessThanOrEqual(121);
    await socle.jobs.cancel(id, null);
  });

  it('fails an attempt at its timeout, aborting its signal, even when the handler ignores it', async () => {
    const [honouring, ignoring] = await socle.db.transaction((trx) =>
      socle.jobs.enqueueMany(trx, 'jobs_fixture.overrunning', [
        { payload: { honoursSignal: true } },
        { payload: { honoursSignal: false } },
      ]),
    );
    for (const enqueued of [honouring, ignoring]) {
      const dead = await eventually(
        () => job(enqueued?.id as string),
        (record) => record.state === 'failed',
      );
      expect(dead.error).toMatchObject({ code: 'jobs.timed_out' });
    }
    expect(log.abortReasons).toEqual(['jobs.timed_out']);
  });

  it("does not let a lapsed attempt's complete(trx) settle the attempt that took the job over", async () => {
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.lapsing', {});
    const attempts = () =>
      log.started.filter((entry) => entry.name === 'jobs_fixture.lapsing').map((entry) => entry.attempt);
    // The first attempt passes its timeout; the second fetches the job and waits.
    await eventually(
      async () => attempts(),
      (seen) => seen.includes(2),
    );
    log.lapsing.lapsedAttemptMayComplete.open();
    await log.lapsing.lapsedAttemptCompleted.opened;
    expect(await job(id)).toMatchObject({ state: 'active', attempts: 2 });
    log.lapsing.secondAttemptMayComplete.open();
    expect(
      await eventually(
        () => job(id),
        (record) => record.state === 'completed',
      ),
    ).toMatchObject({ attempts: 2 });
    expect(attempts()).toEqual([1, 2]);
  });

  it('runs higher priorities first', async () => {
    await socle.db.transaction(async (trx) => {
      for (const [label, priority] of [
        ['low', 1],
        ['high', 9],
        ['middle', 5],
      ] as const)
        await socle.jobs.enqueue(trx, 'jobs_fixture.ordered', { label }, { priority });
    });
    const labels = await eventually(
      async () =>
        log.started
          .filter((entry) => entry.name === 'jobs_fixture.ordered')
          .map((entry) => (entry.payload as { label: string }).label),
      (seen) => seen.length === 3,
    );
    expect(labels).toEqual(['high', 'middle', 'low']);
  });

  it('runs a tenant job in its tenant scope, so its transactions carry app.tenant_id', async () => {
    const tenantId = '7d3c0d52-9d4c-4a53-8a8e-1b2a4c0f9e11';
    const { id } = await socle.scope.run({ tenantId }, () =>
      socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.effect', { label: 'tenant' }),
    );
    await eventually(
      () => job(id),
      (record) => record.state === 'completed',
    );
    const entry = log.started.find((started) => (started.payload as { label?: string }).label === 'tenant');
    expect(entry?.tenantId).toBe(tenantId);
    expect(log.transactionTenants).toContain(tenantId);
    expect((await socle.jobs.list({ tenantId, limit: 10 })).map((row) => row.id)).toEqual([id]);
    await expect(socle.jobs.get(id, '00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({
      code: 'jobs.not_found',
    });
  });

  it("gives a job the tenant and user of the transaction that enqueues it, over the current request's", async () => {
    const webhookTenant = '2f1d6c0e-4b7a-4c1e-9f3d-6a5b4c3d2e1f';
    const buyer = '5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d';
    const requestTenant = '9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b';
    // A webhook: no request scope; the transaction names the organization it credits.
    const fromWebhook = await socle.db.transaction(
      (trx) => socle.jobs.enqueue(trx, 'jobs_fixture.effect', { label: 'webhook' }),
      { settings: tenantSettings({ tenantId: webhookTenant, userId: buyer }) },
    );
    // A request of one organization whose transaction acts for another (explicit settings win).
    const crossed = await socle.scope.run({ tenantId: requestTenant }, () =>
      socle.db.transaction((trx) => socle.jobs.enqueue(trx, 'jobs_fixture.effect', { label: 'crossed' }), {
        settings: tenantSettings({ tenantId: webhookTenant }),
      }),
    );
    // A transaction that names no tenant inherits the request's, as before.
    const inherited = await socle.scope.run({ tenantId: requestTenant }, () =>
      socle.db.transaction((trx) => socle.jobs.enqueue(trx, 'jobs_fixture.effect', { label: 'inherited' })),
    );
    for (const { id } of [fromWebhook, crossed, inherited])
      await eventually(
        () => job(id),
        (record) => record.state === 'completed',
      );
    const tenantOf = (label: string) =>
      log.started.find((started) => (started.payload as { label?: string }).label === label)?.tenantId;
    expect(tenantOf('webhook')).toBe(webhookTenant);
    expect(tenantOf('crossed')).toBe(webhookTenant);
    expect(tenantOf('inherited')).toBe(requestTenant);
    expect(await socle.jobs.get(fromWebhook.id, webhookTenant)).toMatchObject({ tenantId: webhookTenant });
  });

  it('keeps a delayed job queued until its time, and cancels it', async () => {
    const { id } = await socle.jobs.enqueue(
      socle.db.kysely,
      'jobs_fixture.effect',
      { label: 'later' },
      { delayMs: 3_600_000 },
    );
    const queued: JobRecord = await job(id);
    expect(queued.state).toBe('created');
    expect(Date.parse(queued.startAfter) - Date.parse(queued.createdAt)).toBeGreaterThan(3_500_000);
    expect((await socle.jobs.cancel(id, null)).state).toBe('cancelled');
  });

  it('stores progress', async () => {
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.progressing', {});
    const done = await eventually(
      () => job(id),
      (record) => record.state === 'completed',
    );
    expect(done.progress).toEqual({ step: 'done', percent: 100 });
  });

  it('reports job metrics that promtool accepts', async () => {
    const metrics = async () => {
      const response = await socle.app.inject({ method: 'GET', url: '/metrics' });
      expect(response.statusCode).toBe(200);
      return response.body;
    };
    const finished = (text: string, outcome: string) =>
      Number(
        new RegExp(`socle_jobs_finished_total\\{queue="default",outcome="${outcome}"\\} (\\d+)`).exec(
          text,
        )?.[1] ?? 0,
      );
    const before = await metrics();
    // Its own sample: one job that completes, one that fails both its attempts.
    const [completing, failing] = await Promise.all([
      socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.effect', { label: 'metrics' }),
      socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.failing', { n: 2 }),
    ]);
    await eventually(
      () => job(completing.id),
      (record) => record.state === 'completed',
    );
    await eventually(
      () => job(failing.id),
      (record) => record.state === 'failed',
    );
    const text = await metrics();
    expect(finished(text, 'completed')).toBeGreaterThanOrEqual(finished(before, 'completed') + 1);
    expect(finished(text, 'failed')).toBeGreaterThanOrEqual(finished(before, 'failed') + 2);
    expect(text).toContain('socle_job_duration_seconds_bucket{le="0.001",queue="default"}');
    expect(text).toMatch(/socle_jobs_ready\{queue="high"\} 0/);
    expect(text).toContain('socle_jobs_oldest_ready_age_seconds{queue="default"}');
    checkWithPromtool(text);
  });

  it('fires cron schedules declared by modules', async () => {
    await eventually(
      async () => log.started.filter((entry) => entry.name === 'jobs_fixture.tick').length,
      (count) => count >= 1,
    );
  });
});

describe('keyed job ids', () => {
  it('are stable version 5 UUIDs', async () => {
    const { keyedJobId } = await import('../src/kernel/queue/index.js');
    expect(keyedJobId('a.b', 'k')).toBe(keyedJobId('a.b', 'k'));
    expect(keyedJobId('a.b', 'k')).not.toBe(keyedJobId('a.b', 'l'));
    expect(keyedJobId('a.b', 'k')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
});
