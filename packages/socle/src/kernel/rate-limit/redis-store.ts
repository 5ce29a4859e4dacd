import type { BoundedRedis } from '../redis/index.js';
import type { RateLimitResult, RateLimitStore } from './rate-limit-store.js';

/**
 * GCRA in one script, so read-decide-write is atomic across every node: two nodes can never both
 * take the last unit. It is a copy of `applyGcra` in `memory-store.ts`.
 *
 * Time is Redis's own (`TIME`), not the caller's: nodes with skewed clocks then agree on every
 * bucket, and a node whose clock jumps cannot refill or drain buckets for everyone. Redis ≥ 5
 * replicates a script's effects, not the script, so reading `TIME` before writing is allowed.
 *
 * KEYS[1] the bucket; ARGV[1] window in ms; ARGV[2] limit; ARGV[3] cost.
 * Returns { allowed (0|1), remaining, retryAfterMs, resetMs }.
 */
const GCRA_SCRIPT = `
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local epsilon = 1e-6
local interval = window / limit
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local value = tonumber(stored)
  if value and value > now then tat = value end
end
local newTat = tat + interval * cost
local allowAt = newTat - window
if allowAt - now > epsilon then
  local remaining = math.max(0, math.floor((window - (tat - now)) / interval + epsilon))
  return { 0, remaining, math.ceil(allowAt - now - epsilon), math.ceil(tat - now - epsilon) }
end
local resetMs = math.ceil(newTat - now - epsilon)
if cost > 0 then
  -- The key expires when the bucket is full again: from then on it holds no information.
  redis.call('SET', KEYS[1], string.format('%.3f', newTat), 'PX', math.max(1, resetMs))
end
local remaining = math.max(0, math.floor((window - (newTat - now)) / interval + epsilon))
return { 1, remaining, 0, resetMs }
`;

type GcraReply = [allowed: number, remaining: number, retryAfterMs: number, resetMs: number];

/** The client once `defineCommand` added the script (sent by EVALSHA, by EVAL after a NOSCRIPT). */
type RateLimitRedis = BoundedRedis & {
  socleRateLimitConsume(key: string, windowMs: number, limit: number, cost: number): Promise<GcraReply>;
};

export interface RedisRateLimitStoreOptions {
  /** A connection from the process's `RedisConnections`: bounded, failing fast while Redis is down. */
  readonly client: BoundedRedis;
  /** Prepended to every key, so that tests and several deployments can share one Redis. */
  readonly keyPrefix: string;
}

/** The Redis store, with what the limiter needs to decide when to fall back. */
export interface RedisRateLimitStore extends RateLimitStore {
  /**
   * False while the connection is down or Redis did not answer in time, until it is ready again or
   * answers a probe: callers then fall back at once instead of each waiting for a timeout.
   */
  available(): boolean;
  /** The error that made the store unavailable, if any. */
  lastError(): Error | undefined;
}

/**
 * Buckets in Redis, shared by every node. Each call is one round trip running one Lua script; keys
 * expire as soon as their bucket is full again, so Redis holds only active keys.
 */
export function createRedisRateLimitStore(options: RedisRateLimitStoreOptions): RedisRateLimitStore {
  const client = options.client as RateLimitRedis;
  client.defineCommand('socleRateLimitConsume', { numberOfKeys: 1, lua: GCRA_SCRIPT });
  return {
    available: () => client.available(),
    lastError: () => client.lastError(),
    async consume(key, rule, cost): Promise<RateLimitResult> {
      const [allowed, remaining, retryAfterMs, resetMs] = await client.socleRateLimitConsume(
        options.keyPrefix + key,
        rule.windowMs,
        rule.limit,
        cost,
      );
      return { allowed: allowed === 1, remaining, retryAfterMs, resetMs };
    },
    async reset(key) {
      await client.del(options.keyPrefix + key);
    },
    async close() {
      if (client.status === 'ready') await client.quit().catch(() => client.disconnect());
      else client.disconnect();
    },
  };
}
