import type { Clock } from '../clock/index.js';
import { SocleError } from '../errors/index.js';
import { createSilentLogger, type Logger } from '../log/index.js';
import { createMemoryRateLimitStore } from './memory-store.js';
import { createRedisRateLimitStore, type RedisRateLimitStore } from './redis-store.js';

/**
 * How much a key may do: at most `limit` units at once, refilled at `limit` per `windowMs`.
 *
 * The algorithm is GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp):
 * each unit is worth `windowMs / limit` of time, and a key's only state is the instant its bucket
 * will be full again (its "theoretical arrival time"). We chose it over the alternatives because:
 * - it is fair at every instant: there are no window edges, so the 2×limit burst a fixed window
 *   lets through around its boundary cannot happen; after a burst of `limit`, the next unit comes
 *   `windowMs / limit` later;
 * - its state is one number per key, which keeps the memory store small, makes the Redis update a
 *   single `SET … PX` in one Lua script, and lets the key expire exactly when it holds no
 *   information any more (a full bucket is the same as no key);
 * - `retryAfterMs` is exact, not an estimate, so `Retry-After` tells a client the truth;
 * - a sliding-window log is exact too but stores every request (memory grows with `limit`), and
 *   the sliding-window counter is an approximation that assumes the previous window was uniform.
 */
export interface RateLimitRule {
  /** Units allowed in a burst, and refilled per `windowMs`. A positive integer. */
  readonly limit: number;
  /** Time for an empty bucket to refill completely, in milliseconds. */
  readonly windowMs: number;
}

/** The outcome of one `consume`. */
export interface RateLimitResult {
  readonly allowed: boolean;
  /** Units left after this call (unchanged when refused). */
  readonly remaining: number;
  /** 0 when allowed; otherwise how long until the same call would be allowed. */
  readonly retryAfterMs: number;
  /** How long until the bucket is full again (the key has no trace left). */
  readonly resetMs: number;
}

/**
 * A place where buckets live: this process's memory, or Redis shared by every node. Both run the
 * same GCRA arithmetic; the limiter checks rules and costs before calling a store.
 */
