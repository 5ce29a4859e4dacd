import type { FastifyRequest } from 'fastify';
import type { HttpServer, ScopeAccess } from '../../kernel/index.js';
import type { AccessClaims, AccessTokens } from './access-tokens.service.js';
import { sessionErrors } from './sessions.errors.js';

/** Who made the request, as proven by its access token. */
export interface Authentication {
  readonly userId: string;
  readonly sessionId: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the identity module when the request carries a valid access token. */
    auth: Authentication | null;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/;

/** Whether an account's credentials still work (the users store). */
export interface CredentialsCheck {
  credentialsValid(userId: string): Promise<boolean>;
  /** True when they were found valid a moment ago, answered without waiting (optional). */
  validBefore?(userId: string): boolean;
}

/**
 * How long a node goes on trusting that an account's credentials were not revoked, without asking
 * the database again. An erasure waits this long after revoking them (see identity.privacy.ts):
 * when it goes on, no node accepts them any more.
 */
export const CREDENTIALS_CHECK_TTL_MS = 1000;
const CREDENTIALS_CACHE_SIZE = 10_000;

/**
 * `check`, remembering valid answers for `CREDENTIALS_CHECK_TTL_MS` of real (monotonic) time: a
 * client sends many requests with one token, and one primary-key read per user and second costs
 * nothing next to one per request. A revoked answer is never remembered.
 */
export function rememberValidCredentials(check: CredentialsCheck): CredentialsCheck {
  const validUntil = new Map<string, number>();
  const validBefore = (userId: string) => (validUntil.get(userId) ?? 0) > performance.now();
  return {
    validBefore,
    async credentialsValid(userId) {
      if (validBefore(userId)) return true;
      const now = performance.now();
      const valid = await check.credentialsValid(userId);
      if (valid) {
        if (validUntil.size >= CREDENTIALS_CACHE_SIZE) validUntil.clear();
        validUntil.set(userId, now + CREDENTIALS_CHECK_TTL_MS);
      } else validUntil.delete(userId);
      return valid;
    },
  };
}

/**
 * Authenticates every request that carries `Authorization: Bearer <access token>`: sets
 * `request.auth` and opens the request scope with its user (so transactions carry `app.user_id`). A
 * request without the header goes on anonymously; one with a bad or expired token gets a 401.
 *
 * A valid signature is not enough: the account must not have had its credentials revoked (an
 * erasure), read from the database by primary key at most once a second per user and node
 * (`rememberValidCredentials`), so a revocation holds on every node sharing the database once the
 * erasure has waited that second (401 `auth.credentials_revoked`).
 */
export function installAuthentication(
  app: HttpServer,
  accessTokens: AccessTokens,
  scope: ScopeAccess,
  credentials: CredentialsCheck,
): void {
  app.decorateRequest('auth', null);
  // Callback style, so the rest of the request (hooks, handler) runs inside the scope opened here.
  app.addHook('onRequest', (request, _reply, done) => {
    const header = request.headers.authorization;
    if (header === undefined) {
      done();
      return;
    }
    const token = BEARER.exec(header)?.[1];
    if (token === undefined) {
      done(sessionErrors.tokenInvalid());
      return;
    }
    const accept = (claims: AccessClaims) => {
      request.auth = { userId: claims.userId, sessionId: claims.sessionId };
      scope.run({ userId: claims.userId }, done);
    };
    const authenticate = (claims: AccessClaims) => {
      // A client reuses its token for many requests: the common case answers without waiting.
      if (credentials.validBefore?.(claims.userId)) {
        accept(claims);
        return;
      }
      credentials.credentialsValid(claims.userId).then(
        (valid) => (valid ? accept(claims) : done(sessionErrors.credentialsRevoked())),
        (error: Error) => done(error),
      );
    };
    let known: AccessClaims | undefined;
    try {
      known = accessTokens.verifiedBefore(token);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (known !== undefined) authenticate(known);
    else accessTokens.verify(token).then(authenticate, (error: Error) => done(error));
  });
}

/** The authenticated caller, or a 401 `auth.unauthenticated`. Use it in any module's routes. */
export function requireUser(request: FastifyRequest): Authentication {
  if (request.auth === null) throw sessionErrors.unauthenticated();
  return request.auth;
}
