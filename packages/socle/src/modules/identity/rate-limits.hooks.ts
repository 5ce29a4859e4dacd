import type { FastifyRequest, preHandlerHookHandler } from 'fastify';
import type { HttpServer } from '../../kernel/index.js';
import { type HttpRateLimitRule, type RateLimiter, rateLimitPreHandler } from '../../kernel/index.js';
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

/** The account and the client's IP together: guesses from one address on one account. */
const byAccountAndIp = (name: string, limit: number, windowMs: number): HttpRateLimitRule => ({
  name,
  limit,
  windowMs,
  key: (request) => {
    const account = accountOf(request);
    return account === undefined ? undefined : `${account}\n${request.ip}`;
  },
});

/**
 * Whether `ip` is an address the account with this (normalized) `email` signed in from before, so
 * its owner is likely behind it.
 */
export type KnownSignInAddress = (email: string, ip: string) => Promise<boolean>;

/**
 * Limits of the routes attackers aim at: guessing passwords, mass sign-ups, refresh,
 * second-factor guessing, and mail bombing through password reset and verification mails (per
 * account, so nobody's mailbox is flooded; per IP, so one address cannot mail many). IP rules are
 * checked first, so a refused IP does not spend the targeted account's budget.
 *
 * Password guessing is limited per IP (one address across many accounts), per account and IP (one
 * address on one account: 10 per 15 minutes, which locks out that address only, never the owner
 * elsewhere) and by a ceiling per account (100 per 15 minutes, a campaign spread over many
 * addresses): past the ceiling only addresses the account signed in from before (`knownAddress`)
 * may still try, so a stranger cannot lock the owner out from home. Without `knownAddress` the
 * ceiling refuses every address. Documented in docs/identity.md.
 */
export function createIdentityRateLimits(
  knownAddress?: KnownSignInAddress,
): Readonly<Record<string, readonly HttpRateLimitRule[]>> {
  const signInCeiling: HttpRateLimitRule = {
    ...byAccount('sign-in-account', 100, 15 * MINUTE),
    ...(knownAddress === undefined
      ? {}
      : {
          exempt: (request: FastifyRequest) => {
            const account = accountOf(request);
            return account === undefined ? Promise.resolve(false) : knownAddress(account, request.ip);
          },
        }),
  };
  return {
    '/auth/sign-in': [
      byIp('sign-in-ip', 50, 5 * MINUTE),
      byAccountAndIp('sign-in-account-ip', 10, 15 * MINUTE),
      signInCeiling,
    ],
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
}

/**
 * The default limits (see `createIdentityRateLimits`), without the known-address exemption, which
 * needs the database: the identity module installs them with it.
 */
export const IDENTITY_RATE_LIMITS = createIdentityRateLimits();

/** Attaches the limits above to their routes as they are registered (after body validation). */
export function installIdentityRateLimits(
  app: HttpServer,
  limiter: RateLimiter,
  limits: Readonly<Record<string, readonly HttpRateLimitRule[]>>,
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