export interface RateLimitStore {
  consume(key: string, rule: RateLimitRule, cost: number): Promise<RateLimitResult>;
  reset(key: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Limits how often a key (an IP, an account, a route) may act. In process when embedded; in Redis
 * when `redisUrl` is set, so every node of a fleet counts against the same buckets.
 */
export interface RateLimiter {
  /** Where the buckets live. */
  readonly store: 'memory' | 'redis';
  /**
   * Takes `cost` units from `key`'s bucket if it holds that many; a refused call takes nothing.
   * Include the rule's name in `key` when one key is limited by several rules.
   */
  consume(key: string, rule: RateLimitRule, cost?: number): Promise<RateLimitResult>;
  /** Refills `key`'s bucket, e.g. the per-account budget after a successful sign-in. */
  reset(key: string): Promise<void>;
  /** Stops timers and closes the Redis connection. */
  close(): Promise<void>;
}

export interface CreateRateLimiterOptions {
  /** `redis://…` or `rediss://…` (config `redisUrl`); unset keeps buckets in this process. */
  readonly redisUrl?: string | undefined;
  /** Time of the memory store. The Redis store reads Redis's own clock (see `redis-store.ts`). */
  readonly clock?: Clock;
  /** Prefix of every Redis key; defaults to `socle:rate-limit:`. */
  readonly keyPrefix?: string;
  /** Receives the warning when Redis becomes unreachable and the notice when it is back. */
  readonly log?: Logger;
  /** Most keys the memory store keeps before evicting the least recently used; default 100 000. */
  readonly maxKeys?: number;
  /** How long a Redis call may take before the limiter falls back; default 500 ms. */
  readonly commandTimeoutMs?: number;
}

export const DEFAULT_KEY_PREFIX = 'socle:rate-limit:';

/** Errors of the rate limiter, rendered as problem+json by the HTTP layer. */
export const rateLimitErrors = {
  /** 429 with `Retry-After` in whole seconds; `scope` names the rule that refused (`ip`, `account`). */
  tooManyRequests: (retryAfterSeconds: number, scope: string) =>
    new SocleError(
      'rate_limit.exceeded',
      `Too many requests (${scope}); retry in ${retryAfterSeconds} ${retryAfterSeconds === 1 ? 'second' : 'seconds'}`,
      {
        status: 429,
        headers: { 'retry-after': String(retryAfterSeconds) },
        details: { retryAfterSeconds, scope },
      },
    ),
};

/**
 * Refuses a rule or cost that cannot mean anything, where it is written rather than on some later
 * request: a zero limit, a fractional one, or a cost above the limit (a call that could never pass).
 */
export function assertValidRule(rule: RateLimitRule, cost = 1): void {
  if (!Number.isSafeInteger(rule.limit) || rule.limit < 1)
    throw new RangeError(`Rate limit "limit" must be a positive integer, got ${rule.limit}`);
  if (!Number.isFinite(rule.windowMs) || rule.windowMs < 1)
    throw new RangeError(`Rate limit "windowMs" must be at least 1, got ${rule.windowMs}`);
  if (!Number.isSafeInteger(cost) || cost < 0 || cost > rule.limit)
    throw new RangeError(`Rate limit cost must be an integer from 0 to the limit ${rule.limit}, got ${cost}`);
}

/**
 * Creates the rate limiter: in process, or in Redis when `redisUrl` is set.
 *
 * When Redis is unreachable (refused, closed, or slower than `commandTimeoutMs`) the limiter fails
 * open **to a per-process bucket** and logs one warning per outage. Failing closed would turn a
 * Redis outage into a lockout of every user from sign-in; failing fully open would hand an
 * attacker unlimited guesses for as long as Redis is down. Per-process buckets keep the limits
 * (each node enforces them, so a fleet of N nodes lets at most N× through) and lock nobody out.
 * Redis is used again as soon as it answers.
 *
 * @example
 * const limiter = createRateLimiter({ redisUrl: config.redisUrl, clock, log });
 * const result = await limiter.consume(`sign-in:ip:${request.ip}`, { limit: 10, windowMs: 60_000 });
 * if (!result.allowed) throw rateLimitErrors.tooManyRequests(Math.ceil(result.retryAfterMs / 1000), 'ip');
 */
export function createRateLimiter(options: CreateRateLimiterOptions = {}): RateLimiter {
  const log = options.log ?? createSilentLogger();
  /** True from the first failed Redis call until the connection is ready again; one warning per outage. */
  let degraded = false;
  const local = createMemoryRateLimitStore({
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }),
  });
  const shared: RedisRateLimitStore | undefined =
    options.redisUrl === undefined
      ? undefined
      : createRedisRateLimitStore({
          url: options.redisUrl,
          keyPrefix: options.keyPrefix ?? DEFAULT_KEY_PREFIX,
          commandTimeoutMs: options.commandTimeoutMs ?? 500,
          onAvailable: () => {
            if (degraded) log.info('Redis is reachable again; rate limits are shared across nodes');
            degraded = false;
          },
        });

  const fallBack = (error: unknown) => {
    if (degraded) return;
    degraded = true;
    // The message names host and port at most, never the URL (it may carry a password).
    log.warn(
      { err: error instanceof Error ? { message: error.message, name: error.name } : String(error) },
      'Redis is unreachable; rate limits fall back to this process until it answers again',
    );
  };

  return {
    store: shared === undefined ? 'memory' : 'redis',
    async consume(key, rule, cost = 1) {
      assertValidRule(rule, cost);
      if (shared !== undefined) {
        if (shared.available()) {
          try {
            return await shared.consume(key, rule, cost);
          } catch (error) {
            fallBack(error);
          }
        } else {
          fallBack(shared.lastError() ?? new Error('Redis connection is not ready'));
        }
      }
      return local.consume(key, rule, cost);
    },
    async reset(key) {
      await local.reset(key);
      if (shared === undefined || !shared.available()) return;
      try {
        await shared.reset(key);
      } catch (error) {
        fallBack(error);
      }
    },
    async close() {
      await local.close();
      await shared?.close();
    },
  };
}
