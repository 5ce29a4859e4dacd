import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock, Database } from '../../kernel/index.js';
import type { AccessTokens } from './access-tokens.service.js';
import type { IdentityTables, SessionRow } from './identity.tables.js';
import { openReplacement, sealReplacement } from './refresh-token-seal.js';
import { createSecretToken, hashSecretToken, parseSecretToken } from './secret-tokens.js';
import { sessionErrors } from './sessions.errors.js';
import type { SessionsStore } from './sessions.store.js';

const REFRESH_PREFIX = 'rt';

/** What a client receives when it signs in or refreshes. */
export interface IssuedTokens {
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly tokenType: 'Bearer';
  /** Seconds until the access token expires. */
  readonly expiresIn: number;
  readonly sessionId: string;
}

export interface SessionServiceOptions {
  /** Told of every revocation, so this node stops accepting the sessions' access tokens at once. */
  readonly onRevoked?: (revoked: { readonly userId?: string; readonly sessionId?: string }) => void;
  readonly db: Database<IdentityTables>;
  readonly store: SessionsStore;
  readonly accessTokens: AccessTokens;
  readonly clock: Clock;
  /** How long a session lives without signing in again. */
  readonly sessionTtlMs: number;
  /** How long after a refresh token was used it may be used again (concurrent tabs). */
  readonly reuseGraceMs: number;
}

/** Where a sign-in came from, kept with the session so the user can recognize it. */
export interface ClientInfo {
  readonly userAgent: string | null;
  readonly ip: string | null;
}

/**
 * Sessions: one per sign-in, each a family of refresh tokens. A refresh token works once: using
 * it returns a new one. Presenting a used token again within the grace window (two tabs refreshing
 * at once) returns the same replacement; after it, the session is revoked everywhere, since only
 * a stolen copy would come back that late.
 */
export function createSessionService(options: SessionServiceOptions) {
  const { db, accessTokens, clock } = options;
  // Every revocation goes through here: the store's, then this node forgets the sessions.
  const store: SessionsStore = {
    ...options.store,
    async revoke(target, ...rest) {
      const revoked = await options.store.revoke(target, ...rest);
      options.onRevoked?.(target);
      return revoked;
    },
  };

  async function tokensFor(userId: string, sessionId: string, refreshToken: string): Promise<IssuedTokens> {
    const access = await accessTokens.sign({ userId, sessionId });
    return {
      accessToken: access.token,
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: access.expiresIn,
      sessionId,
    };
  }

  return {
    /** Opens a session for a user who just proved who they are; runs in the caller's transaction. */
    async start(userId: string, client: ClientInfo, executor: Kysely<IdentityTables>): Promise<IssuedTokens> {
      const sessionId = randomUUID();
      const refresh = createSecretToken(REFRESH_PREFIX);
      await store.insertSession(
        {
          id: sessionId,
          userId,
          expiresAt: new Date(clock.now().getTime() + options.sessionTtlMs),
          ...client,
        },
        executor,
      );
      await store.insertRefreshToken({ hash: refresh.hash, sessionId, generation: 1 }, executor);
      return tokensFor(userId, sessionId, refresh.token);
    },

    /** Exchanges a refresh token for new tokens; see the rotation rules above. */
    async refresh(refreshToken: string): Promise<IssuedTokens> {
      if (parseSecretToken(refreshToken, REFRESH_PREFIX) === undefined)
        throw sessionErrors.refreshTokenInvalid();
      const hash = hashSecretToken(refreshToken);
      const outcome = await db.transaction(async (trx) => {
        const token = await store.lockRefreshToken(hash, trx);
        const now = clock.now();
        if (token === undefined || token.sessionRevokedAt !== null || token.sessionExpiresAt <= now) {
          return { kind: 'invalid' as const };
        }
        if (token.usedAt === null) {
          const next = createSecretToken(REFRESH_PREFIX);
          await store.insertRefreshToken(
            { hash: next.hash, sessionId: token.sessionId, generation: token.generation + 1 },
            trx,
          );
          await store.markRefreshTokenUsed(hash, now, sealReplacement(next.token, refreshToken), trx);
          await store.touchSession(token.sessionId, now, trx);
          return {
            kind: 'rotated' as const,
            userId: token.userId,
            sessionId: token.sessionId,
            refreshToken: next.token,
          };
        }
        const withinGrace = now.getTime() - token.usedAt.getTime() <= options.reuseGraceMs;
        const replacement =
          withinGrace && token.replacedBySealed !== null
            ? openReplacement(token.replacedBySealed, refreshToken)
            : undefined;
        if (replacement !== undefined) {
          return {
            kind: 'rotated' as const,
            userId: token.userId,
            sessionId: token.sessionId,
            refreshToken: replacement,
          };
        }
        await store.revoke({ sessionId: token.sessionId }, 'refresh token reused', now, trx);
        return { kind: 'reused' as const };
      });
      if (outcome.kind === 'invalid') throw sessionErrors.refreshTokenInvalid();
      if (outcome.kind === 'reused') throw sessionErrors.refreshTokenReused();
      return tokensFor(outcome.userId, outcome.sessionId, outcome.refreshToken);
    },

    async signOut(userId: string, sessionId: string): Promise<void> {
      await store.revoke({ sessionId, userId }, 'signed out', clock.now());
    },

    async signOutEverywhere(userId: string): Promise<number> {
      return store.revoke({ userId }, 'signed out everywhere', clock.now());
    },

    /**
     * Revokes every live session of a user in the caller's transaction (a password reset: whoever
     * knew the old password must be signed out), but `exceptSessionId` (the session of the user
     * who just turned 2FA on stays signed in); returns how many were revoked.
     */
    revokeAll(
      userId: string,
      reason: string,
      executor: Kysely<IdentityTables>,
      exceptSessionId?: string,
    ): Promise<number> {
      return store.revoke(
        exceptSessionId === undefined ? { userId } : { userId, exceptSessionId },
        reason,
        clock.now(),
        executor,
      );
    },

    list: (userId: string): Promise<SessionRow[]> => store.listActive(userId, clock.now()),

    async revoke(userId: string, sessionId: string, by: 'user' | 'operator' = 'user'): Promise<void> {
      const revoked = await store.revoke({ sessionId, userId }, `revoked by ${by}`, clock.now());
      if (revoked === 0) throw sessionErrors.sessionNotFound(sessionId);
    },
  };
}

export type SessionService = ReturnType<typeof createSessionService>;
