import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { HttpServer } from '../../kernel/index.js';
import { type RateLimiter, rateLimitErrors, rateLimitKey } from '../../kernel/index.js';
import type { AccountService, IdentityCredentials } from './accounts.service.js';
import { requireUser } from './authentication.hooks.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Makes the signed-in user prove it is them again before a sensitive action: the password,
     * and a TOTP or recovery code when two-factor authentication is on. Throws a 4xx problem
     * (`auth.wrong_password`, `auth.mfa_code_required`, `auth.invalid_mfa_code`, 429) otherwise.
     * Installed by the identity module; any module's route can call it.
     */
    confirmIdentity(credentials: IdentityCredentials): Promise<void>;
  }
}

/** The body of a route that asks for re-authentication (spread it into the route's own body). */
export const ReauthenticationFields = {
  password: Type.String({ minLength: 1, maxLength: 1024, description: 'The account password' }),
  code: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'A TOTP code or a recovery code; required when two-factor authentication is on',
    }),
  ),
};

/** Password guesses through re-authentication are limited per account like sign-ins. */
const REAUTHENTICATION_RULE = { name: 'reauthentication-account', limit: 10, windowMs: 15 * 60_000 };

export function installReauthentication(
  app: HttpServer,
  accounts: Pick<AccountService, 'confirmIdentity'>,
  limiter: RateLimiter | undefined,
): void {
  app.decorateRequest(
    'confirmIdentity',
    async function confirmIdentity(this: FastifyRequest, credentials: IdentityCredentials): Promise<void> {
      const { userId } = requireUser(this);
      if (limiter !== undefined) {
        const result = await limiter.consume(
          rateLimitKey(REAUTHENTICATION_RULE.name, userId),
          REAUTHENTICATION_RULE,
        );
        if (!result.allowed)
          throw rateLimitErrors.tooManyRequests(
            Math.max(1, Math.ceil(result.retryAfterMs / 1000)),
            REAUTHENTICATION_RULE.name,
          );
      }
      await accounts.confirmIdentity(userId, credentials);
    },
  );
}
