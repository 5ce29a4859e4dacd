import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { redisUnavailable, testRedisUrl } from '../../testing/test-redis.js';
import { createManualClock } from '../clock/index.js';
import { loadConfig } from '../config/index.js';
import { isSocleError, PROBLEM_CONTENT_TYPE } from '../errors/index.js';
import { installErrorHandling } from '../http/error-handling.js';
import { createLogger } from '../log/index.js';
import {
  type CreateRateLimiterOptions,
  createMemoryRateLimitStore,
  createRateLimiter,
  type RateLimiter,
  type RateLimitResult,
  type RateLimitRule,
  rateLimitKey,
  rateLimitPreHandler,
} from './index.js';

/** Every key of this run starts with it; removed in afterAll. */
const runPrefix = `socle-test:rate-limit:${Date.now().toString(36)}-${randomBytes(4).toString('hex')}:`;

async function deleteRunKeys(): Promise<void> {
  if (redisUnavailable !== undefined) return;
  const client = new Redis(testRedisUrl, { maxRetriesPerRequest: 0 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${runPrefix}*`, 'COUNT', 500);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    await client.quit();
  }
}
afterAll(deleteRunKeys);

// --- One behavioural suite, run against each store.

interface StoreHarness {
  /** Makes a limiter on this store; closed after the test. */
  create(options?: CreateRateLimiterOptions): RateLimiter;
  /** Lets time pass: moves the manual clock (memory) or waits for real (Redis). */
  advance(milliseconds: number): Promise<void>;
  /** Memory time is exact; Redis time runs on while the test runs, so waits add this margin. */
  readonly marginMs: number;
}

interface StoreTarget {
  readonly store: 'memory' | 'redis';
  readonly skipReason: string | undefined;
  setUp(): StoreHarness;
}

const targets: StoreTarget[] = [
  {
    store: 'memory',
    skipReason: undefined,
    setUp() {
      const clock = createManualClock();
      return {
        create: (options = {}) => createRateLimiter({ clock, ...options }),
        advance: async (milliseconds) => clock.advance(milliseconds),
        marginMs: 0,
      };
    },
  },
  {
    store: 'redis',
    skipReason: redisUnavailable === undefined ? undefined : `Redis tests skipped: ${redisUnavailable}`,
    setUp: () => ({
      create: (options = {}) =>
        createRateLimiter({ redisUrl: testRedisUrl, keyPrefix: runPrefix, ...options }),
      advance: (milliseconds) => sleep(milliseconds),
      marginMs: 30,
    }),
  },
];

function uniqueKey(label: string): string {
  return `${label}:${randomBytes(6).toString('hex')}`;
}

async function consumeTimes(
  limiter: RateLimiter,
  key: string,
  rule: RateLimitRule,
  times: number,
): Promise<RateLimitResult[]> {
  const results: RateLimitResult[] = [];
  for (let index = 0; index < times; index += 1) results.push(await limiter.consume(key, rule));
  return results;
}

for (const target of targets) {
  const title =
    target.skipReason === undefined
      ? `rate limiter [${target.store}]`
      : `rate limiter [${target.store}: ${target.skipReason}]`;
  describe.skipIf(target.skipReason !== undefined)(title, () => {
    let harness: StoreHarness;
    const opened: RateLimiter[] = [];
    const create = (options?: CreateRateLimiterOptions) => {
      const limiter = harness.create(options);
      opened.push(limiter);
      return limiter;
    };
    beforeEach(() => {
      harness = target.setUp();
    });
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((limiter) => limiter.close()));
    });

    it(`keeps its buckets in ${target.store}`, () => {
      expect(create().store).toBe(target.store);
    });

    it('allows `limit` calls, then refuses with the time until the next unit', async () => {
      const limiter = create();
      const key = uniqueKey('limit');
      // 3 per 300 ms: one unit every 100 ms.
      const rule = { limit: 3, windowMs: 300 };
      const allowed = await consumeTimes(limiter, key, rule, 3);
      expect(allowed.map((result) => [result.allowed, result.remaining])).toEqual([
        [true, 2],
        [true, 1],
        [true, 0],
      ]);
      const refused = await limiter.consume(key, rule);
      expect(refused.allowed).toBe(false);
      expect(refused.remaining).toBe(0);
      expect(refused.retryAfterMs).toBeGreaterThanOrEqual(100 - 3 * harness.marginMs);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(100);
      expect(refused.resetMs).toBeLessThanOrEqual(300);
      expect(refused.resetMs).toBeGreaterThanOrEqual(300 - 3 * harness.marginMs);
    });

    it('refills one unit per interval, and a refused call takes nothing', async () => {
      const limiter = create();
      const key = uniqueKey('refill');
      const rule = { limit: 3, windowMs: 300 };
      await consumeTimes(limiter, key, rule, 3);
      const refused = await consumeTimes(limiter, key, rule, 5);
      expect(refused.every((result) => !result.allowed)).toBe(true);

      await harness.advance(refused.at(-1)?.retryAfterMs ?? 0);
      if (harness.marginMs === 0) {
        // Exactly at retryAfter: one unit, no more.
        expect(await limiter.consume(key, rule)).toMatchObject({ allowed: true, remaining: 0 });
        expect((await limiter.consume(key, rule)).allowed).toBe(false);
      } else {
        await harness.advance(harness.marginMs);
        expect((await limiter.consume(key, rule)).allowed).toBe(true);
      }

      await harness.advance(300 + harness.marginMs);
      const again = await consumeTimes(limiter, key, rule, 4);
      expect(again.map((result) => result.allowed)).toEqual([true, true, true, false]);
    });

    it('never lets 2×limit through around a window edge', async () => {
      // A fixed window of 300 ms would allow 3 just before its edge and 3 more just after it;
      // the manual clock starts on a multiple of 300 ms, so t=280 and t=320 sit on either side.
      const limiter = create();
      const key = uniqueKey('edge');
      const rule = { limit: 3, windowMs: 300 };
      expect((await limiter.consume(key, rule)).allowed).toBe(true);
      await harness.advance(280);
      const emptiedFrom = performance.now();
      const beforeEdge = await consumeTimes(limiter, key, rule, 3);
      expect(beforeEdge.filter((result) => result.allowed)).toHaveLength(3);
      await harness.advance(40);
      const afterEdge = await consumeTimes(limiter, key, rule, 3);
      // The bucket was empty after the batch before the edge; since then it refills one unit per
      // 100 ms. Against Redis the waits are real, so a stalled machine may legitimately refill one;
      // a fixed window would hand out all 3 after a 40 ms gap.
      const elapsedMs = Math.max(40, performance.now() - emptiedFrom);
      const refilled = Math.floor(elapsedMs / (rule.windowMs / rule.limit));
      expect(afterEdge.filter((result) => result.allowed).length).toBeLessThanOrEqual(refilled);
    });

    it('takes `cost` units at once and waits for all of them when refusing', async () => {
      const limiter = create();
      const key = uniqueKey('cost');
      // 4 per 400 ms: one unit every 100 ms.
      const rule = { limit: 4, windowMs: 400 };
      expect(await limiter.consume(key, rule, 3)).toMatchObject({ allowed: true, remaining: 1 });
      const refused = await limiter.consume(key, rule, 3);
      expect(refused).toMatchObject({ allowed: false, remaining: 1 });
      // Two more units are needed: 200 ms.
      expect(refused.retryAfterMs).toBeGreaterThanOrEqual(200 - 3 * harness.marginMs);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(200);
      // The refused call took nothing: the last unit is still there.
      expect(await limiter.consume(key, rule, 1)).toMatchObject({ allowed: true, remaining: 0 });
      // Cost 0 reads the bucket without taking anything.
      expect(await limiter.consume(key, rule, 0)).toMatchObject({ allowed: true, remaining: 0 });
      await expect(limiter.consume(key, rule, 5)).rejects.toThrow(RangeError);
      await expect(limiter.consume(key, { limit: 0, windowMs: 1000 })).rejects.toThrow(RangeError);
    });

    it('keeps keys apart, and reset refills one key', async () => {
      const limiter = create();
      const [first, second] = [uniqueKey('first'), uniqueKey('second')];
      const rule = { limit: 2, windowMs: 60_000 };
      await consumeTimes(limiter, first, rule, 2);
      expect((await limiter.consume(first, rule)).allowed).toBe(false);
      expect(await limiter.consume(second, rule)).toMatchObject({ allowed: true, remaining: 1 });
      await limiter.reset(first);
      expect(await limiter.consume(first, rule)).toMatchObject({ allowed: true, remaining: 1 });
    });

    describe('through Fastify', () => {
      let app: FastifyInstance;
      let limiter: RateLimiter;
      const ip = { name: 'ip', limit: 4, windowMs: 60_000, key: (request: { ip: string }) => request.ip };
      const account = {
        name: 'account',
        limit: 2,
        windowMs: 60_000,
        key: (request: { body: unknown }) => {
          const email = (request.body as { email?: unknown } | undefined)?.email;
          return typeof email === 'string' ? email.trim().toLowerCase() : undefined;
        },
      };
      beforeEach(async () => {
        limiter = create();
        // The kernel's own error handling, so the 429 is rendered as every other problem is.
        app = Fastify();
        installErrorHandling(app, 1024);
        app.post('/sign-in', { preHandler: rateLimitPreHandler(limiter, [ip, account]) }, async () => ({
          ok: true,
        }));
        await app.ready();
      });
      afterEach(() => app.close());

      const signIn = (email: string, remoteAddress: string) =>
        app.inject({ method: 'POST', url: '/sign-in', payload: { email }, remoteAddress });

      it('answers 429 problem+json with Retry-After for the rule exceeded', async () => {
        const address = `203.0.113.${Math.floor(Math.random() * 250) + 1}`;
        const email = `${uniqueKey('user')}@example.com`;
        const first = await signIn(email, address);
        expect(first.statusCode).toBe(200);
        expect(first.headers['ratelimit-limit']).toBe('2');
        expect(first.headers['ratelimit-remaining']).toBe('1');
        expect(Number(first.headers['ratelimit-reset'])).toBeGreaterThan(0);

        // The same account, spelled differently, is the same bucket.
        expect((await signIn(`  ${email.toUpperCase()} `, address)).statusCode).toBe(200);
        const refused = await signIn(email, address);
        expect(refused.statusCode).toBe(429);
        expect(refused.headers['content-type']).toBe(PROBLEM_CONTENT_TYPE);
        const retryAfter = Number(refused.headers['retry-after']);
        expect(retryAfter).toBeGreaterThanOrEqual(29);
        expect(retryAfter).toBeLessThanOrEqual(30);
        expect(refused.headers['ratelimit-remaining']).toBe('0');
        expect(refused.json()).toMatchObject({
          status: 429,
          code: 'rate_limit.exceeded',
          scope: 'account',
          retryAfterSeconds: retryAfter,
        });

        // Another account from the same address passes until the address's own limit (4).
        const victim = `${uniqueKey('victim')}@example.com`;
        expect((await signIn(victim, address)).statusCode).toBe(200);
        const byAddress = await signIn(victim, address);
        expect(byAddress.statusCode).toBe(429);
        expect(byAddress.json()).toMatchObject({ code: 'rate_limit.exceeded', scope: 'ip' });
        // The request refused by its address did not spend the victim account's budget.
        const victimBucket = await limiter.consume(rateLimitKey('account', victim), account, 0);
        expect(victimBucket.remaining).toBe(1);
      });

      it('skips a rule whose key is missing', async () => {
        const response = await app.inject({
          method: 'POST',
          url: '/sign-in',
          payload: {},
          remoteAddress: '198.51.100.7',
        });
        expect(response.statusCode).toBe(200);
        expect(response.headers['ratelimit-limit']).toBe('4');
      });
    });
  });
}

describe.skipIf(redisUnavailable !== undefined)(
  redisUnavailable === undefined
    ? 'rate limiter [redis, several nodes]'
    : `rate limiter [redis, several nodes: Redis tests skipped: ${redisUnavailable}]`,
  () => {
    const opened: RateLimiter[] = [];
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((limiter) => limiter.close()));
    });
    const node = (options: CreateRateLimiterOptions = {}) => {
      const limiter = createRateLimiter({ redisUrl: testRedisUrl, keyPrefix: runPrefix, ...options });
      opened.push(limiter);
      return limiter;
    };

    it('counts on one bucket for every node, whatever their clocks say', async () => {
      const first = node();
      // Redis's TIME decides, so a node whose clock is years off agrees with the others.
      const skewed = node({ clock: createManualClock(new Date('2001-01-01T00:00:00Z')) });
      const key = uniqueKey('nodes');
      const rule = { limit: 3, windowMs: 60_000 };
      expect(await first.consume(key, rule)).toMatchObject({ allowed: true, remaining: 2 });
      expect(await skewed.consume(key, rule)).toMatchObject({ allowed: true, remaining: 1 });
      expect(await first.consume(key, rule)).toMatchObject({ allowed: true, remaining: 0 });
      expect((await skewed.consume(key, rule)).allowed).toBe(false);
      await skewed.reset(key);
      expect(await first.consume(key, rule)).toMatchObject({ allowed: true, remaining: 2 });
    });

    it('never gives the same unit to two nodes racing for it', async () => {
      const nodes = [node(), node(), node()];
      const key = uniqueKey('race');
      const rule = { limit: 10, windowMs: 60_000 };
      const results = await Promise.all(
        Array.from({ length: 30 }, (_, index) => nodes[index % nodes.length]?.consume(key, rule)),
      );
      expect(results.filter((result) => result?.allowed)).toHaveLength(10);
    });

    it('lets keys expire once their bucket is full again', async () => {
      const limiter = node();
      const key = uniqueKey('expiry');
      await limiter.consume(key, { limit: 4, windowMs: 1000 }, 2);
      const client = new Redis(testRedisUrl);
      try {
        const ttl = await client.pttl(runPrefix + key);
        expect(ttl).toBeGreaterThan(0);
        expect(ttl).toBeLessThanOrEqual(500);
      } finally {
        await client.quit();
      }
    });
  },
);

describe.skipIf(redisUnavailable !== undefined)(
  redisUnavailable === undefined
    ? 'rate limiter [redis outage]'
    : `rate limiter [redis outage: Redis tests skipped: ${redisUnavailable}]`,
  () => {
    /** A TCP relay to Redis that the test can cut and restore, to stage an outage. */
    async function startRelay() {
      const target = new URL(testRedisUrl);
      const sockets = new Set<Socket>();
      const server = createServer((client) => {
        const upstream = connect(Number(target.port || 6379), target.hostname);
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.on('close', () => sockets.delete(socket));
          socket.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no port');
      return {
        url: `redis://127.0.0.1:${address.port}`,
        cut: async () => {
          const closed = new Promise((resolve) => server.close(resolve));
          for (const socket of sockets) socket.destroy();
          await closed;
        },
        restore: () =>
          new Promise<void>((resolve) => server.listen(address.port, '127.0.0.1', () => resolve())),
        close: async () => {
          for (const socket of sockets) socket.destroy();
          if (server.listening) await new Promise((resolve) => server.close(resolve));
        },
      };
    }

    it('falls back while Redis is gone and shares buckets again once it is back', async () => {
      const relay = await startRelay();
      const lines: string[] = [];
      const log = createLogger(
        { logLevel: 'info', logFormat: 'json' },
        { write: (line) => lines.push(line) },
      );
      const limiter = createRateLimiter({ redisUrl: relay.url, keyPrefix: runPrefix, log });
      const direct = new Redis(testRedisUrl);
      const rule = { limit: 5, windowMs: 60_000 };
      try {
        const before = uniqueKey('before');
        expect((await limiter.consume(before, rule)).allowed).toBe(true);
        expect(await direct.exists(runPrefix + before)).toBe(1);

        await relay.cut();
        const during = uniqueKey('during');
        expect((await limiter.consume(during, rule)).allowed).toBe(true);
        expect(await direct.exists(runPrefix + during)).toBe(0);
        expect(lines.some((line) => line.includes('Redis unreachable'))).toBe(true);

        await relay.restore();
        await expect
          .poll(() => lines.some((line) => line.includes('Redis reachable again')), { timeout: 5000 })
          .toBe(true);
        const after = uniqueKey('after');
        expect((await limiter.consume(after, rule)).allowed).toBe(true);
        expect(await direct.exists(runPrefix + after)).toBe(1);
      } finally {
        await limiter.close();
        await direct.quit();
        await relay.close();
      }
    });
  },
);

