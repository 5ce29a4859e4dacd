export { type HttpRateLimitRule, rateLimitKey, rateLimitPreHandler } from './http.js';
export {
  createMemoryRateLimitStore,
  type MemoryRateLimitStore,
  type MemoryRateLimitStoreOptions,
} from './memory-store.js';
export {
  assertValidRule,
  type CreateRateLimiterOptions,
  createRateLimiter,
  DEFAULT_KEY_PREFIX,
  type RateLimiter,
  type RateLimitResult,
  type RateLimitRule,
  type RateLimitStore,
  rateLimitErrors,
} from './rate-limiter.js';
