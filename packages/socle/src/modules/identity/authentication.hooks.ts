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
  interface FastifyContextConfig {
    /**
     * The route's `Authorization` header is another issuer's credential, verified by the route
     * itself (a Pub/Sub push's OIDC token from Google): identity leaves it alone and the request
     * is anonymous to Socle.
     */
    foreignAuthorization?: boolean;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/;

/** Whether an access token's account and session still work (the users store). */
export interface CredentialsCheck {
  /** False once the session was revoked (sign-out, revocation, password reset) or the account erased. */
  credentialsValid(userId: string, sessionId: string): Promise<boolean>;
  /** True when they were found valid a moment ago, answered without waiting (optional). */
  validBefore?(userId: string, sessionId: string): boolean;
}

/** A {@link CredentialsCheck} that remembers valid answers, and forgets them when told of a revocation. */
export interface RememberedCredentials extends Required<CredentialsCheck> {
  /** This node stops trusting the session (or, given only a user, every session of theirs) at once. */
  forget(revoked: { readonly userId?: string; readonly sessionId?: string }): void;
}

/**
 * How long a node goes on trusting that an access token's session and account were not revoked,
 * without asking the database again. A sign-out or revocation holds at once on the node that
 * made it (it forgets what it remembered) and within this time on every other node; an erasure
 * waits this long after revoking (see identity.privacy.ts), so when it goes on no node accepts
 * the person's tokens any more.
 */
export const CREDENTIALS_CHECK_TTL_MS = 1000;
const CREDENTIALS_CACHE_SIZE = 10_000;

/**
 * `check`, remembering valid answers per session for `CREDENTIALS_CHECK_TTL_MS` of real
 * (monotonic) time: a client sends many requests with one token, and one primary-key read per
 * session and second costs nothing next to one per request. A revoked answer is never remembered.
 */
export function rememberValidCredentials(check: CredentialsCheck): RememberedCredentials {
  const remembered = new Map<string, { readonly userId: string; readonly until: number }>();
  const validBefore = (userId: string, sessionId: string) => {
    const entry = remembered.get(sessionId);
    return entry !== undefined && entry.userId === userId && entry.until > performance.now();
  };
  return {
    validBefore,
    async credentialsValid(userId, sessionId) {
      if (validBefore(userId, sessionId)) return true;
      const now = performance.now();
      const valid = await check.credentialsValid(userId, sessionId);
      if (valid) {
        if (remembered.size >= CREDENTIALS_CACHE_SIZE) remembered.clear();
        remembered.set(sessionId, { userId, until: now + CREDENTIALS_CHECK_TTL_MS });
      } else remembered.delete(sessionId);
      return valid;
    },
    forget({ userId, sessionId }) {
      if (sessionId !== undefined) remembered.delete(sessionId);
      else for (const [id, entry] of remembered) if (entry.userId === userId) remembered.delete(id);
    },
  };
}

/**
 * Authenticates every request that carries `Authorization: Bearer <access token>`: sets
 * `request.auth` and opens the request scope with its user (so transactions carry `app.user_id`). A
 * request without the header goes on anonymously; one with a bad or expired token gets a 401.
 *
 * A valid signature is not enough: the token's session must not have been revoked (sign-out,
 * revocation, password reset) nor the account erased, read from the database by primary key at
 * most once a second per session and node (`rememberValidCredentials`): a revocation holds at once
 * on the node that made it and within that second on every other (401 `auth.credentials_revoked`).
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
    if (header === undefined || request.routeOptions.config.foreignAuthorization === true) {
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
      if (credentials.validBefore?.(claims.userId, claims.sessionId)) {
        accept(claims);
        return;
      }
      credentials.credentialsValid(claims.userId, claims.sessionId).then(
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