describe('rate limiter when Redis is unreachable', () => {
  async function unusedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    await new Promise((resolve) => server.close(resolve));
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  }

  it('fails open to per-process limits and logs the outage once', async () => {
    const lines: string[] = [];
    const log = createLogger({ logLevel: 'info', logFormat: 'json' }, { write: (line) => lines.push(line) });
    const limiter = createRateLimiter({
      redisUrl: `redis://:secret-password@127.0.0.1:${await unusedPort()}`,
      keyPrefix: runPrefix,
      log,
      commandTimeoutMs: 200,
    });
    try {
      expect(limiter.store).toBe('redis');
      const rule = { limit: 2, windowMs: 60_000 };
      const results = await consumeTimes(limiter, 'outage', rule, 3);
      // Nobody is locked out by the outage, and the limit still holds on this node.
      expect(results.map((result) => result.allowed)).toEqual([true, true, false]);
      const warnings = lines.map((line) => JSON.parse(line) as { level: number; msg: string });
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({
        level: 50,
        msg: expect.stringMatching(/^Redis unreachable .*rate limits fall back to this process/),
      });
      expect(lines.join('\n')).not.toContain('secret-password');
      await limiter.reset('outage');
      expect((await limiter.consume('outage', rule)).allowed).toBe(true);
    } finally {
      await limiter.close();
    }
  });
});

