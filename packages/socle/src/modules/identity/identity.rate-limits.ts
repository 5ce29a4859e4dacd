import type { FastifyRequest, preHandlerHookHandler } from 'fastify';
import type { HttpServer } from '../../kernel/http/index.js';
import {
  type HttpRateLimitRule,
  type RateLimiter,
  rateLimitPreHandler,
} from '../../kernel/rate-limit/index.js';
import { normalizeEmail } from './passwords.js';

const MINUTE = 60_000;

const byIp = (name: string, limit: number, windowMs: number): HttpRateLimitRule => ({
  name,
  limit,
  windowMs,
  key: (request) => request.ip,
});

/** The account a request is about: the email of its body, normalized, or the signed-in user. */
function accountOf(request: FastifyRequest): string | undefined {
  const email = (request.body as { email?: unknown } | undefined)?.email;
  if (typeof email === 'string') {
    try {
      return normalizeEmail(email);
    } catch {
      return undefined;
    }
  }
  return request.auth?.userId;
}

const byAccount = (name: string, limit: number, windowMs: number): HttpRateLimitRule => ({
  name,
  limit,
  windowMs,
  key: accountOf,
});

/**
 * Limits of the routes attackers aim at: guessing passwords (per IP and per account, so neither
 * a botnet on one account nor one IP across many accounts gets far), mass sign-ups, refresh,
 * second-factor guessing, and mail bombing through password reset and verification mails (per
 * account, so nobody's mailbox is flooded; per IP, so one address cannot mail many). The IP rule
 * is checked first, so a refused IP does not spend the targeted account's budget. Documented in
 * docs/identity.md.
 */
export const IDENTITY_RATE_LIMITS: Readonly<Record<string, readonly HttpRateLimitRule[]>> = {
  '/auth/sign-in': [byIp('sign-in-ip', 50, 5 * MINUTE), byAccount('sign-in-account', 10, 15 * MINUTE)],
  '/auth/sign-up': [byIp('sign-up-ip', 20, 10 * MINUTE)],
  '/auth/refresh': [byIp('refresh-ip', 120, MINUTE)],
  '/auth/sign-in/mfa': [byIp('mfa-ip', 30, 5 * MINUTE)],
  '/auth/mfa/totp/confirm': [byIp('mfa-ip', 30, 5 * MINUTE), byAccount('mfa-account', 10, 15 * MINUTE)],
  '/auth/mfa/totp/disable': [byIp('mfa-ip', 30, 5 * MINUTE), byAccount('mfa-account', 10, 15 * MINUTE)],
  '/auth/mfa/recovery-codes': [byIp('mfa-ip', 30, 5 * MINUTE), byAccount('mfa-account', 10, 15 * MINUTE)],
  '/auth/password-reset': [
    byIp('password-reset-ip', 10, 15 * MINUTE),
    byAccount('password-reset-account', 3, 15 * MINUTE),
  ],
  '/auth/password-reset/confirm': [byIp('password-reset-confirm-ip', 30, 5 * MINUTE)],
  '/auth/email-verification': [byAccount('email-verification-account', 5, 60 * MINUTE)],
  '/auth/email-verification/confirm': [byIp('email-verification-confirm-ip', 30, 5 * MINUTE)],
};

/** Attaches the limits above to their routes as they are registered (after body validation). */
export function installIdentityRateLimits(
  app: HttpServer,
  limiter: RateLimiter,
  limits: Readonly<Record<string, readonly HttpRateLimitRule[]>> = IDENTITY_RATE_LIMITS,
): void {
  const handlers = new Map(
    Object.entries(limits).map(([url, rules]) => [url, rateLimitPreHandler(limiter, rules)]),
  );
  app.addHook('onRoute', (route) => {
    const handler = handlers.get(route.url);
    if (handler === undefined || route.method !== 'POST') return;
    const existing =
      route.preHandler === undefined
        ? []
        : Array.isArray(route.preHandler)
          ? route.preHandler
          : [route.preHandler];
    route.preHandler = [handler as preHandlerHookHandler, ...existing];
  });
}
