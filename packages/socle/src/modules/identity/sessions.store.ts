import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../kernel/index.js';
import type { IdentityTables, SessionRow } from './identity.tables.js';

type Executor = Kysely<IdentityTables>;

/** A refresh token row joined with its session, locked for the refresh that reads it. */
export interface LockedRefreshToken {
  readonly hash: string;
  readonly sessionId: string;
  readonly userId: string;
  readonly generation: number;
  readonly usedAt: Date | null;
  readonly replacedBySealed: string | null;
  readonly sessionExpiresAt: Date;
  readonly sessionRevokedAt: Date | null;
}

/** SQL of sessions and their refresh tokens. */
export function createSessionsStore(db: Database<IdentityTables>) {
  return {
    async insertSession(
      session: { id: string; userId: string; expiresAt: Date; userAgent: string | null; ip: string | null },
      executor: Executor,
    ): Promise<void> {
      await executor
        .insertInto('identity.sessions')
        .values({
          id: session.id,
          user_id: session.userId,
          expires_at: session.expiresAt,
          user_agent: session.userAgent,
          ip: session.ip,
          revoked_at: null,
          revoked_reason: null,
        })
        .execute();
    },

    async insertRefreshToken(
      token: { hash: string; sessionId: string; generation: number },
      executor: Executor,
    ): Promise<void> {
      await executor
        .insertInto('identity.refresh_tokens')
        .values({
          hash: token.hash,
          session_id: token.sessionId,
          generation: token.generation,
          used_at: null,
          replaced_by_sealed: null,
        })
        .execute();
    },

    /**
     * Reads a refresh token and its session, locking the token row until the transaction ends:
     * concurrent refreshes with the same token queue here, so exactly one rotates it.
     */
    async lockRefreshToken(
      hash: string,
      trx: Transaction<IdentityTables>,
    ): Promise<LockedRefreshToken | undefined> {
      const row = await trx
        .selectFrom('identity.refresh_tokens as token')
        .innerJoin('identity.sessions as session', 'session.id', 'token.session_id')
        .select([
          'token.hash',
          'token.session_id',
          'token.generation',
          'token.used_at',
          'token.replaced_by_sealed',
          'session.user_id',
          'session.expires_at',
          'session.revoked_at',
        ])
        .where('token.hash', '=', hash)
        .forUpdate('token')
        .executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        hash: row.hash,
        sessionId: row.session_id,
        userId: row.user_id,
        generation: row.generation,
        usedAt: row.used_at,
        replacedBySealed: row.replaced_by_sealed,
        sessionExpiresAt: row.expires_at,
        sessionRevokedAt: row.revoked_at,
      };
    },

    async markRefreshTokenUsed(
      hash: string,
      usedAt: Date,
      replacedBySealed: string,
      trx: Transaction<IdentityTables>,
    ) {
      await trx
        .updateTable('identity.refresh_tokens')
        .set({ used_at: usedAt, replaced_by_sealed: replacedBySealed })
        .where('hash', '=', hash)
        .execute();
    },

    async touchSession(id: string, at: Date, trx: Transaction<IdentityTables>) {
      await trx
        .updateTable('identity.sessions')
        .set({ last_refreshed_at: at })
        .where('id', '=', id)
        .execute();
    },

    /** Revokes one session, or every live session of a user; returns how many were revoked. */
    async revoke(
      target: { sessionId: string; userId?: string } | { userId: string; exceptSessionId?: string },
      reason: string,
      at: Date,
      executor?: Executor,
    ): Promise<number> {
      let query = (executor ?? db.kysely)
        .updateTable('identity.sessions')
        .set({ revoked_at: at, revoked_reason: reason })
        .where('revoked_at', 'is', null);
      if ('sessionId' in target) query = query.where('id', '=', target.sessionId);
      if (target.userId !== undefined) query = query.where('user_id', '=', target.userId);
      if ('exceptSessionId' in target && target.exceptSessionId !== undefined)
        query = query.where('id', '!=', target.exceptSessionId);
      const result = await query.executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    /** Whether the account with this email opened a session from `ip` since `since`. */
    async signedInFrom(email: string, ip: string, since: Date): Promise<boolean> {
      const row = await db.kysely
        .selectFrom('identity.sessions as s')
        .innerJoin('identity.users as u', 'u.id', 's.user_id')
        .select('s.id')
        .where('u.email', '=', email)
        .where('s.ip', '=', ip)
        .where('s.created_at', '>', since)
        .limit(1)
        .executeTakeFirst();
      return row !== undefined;
    },

    listActive(userId: string, now: Date): Promise<SessionRow[]> {
      return db.kysely
        .selectFrom('identity.sessions')
        .selectAll()
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .orderBy('last_refreshed_at', 'desc')
        .execute();
    },
  };
}

export type SessionsStore = ReturnType<typeof createSessionsStore>;
