import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  assertValidRule,
  type RateLimiter,
  type RateLimitResult,
  type RateLimitRule,
  rateLimitErrors,
} from './rate-limiter.js';

/** One limit applied to a route: what is counted (`key`) and how much of it is allowed. */
export interface HttpRateLimitRule extends RateLimitRule {
  /** Names the rule in keys and in the 429's `scope`: `ip`, `account`. lower_snake_case or kebab-case. */
  readonly name: string;
  /** What to count this request against; undefined skips the rule (e.g. no e-mail in the body). */
  readonly key: (request: FastifyRequest) => string | undefined;
  /**
   * Asked only when the rule is exceeded: resolving true lets this request through anyway (a
   * client the account knows, say, so a ceiling against a distributed attack does not lock its
   * owner out). Later rules still apply.
   */
  readonly exempt?: (request: FastifyRequest) => Promise<boolean>;
}

const RULE_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

/**
 * The limiter key of `value` under the rule `ruleName`. The value is hashed: keys stay short
 * whatever the client sends, and e-mail addresses never sit in Redis or in a memory dump. Use it
 * to `reset` a rule's bucket, e.g. the account's after a successful sign-in.
 */
export function rateLimitKey(ruleName: string, value: string): string {
  return `${ruleName}:${createHash('sha256').update(value).digest('base64url')}`;
}

/**
 * A Fastify `preHandler` that applies `rules` in order to every request, and refuses the request
 * with a 429 problem (`rate_limit.exceeded`, `Retry-After`, `scope` = the rule's name) at the
 * first rule exceeded. Later rules are then not consumed: a request refused by its IP's limit must
 * not spend the budget of the account it targets, or an attacker could lock the owner out.
 *
 * Allowed responses carry the `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
 * (seconds until the bucket is full) headers of the IETF draft, for the rule with the fewest units left.
 *
 * @example
 * const signInLimit = rateLimitPreHandler(limiter, [
 *   { name: 'ip', limit: 20, windowMs: 60_000, key: (request) => request.ip },
 *   { name: 'account', limit: 5, windowMs: 15 * 60_000, key: (request) => emailOf(request.body) },
 * ]);
 * app.post('/auth/sign-in', { preHandler: signInLimit, schema }, signIn);
 */
export function rateLimitPreHandler(
  limiter: RateLimiter,
  rules: readonly HttpRateLimitRule[],
): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const names = new Set<string>();
  for (const rule of rules) {
    if (!RULE_NAME.test(rule.name))
      throw new TypeError(`Rate limit rule name "${rule.name}" must be lower case letters, digits, _ or -`);
    if (names.has(rule.name)) throw new TypeError(`Rate limit rule "${rule.name}" is listed twice`);
    names.add(rule.name);
    assertValidRule(rule);
  }

  return async (request, reply) => {
    let tightest: { rule: HttpRateLimitRule; result: RateLimitResult } | undefined;
    for (const rule of rules) {
      const value = rule.key(request);
      if (value === undefined) continue;
      const result = await limiter.consume(rateLimitKey(rule.name, value), rule);
      if (!result.allowed) {
        if (rule.exempt !== undefined && (await rule.exempt(request))) continue;
        setRateLimitHeaders(reply, rule, result);
        throw rateLimitErrors.tooManyRequests(Math.max(1, Math.ceil(result.retryAfterMs / 1000)), rule.name);
      }
      if (tightest === undefined || result.remaining < tightest.result.remaining) tightest = { rule, result };
    }
    if (tightest !== undefined) setRateLimitHeaders(reply, tightest.rule, tightest.result);
  };
}

function setRateLimitHeaders(reply: FastifyReply, rule: RateLimitRule, result: RateLimitResult): void {
  reply.header('ratelimit-limit', String(rule.limit));
  reply.header('ratelimit-remaining', String(result.remaining));
  reply.header('ratelimit-reset', String(Math.ceil(result.resetMs / 1000)));
}
