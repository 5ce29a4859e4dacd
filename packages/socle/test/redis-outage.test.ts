import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Config,
  createIdentityModule,
  createLogger,
  createMailModule,
  createRealtimeModule,
  createTenancyModule,
  defineModule,
} from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { type DisposableRedis, startDisposableRedis } from './support/disposable-redis.js';
import { databaseTargets } from './support/each-database.js';
import { pusherServer, testRealtimeApp } from './support/realtime-clients.js';

// What is under test is the Redis side; the embedded database keeps each node light.
const pglite = databaseTargets.find((target) => target.dialect === 'pglite');
if (pglite === undefined) throw new Error('No PGlite test target');

/** Longer than any configured timeout: a call still pending then waited for the outage. */
const BOUND_MS = 10_000;

interface LogLine {
  readonly level: number;
  readonly msg: string;
}

/** A route limited by the kernel's rate limiter, like sign-in is. */
const limitedModule = defineModule({
  name: 'limited_probe',
  routes(app, context) {
    app.get('/limited', async (request) => {
      const result = await context.rateLimiter.consume(`probe:${request.ip}`, {
        limit: 1000,
        windowMs: 60_000,
      });
      return { allowed: result.allowed };
    });
  },
});

function startNode(
  redisUrl: string,
  app: ReturnType<typeof testRealtimeApp>,
  config: Partial<Config>,
  lines?: LogLine[],
) {
  return createTestSocle(pglite as NonNullable<typeof pglite>, {
    modules: [
      createIdentityModule({ rateLimits: false }),
      createMailModule(),
      createTenancyModule(),
      createRealtimeModule(),
      limitedModule,
    ],
    ...(lines === undefined
      ? {}
      : {
          log: createLogger(
            { logLevel: 'info', logFormat: 'json' },
            { write: (line: string) => lines.push(JSON.parse(line) as LogLine) },
          ),
        }),
    config: { redisUrl, ...config },
    settings: { realtime: app },
  });
}

/** Settles `work` or says it was still pending after BOUND_MS. */
async function withinBound<T>(work: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([work, sleep(BOUND_MS).then(() => 'pending' as const)]);
}

