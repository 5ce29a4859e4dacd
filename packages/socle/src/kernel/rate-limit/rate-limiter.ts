import type { Clock } from '../clock/index.js';
import { SocleError } from '../errors/index.js';
import { createSilentLogger, type Logger } from '../log/index.js';
import {
  createRedisConnections,
  DEFAULT_REDIS_NAMESPACE,
  isRedisUnavailable,
  type RedisConnections,
} from '../redis/index.js';
import { createMemoryRateLimitStore } from './memory-store.js';
import type { RateLimitResult, RateLimitRule } from './rate-limit-store.js';
import { createRedisRateLimitStore, type RedisRateLimitStore } from './redis-store.js';

export type { RateLimitResult, RateLimitRule, RateLimitStore } from './rate-limit-store.js';

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
  /** The process's Redis connections (its namespace prefixes the keys); unset with no `redisUrl`: in process. */
  readonly redis?: RedisConnections | undefined;
  /** `redis://…` or `rediss://…`: opens connections of its own (tests, standalone use). */
  readonly redisUrl?: string | undefined;
  /** Time of the memory store. The Redis store reads Redis's own clock (see `redis-store.ts`). */
  readonly clock?: Clock;
  /** Prefix of every Redis key; defaults to `<namespace>:rate-limit:` (`socle:rate-limit:`). */
  readonly keyPrefix?: string;
  /** Receives the warning when Redis becomes unreachable and the notice when it is back. */
  readonly log?: Logger;
  /** Most keys the memory store keeps before evicting the least recently used; default 100 000. */
  readonly maxKeys?: number;
  /** With `redisUrl`: how long a Redis call may take before the limiter falls back; default 500 ms. */
  readonly commandTimeoutMs?: number;
}

export const DEFAULT_KEY_PREFIX = `${DEFAULT_REDIS_NAMESPACE}:rate-limit:`;

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
 * Creates the rate limiter: in process, or in Redis when `redis` (or `redisUrl`) is given.
 *
 * When Redis is unreachable (refused, closed, or slower than its command timeout) the limiter fails
 * open **to a per-process bucket**; the Redis connections log the outage once. While Redis is
 * known down no call is attempted, so requests pay no timeout (one call, the first, does).
 * Failing closed would turn a
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
  const local = createMemoryRateLimitStore({
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.maxKeys === undefined ? {} : { maxKeys: options.maxKeys }),
  });
  // Connections of its own when given a URL only; their outage is logged once, as the process's are.
  const ownConnections =
    options.redis === undefined && options.redisUrl !== undefined
      ? createRedisConnections({
          url: options.redisUrl,
          commandTimeoutMs: options.commandTimeoutMs ?? 500,
          log,
          consequence: 'rate limits fall back to this process',
        })
      : undefined;
  const connections = options.redis ?? ownConnections;
  const shared: RedisRateLimitStore | undefined =
    connections === undefined
      ? undefined
      : createRedisRateLimitStore({
          client: connections.open(),
          keyPrefix: options.keyPrefix ?? connections.prefix('rate-limit'),
        });

  return {
    store: shared === undefined ? 'memory' : 'redis',
    async consume(key, rule, cost = 1) {
      assertValidRule(rule, cost);
      // While Redis is known down (see BoundedRedis) this costs nothing: no call, no timeout.
      if (shared?.available()) {
        try {
          return await shared.consume(key, rule, cost);
        } catch (error) {
          if (!isRedisUnavailable(error)) throw error;
        }
      }
      return local.consume(key, rule, cost);
    },
    async reset(key) {
      await local.reset(key);
      if (!shared?.available()) return;
      await shared.reset(key).catch(() => undefined);
    },
    async close() {
      await local.close();
      await shared?.close();
      await ownConnections?.close();
    },
  };
}
