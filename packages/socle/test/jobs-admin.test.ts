import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { purgeEffectsOlderThan } from '../src/modules/jobs/effects.store.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { createJobsFixtureModule } from './fixtures/jobs-module.js';
import { callAs, type TestUser } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

const OPERATOR_TOKEN = 'operator-token-of-the-test-suite-0123456789';

describeEachDatabase('Jobs admin API', (target) => {
  let socle: TestSocle;
  let alice: TestUser;
  let bruno: TestUser;
  let orgA: string;
  let orgB: string;
  let jobOfA: string;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [...createBuiltInModules(), createJobsFixtureModule().module],
      // No worker here: jobs stay queued, so what the API shows does not depend on timing.
      config: { jobsQueues: [] },
      settings: { identity: { operatorToken: OPERATOR_TOKEN } },
    });
    alice = await socle.newUser({ email: 'alice@jobs.test' });
    bruno = await socle.newUser({ email: 'bruno@jobs.test' });
    orgA = (await socle.newTenant({ owner: alice, name: 'Cabinet A' })).id;
    orgB = (await socle.newTenant({ owner: bruno, name: 'Cabinet B' })).id;
    jobOfA = (
      await socle.scope.run({ tenantId: orgA, userId: alice.userId }, () =>
        socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.effect', { label: 'report of A' }),
      )
    ).id;
    await socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.effect', { label: 'global' });
  });
  afterAll(() => socle?.dispose());

  it("lists and shows an organization's jobs to its admins", async () => {
    const list = await callAs(socle, alice, 'GET', '/org/jobs?state=created', { orgId: orgA });
    expect(list.statusCode, list.body).toBe(200);
    expect(list.json().jobs).toEqual([
      expect.objectContaining({
        id: jobOfA,
        name: 'jobs_fixture.effect',
        queue: 'default',
        state: 'created',
        tenantId: orgA,
        payload: { label: 'report of A' },
      }),
    ]);
    const one = await callAs(socle, alice, 'GET', `/org/jobs/${jobOfA}`, { orgId: orgA });
    expect(one.statusCode).toBe(200);
    expect(one.json()).toMatchObject({ id: jobOfA, attempts: 0, maxAttempts: 3 });
  });

  it("never shows, retries or cancels another organization's job", async () => {
    expect((await callAs(socle, bruno, 'GET', '/org/jobs', { orgId: orgB })).json().jobs).toEqual([]);
    for (const [method, url] of [
      ['GET', `/org/jobs/${jobOfA}`],
      ['POST', `/org/jobs/${jobOfA}/cancel`],
      ['POST', `/org/jobs/${jobOfA}/retry`],
    ] as const) {
      const response = await callAs(socle, bruno, method, url, { orgId: orgB });
      expect(response.statusCode, `${method} ${url}`).toBe(404);
      expect(response.json().code).toBe('jobs.not_found');
    }
    expect((await socle.jobs.get(jobOfA, null)).state).toBe('created');
  });

  it("counts an organization's jobs by queue and state for its admins, every job for the operator", async () => {
    const ofA = await callAs(socle, alice, 'GET', '/org/jobs/counts', { orgId: orgA });
    expect(ofA.statusCode, ofA.body).toBe(200);
    const created = (await socle.jobs.get(jobOfA, orgA)).createdAt;
    expect(ofA.json().queues).toEqual([
      { queue: 'high', created: 0, retry: 0, active: 0, failed: 0, oldestWaitingAt: null },
      { queue: 'default', created: 1, retry: 0, active: 0, failed: 0, oldestWaitingAt: created },
      { queue: 'low', created: 0, retry: 0, active: 0, failed: 0, oldestWaitingAt: null },
    ]);
    const ofB = await callAs(socle, bruno, 'GET', '/org/jobs/counts', { orgId: orgB });
    expect(ofB.json().queues.map((queue: { created: number }) => queue.created)).toEqual([0, 0, 0]);
    const every = await socle.app.inject({
      method: 'GET',
      url: '/operator/jobs/counts',
      headers: { 'x-operator-token': OPERATOR_TOKEN },
    });
    expect(every.statusCode, every.body).toBe(200);
    const listed = (await socle.jobs.list({ tenantId: null, state: 'created', queue: 'default', limit: 200 }))
      .length;
    expect(every.json().queues[1]).toMatchObject({ queue: 'default', created: listed });
    expect(listed).toBeGreaterThanOrEqual(2);
    const anonymous = await socle.app.inject({ method: 'GET', url: '/operator/jobs/counts' });
    expect(anonymous.statusCode).toBe(401);
  });

  it('cancels a queued job and runs it again on retry', async () => {
    const cancelled = await callAs(socle, alice, 'POST', `/org/jobs/${jobOfA}/cancel`, { orgId: orgA });
    expect(cancelled.statusCode, cancelled.body).toBe(200);
    expect(cancelled.json().state).toBe('cancelled');
    const again = await callAs(socle, alice, 'POST', `/org/jobs/${jobOfA}/cancel`, { orgId: orgA });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('jobs.not_cancellable');
    const retried = await callAs(socle, alice, 'POST', `/org/jobs/${jobOfA}/retry`, { orgId: orgA });
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json().state).toBe('created');
  });

  it('shows every job to the operator token only', async () => {
    const anonymous = await socle.app.inject({ method: 'GET', url: '/operator/jobs' });
    expect(anonymous.statusCode).toBe(401);
    const wrong = await socle.app.inject({
      method: 'GET',
      url: '/operator/jobs',
      headers: { 'x-operator-token': OPERATOR_TOKEN.replace('0', '1') },
    });
    expect(wrong.statusCode).toBe(401);
    const operator = await socle.app.inject({
      method: 'GET',
      url: '/operator/jobs',
      headers: { 'x-operator-token': OPERATOR_TOKEN },
    });
    expect(operator.statusCode, operator.body).toBe(200);
    const jobs: { name: string; payload: { label?: string } }[] = operator.json().jobs;
    // The fixture's jobs of every tenant, and global ones such as the sign-ups' verification mails.
    const labels = jobs.filter((job) => job.name.startsWith('jobs_fixture.')).map((job) => job.payload.label);
    expect(labels.sort()).toEqual(['global', 'report of A']);
    expect(jobs.filter((job) => job.name === 'mail.deliver')).toHaveLength(2);
    // A signed-in user's token is not an operator token.
    expect((await callAs(socle, alice, 'GET', '/operator/jobs')).statusCode).toBe(401);
  });

  it('purges effect markers older than finished jobs are kept', async () => {
    await sql`insert into jobs.effects (key, applied_at) values ('old', now() - interval '40 days'), ('fresh', now())`.execute(
      socle.db.kysely,
    );
    expect(await purgeEffectsOlderThan(socle.db, 31)).toBe(1);
    const { rows } = await sql<{ key: string }>`select key from jobs.effects order by key`.execute(
      socle.db.kysely,
    );
    expect(rows.map((row) => row.key)).toEqual(['fresh']);
  });

  // Last: it adds jobs the operator's list above would see.
  it('lists jobs oldest first, newest last, page after page', async () => {
    const orgC = (await socle.newTenant({ owner: alice, name: 'Cabinet C' })).id;
    for (let index = 0; index < 8; index++) {
      await socle.scope.run({ tenantId: orgC, userId: alice.userId }, () =>
        socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.effect', { label: `job ${index}` }),
      );
    }
    // Job ids are random: in id order, 8 jobs come in creation order once in 40,320 runs.
    const labels: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 4; page++) {
      const url = `/org/jobs?limit=3${after === undefined ? '' : `&after=${after}`}`;
      const jobs = (await callAs(socle, alice, 'GET', url, { orgId: orgC })).json().jobs as {
        id: string;
        payload: { label: string };
      }[];
      labels.push(...jobs.map((job) => job.payload.label));
      after = jobs.at(-1)?.id;
    }
    expect(labels).toEqual(Array.from({ length: 8 }, (_, index) => `job ${index}`));
  });
});