describe('realtime and rate limits while Redis is down or frozen (private redis-server)', () => {
  let redis: DisposableRedis;
  let socle: TestSocle;
  let baseUrl: string;
  const app = testRealtimeApp();
  const lines: LogLine[] = [];

  beforeAll(async () => {
    redis = await startDisposableRedis();
    socle = await startNode(redis.url, app, { redisCommandTimeoutMs: 1000 }, lines);
    baseUrl = await socle.listen();
  }, 60_000);
  afterAll(async () => {
    await socle?.dispose();
    await redis?.destroy();
  }, 60_000);

  /** Status and problem code of the two realtime HTTP API calls that need Redis. */
  const realtimeCalls = async () => {
    const server = pusherServer(baseUrl, app);
    const answer = async (call: Promise<Response>) => {
      try {
        const response = await call;
        return { status: response.status, code: undefined, retryAfter: undefined };
      } catch (error) {
        const { status, body } = error as { status?: number; body?: string };
        const problem = body === undefined ? {} : (JSON.parse(body) as { code?: string });
        return { status: status ?? 0, code: problem.code };
      }
    };
    return Promise.all([
      answer(server.trigger('outage-room', 'ping', { at: 1 }) as unknown as Promise<Response>),
      answer(server.get({ path: '/channels' }) as unknown as Promise<Response>),
    ]);
  };
  const waitForRealtime = async () => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const answers = await realtimeCalls();
      if (answers.every((answer) => answer.status === 200)) return answers;
      await sleep(100);
    }
    return realtimeCalls();
  };
  const limitedRequests = async (count: number) => {
    const statuses: number[] = [];
    for (let index = 0; index < count; index++) {
      statuses.push((await socle.app.inject({ method: 'GET', url: '/limited' })).statusCode);
    }
    return statuses;
  };

  it('answers 503 redis.unavailable at once while Redis is down, reports it in /readyz, logs it once, and recovers', async () => {
    expect((await realtimeCalls()).map((answer) => answer.status)).toEqual([200, 200]);
    expect((await socle.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    const before = lines.length;

    await redis.kill();
    const answers = await withinBound(realtimeCalls());
    expect(answers, 'the realtime API waited for Redis').not.toBe('pending');
    if (answers === 'pending') return;
    expect(answers).toEqual([
      { status: 503, code: 'redis.unavailable' },
      { status: 503, code: 'redis.unavailable' },
    ]);
    const ready = await socle.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ failing: ['redis'] });
    // Rate limits fail open to this process: nobody is locked out.
    expect(await limitedRequests(10)).toEqual(Array(10).fill(200));
    // Past a realtime heartbeat (every 5 s), which fails too: still the one line.
    await sleep(5500);
    expect(
      lines
        .slice(before)
        .filter((line) => line.level >= 40)
        .map((line) => line.msg),
    ).toEqual([expect.stringMatching(/^Redis unreachable/)]);

    await redis.start();
    expect((await waitForRealtime()).map((answer) => answer.status)).toEqual([200, 200]);
    expect((await socle.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect(lines.slice(before).filter((line) => /^Redis reachable again/.test(line.msg))).toHaveLength(1);
  }, 60_000);

  it('does not make each request wait for a frozen Redis (SIGSTOP), and recovers after SIGCONT', async () => {
    expect((await waitForRealtime()).map((answer) => answer.status)).toEqual([200, 200]);
    redis.freeze();
    try {
      // 20 requests each waiting for the 1 s command timeout would take 20 s.
      const statuses = await Promise.race([limitedRequests(20), sleep(5000).then(() => 'pending' as const)]);
      expect(statuses, 'rate-limited requests each waited for the frozen Redis').not.toBe('pending');
      expect(statuses).toEqual(Array(20).fill(200));
      const answers = await withinBound(realtimeCalls());
      expect(answers, 'the realtime API waited for the frozen Redis').not.toBe('pending');
      if (answers === 'pending') return;
      expect(answers.map((answer) => answer.status)).toEqual([503, 503]);
      expect((await socle.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    } finally {
      redis.thaw();
    }
    expect((await waitForRealtime()).map((answer) => answer.status)).toEqual([200, 200]);
  }, 60_000);
});

describe('deployments sharing one Redis (REDIS_NAMESPACE)', () => {
  let redis: DisposableRedis;
  let staging: TestSocle;
  let production: TestSocle;
  let direct: Redis;

  beforeAll(async () => {
    redis = await startDisposableRedis();
    direct = new Redis(redis.url);
    [staging, production] = await Promise.all([
      startNode(redis.url, testRealtimeApp(), { redisNamespace: 'staging' }),
      startNode(redis.url, testRealtimeApp(), { redisNamespace: 'production' }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await staging?.dispose();
    await production?.dispose();
    direct?.disconnect();
    await redis?.destroy();
  }, 60_000);

  it('keeps realtime nodes, rate-limit buckets and bus channels apart, and writes no key outside the namespaces', async () => {
    let stagingNodes: string[] = [];
    let productionNodes: string[] = [];
    for (
      let attempt = 0;
      attempt < 50 && (stagingNodes.length === 0 || productionNodes.length === 0);
      attempt++
    ) {
      await sleep(50);
      stagingNodes = await direct.zrange('staging:rt:nodes', '0', '-1');
      productionNodes = await direct.zrange('production:rt:nodes', '0', '-1');
    }
    expect(stagingNodes).toHaveLength(1);
    expect(productionNodes).toHaveLength(1);
    expect(stagingNodes[0]).not.toBe(productionNodes[0]);

    const rule = { limit: 1, windowMs: 60_000 };
    expect((await staging.context.rateLimiter.consume('sign-in:ip:10.0.0.1', rule)).allowed).toBe(true);
    expect((await production.context.rateLimiter.consume('sign-in:ip:10.0.0.1', rule)).allowed).toBe(true);
    expect((await staging.context.rateLimiter.consume('sign-in:ip:10.0.0.1', rule)).allowed).toBe(false);

    const heardByProduction: string[] = [];
    const heardByStaging: string[] = [];
    await production.context.bus.subscribe('shared-name', (message) => heardByProduction.push(message));
    await staging.context.bus.subscribe('shared-name', (message) => heardByStaging.push(message));
    await staging.context.bus.publish('shared-name', 'from staging');
    for (let attempt = 0; attempt < 50 && heardByStaging.length === 0; attempt++) await sleep(20);
    expect(heardByStaging).toEqual(['from staging']);
    expect(heardByProduction).toEqual([]);

    const keys = await direct.keys('*');
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((key) => !/^(staging|production):/.test(key))).toEqual([]);
    const channels = await direct.pubsub('CHANNELS', '*');
    expect((channels as string[]).filter((channel) => !/^(staging|production):/.test(channel))).toEqual([]);
  }, 60_000);
});
