import { type Clock, systemClock } from '../clock/index.js';
import type { RateLimitResult, RateLimitRule, RateLimitStore } from './rate-limit-store.js';

/** Absorbs floating-point noise (`windowMs / limit` is rarely a whole number of milliseconds). */
const EPSILON = 1e-6;

/**
 * One GCRA step. `storedTat` is the instant the key's bucket is full again (undefined: full now).
 * Returns the outcome and the new instant to store, or undefined when nothing changes. The Lua
 * script of the Redis store is a line-by-line copy of this function: change both together.
 */
export function applyGcra(
  storedTat: number | undefined,
  now: number,
  rule: RateLimitRule,
  cost: number,
): { result: RateLimitResult; tat: number | undefined } {
  const interval = rule.windowMs / rule.limit;
  const tat = storedTat === undefined || storedTat < now ? now : storedTat;
  const newTat = tat + interval * cost;
  const allowAt = newTat - rule.windowMs;
  if (allowAt - now > EPSILON) {
    return {
      result: {
        allowed: false,
        remaining: Math.max(0, Math.floor((rule.windowMs - (tat - now)) / interval + EPSILON)),
        retryAfterMs: Math.ceil(allowAt - now - EPSILON),
        resetMs: Math.ceil(tat - now - EPSILON),
      },
      tat: undefined,
    };
  }
  return {
    result: {
      allowed: true,
      remaining: Math.max(0, Math.floor((rule.windowMs - (newTat - now)) / interval + EPSILON)),
      retryAfterMs: 0,
      resetMs: Math.ceil(newTat - now - EPSILON),
    },
    tat: cost > 0 ? newTat : undefined,
  };
}

export interface MemoryRateLimitStoreOptions {
  readonly clock?: Clock;
  /**
   * Most keys kept. Past it, the least recently updated key is dropped (its bucket is the most
   * likely to be full already). Bounds memory when an attacker rotates IPs or e-mail addresses.
   */
  readonly maxKeys?: number;
  /** How often keys whose bucket is full again are deleted; default 60 s. */
  readonly sweepIntervalMs?: number;
}

/** The in-process store, with what tests need to see that its memory stays bounded. */
export interface MemoryRateLimitStore extends RateLimitStore {
  /** Keys currently held. */
  readonly size: number;
  /** Deletes every key whose bucket is full again; returns how many. Runs on a timer too. */
  sweep(): number;
}

/**
 * Buckets in a `Map` of this process: the store when Socle runs embedded, and the fallback of the
 * Redis store during an outage. A key whose bucket has refilled carries no information, so the
 * periodic sweep deletes it; the `maxKeys` cap bounds memory between sweeps. The sweep timer is
 * unref'd: it never keeps the process alive.
 */
export function createMemoryRateLimitStore(options: MemoryRateLimitStoreOptions = {}): MemoryRateLimitStore {
  const clock = options.clock ?? systemClock;
  const maxKeys = options.maxKeys ?? 100_000;
  if (!Number.isSafeInteger(maxKeys) || maxKeys < 1)
    throw new RangeError(`maxKeys must be a positive integer, got ${maxKeys}`);
  // Insertion order is update order (entries are deleted and re-set on every update), so the
  // first key is the least recently updated one.
  const buckets = new Map<string, number>();

  const sweep = (): number => {
    const now = clock.now().getTime();
    let deleted = 0;
    for (const [key, tat] of buckets) {
      if (tat <= now) {
        buckets.delete(key);
        deleted += 1;
      }
    }
    return deleted;
  };
  const timer = setInterval(sweep, options.sweepIntervalMs ?? 60_000);
  timer.unref();

  return {
    get size() {
      return buckets.size;
    },
    sweep,
    async consume(key, rule, cost) {
      const { result, tat } = applyGcra(buckets.get(key), clock.now().getTime(), rule, cost);
      if (tat !== undefined) {
        buckets.delete(key);
        buckets.set(key, tat);
        if (buckets.size > maxKeys) {
          // O(1) on the request path; the sweep does the thorough cleaning.
          const oldest = buckets.keys().next();
          if (!oldest.done) buckets.delete(oldest.value);
        }
      }
      return result;
    },
    async reset(key) {
      buckets.delete(key);
    },
    async close() {
      clearInterval(timer);
      buckets.clear();
    },
  };
}
