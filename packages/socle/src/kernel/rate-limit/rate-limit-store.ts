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