describe('memory store', () => {
  it('keeps at most maxKeys keys, dropping the least recently used', async () => {
    const clock = createManualClock();
    const store = createMemoryRateLimitStore({ clock, maxKeys: 3 });
    const rule = { limit: 2, windowMs: 1000 };
    try {
      for (const key of ['a', 'b', 'c']) await store.consume(key, rule, 2);
      await store.consume('a', rule, 0); // reading is not using
      await store.consume('d', rule, 1);
      expect(store.size).toBe(3);
      // 'a' was the least recently updated: dropped, so its bucket is full again.
      expect(await store.consume('a', rule, 1)).toMatchObject({ allowed: true, remaining: 1 });
      expect((await store.consume('c', rule, 1)).allowed).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('sweeps keys whose bucket is full again', async () => {
    const clock = createManualClock();
    const store = createMemoryRateLimitStore({ clock });
    try {
      await store.consume('short', { limit: 1, windowMs: 100 }, 1);
      await store.consume('long', { limit: 1, windowMs: 10_000 }, 1);
      clock.advance(100);
      expect(store.sweep()).toBe(1);
      expect(store.size).toBe(1);
      clock.advance(9_900);
      expect(store.sweep()).toBe(1);
      expect(store.size).toBe(0);
    } finally {
      await store.close();
    }
  });
});

describe('REDIS_URL', () => {
  it('accepts redis:// and rediss:// URLs', () => {
    for (const url of ['redis://127.0.0.1:6379', 'rediss://:pw@cache.internal:6380/2']) {
      expect(loadConfig({ env: { REDIS_URL: url }, configFile: false }).redisUrl).toBe(url);
    }
    expect(loadConfig({ env: {}, configFile: false }).redisUrl).toBeUndefined();
  });

  it('refuses other URLs without echoing them', () => {
    try {
      loadConfig({ env: { REDIS_URL: 'http://user:hunter2@cache:6379' }, configFile: false });
      expect.unreachable();
    } catch (error) {
      expect(isSocleError(error) && error.code).toBe('config.invalid');
      expect((error as Error).message).toMatch(/REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/);
      expect((error as Error).message).not.toContain('hunter2');
    }
  });
});
