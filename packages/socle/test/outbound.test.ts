import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { createLogger, PROBLEM_CONTENT_TYPE } from '../src/index.js';
import {
  createTestSocle,
  type FaultyProvider,
  startFaultyProvider,
  type TestSocle,
} from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { createOutboundApp } from './support/outbound-app.js';

describeEachDatabase('Outbound module: a route and jobs calling declared providers', (target) => {
  let socle: TestSocle;
  let video: FaultyProvider;
  let payments: FaultyProvider;
  let app: ReturnType<typeof createOutboundApp>;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    video = await startFaultyProvider();
    payments = await startFaultyProvider();
    app = createOutboundApp(
      { video: video.url, payments: payments.url },
      { breaker: { failureRate: 0.5, minimumCalls: 2, windowMs: 60_000, halfOpenAfterMs: 1000 } },
    );
    socle = await createTestSocle(target, {
      modules: app.modules,
      config: { jobsQueues: [] },
      log: createLogger(
        { logLevel: 'info', logFormat: 'json' },
        { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
      ),
    });
  });
  afterAll(async () => {
    await socle?.dispose();
    await video?.close();
    await payments?.close();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  beforeEach(() => {
    video.recover();
    payments.recover();
    lines.length = 0;
  });

  const createMeeting = (requestId: string) =>
    socle.app.inject({ method: 'POST', url: '/telehealth/meetings', headers: { 'x-request-id': requestId } });

  it('answers 502/503 problem+json naming the provider, with the inbound request id on the failed attempt', async () => {
    video.answer(() => ({ json: { id: 'm-1', join_url: 'https://video.example/j/1' } }));
    const created = await createMeeting('req-ok-1');
    expect(created.statusCode).toBe(200);
    expect(created.json()).toMatchObject({ id: 'm-1' });

    video.failAll({ status: 500 });
    const failed = await createMeeting('req-failing-1');
    expect(failed.statusCode).toBe(502);
    expect(failed.headers['content-type']).toContain(PROBLEM_CONTENT_TYPE);
    expect(failed.json()).toMatchObject({
      code: 'outbound.unavailable',
      provider: 'video',
      providerStatus: 500,
    });
    expect(lines.find((line) => line.msg === 'Outbound call failed')).toMatchObject({
      requestId: 'req-failing-1',
      provider: 'video',
      operation: 'meetings.create',
      attempt: 1,
    });

    // 1 success and 2 failures in the window: the circuit opens; calls fail fast with Retry-After.
    // The breaker reads Date.now(): frozen from here, it stays open however slow the machine is.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date());
    await createMeeting('req-failing-2');
    const open = await createMeeting('req-open');
    expect(open.statusCode).toBe(503);
    expect(open.headers['retry-after']).toBe('1');
    expect(open.json()).toMatchObject({ code: 'outbound.circuit_open', provider: 'video' });
    const metrics = await socle.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/socle_outbound_circuit_state\{provider="video"\} 2/);
    expect(metrics.body).toMatch(
      /socle_outbound_calls_total\{provider="video",operation="meetings.create",outcome="circuit_open"\} 1/,
    );
    // A down provider does not take the node out of the load balancer.
    expect((await socle.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);

    // While the circuit is open, a job is postponed until it may close instead of spending attempts.
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'telehealth.createMeeting', {});
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 0 });
    const postponed = await socle.jobs.get(id, null);
    expect(postponed.state).toBe('created');
    expect(Date.parse(postponed.startAfter)).toBeGreaterThan(Date.now());
    expect(lines.find((line) => line.msg === 'Job postponed; its attempts are untouched')).toMatchObject({
      jobId: id,
    });

    video.recover();
    // Time for the probe; the job itself is due on the database's clock, about a second from now.
    vi.setSystemTime(Date.now() + 1001);
    let outcome = { completed: 0, failed: 0 };
    for (let tries = 0; tries < 200 && outcome.completed === 0; tries++) {
      await sleep(100);
      outcome = await socle.jobs.runDueJobs();
    }
    expect(outcome).toEqual({ completed: 1, failed: 0 });
    expect((await socle.jobs.get(id, null)).state).toBe('completed');
    // Both runs were the job's first attempt; the probe closed the circuit.
    expect(app.attempts.filter((seen) => seen.job === 'telehealth.createMeeting')).toEqual([
      { job: 'telehealth.createMeeting', attempt: 1 },
      { job: 'telehealth.createMeeting', attempt: 1 },
    ]);
    expect((await createMeeting('req-after')).statusCode).toBe(200);
  });

  it('fails a job whose call failed after its in-request retries; the next attempt sends the same idempotency key', async () => {
    payments.failNext(2, { status: 502 });
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'telehealth.charge', {});
    expect(await socle.jobs.runDueJobs({ maxJobs: 1 })).toEqual({ completed: 0, failed: 1 });
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 0 });
    expect((await socle.jobs.get(id, null)).state).toBe('completed');
    const keys = payments.requests.map((request) => request.headers['idempotency-key']);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(
      app.attempts.filter((seen) => seen.job === 'telehealth.charge').map((seen) => seen.attempt),
    ).toEqual([1, 2]);
  });
});
