import { type Kysely, type QueryExecutorProvider, sql, type Transaction } from 'kysely';
import { type Database, isUuid, type PrivacySubject, withOwnerTransaction } from '../../kernel/index.js';
import type { IdentityTables, UserRow } from './identity.tables.js';

type Executor = Kysely<IdentityTables>;

/**
 * Records that the user proved they read mail at their address (a verification mail's token, an
 * invitation's); keeps the first such time. Runs in the caller's transaction.
 */
export async function markEmailVerified(
  id: string,
  at: Date,
  executor: QueryExecutorProvider,
): Promise<void> {
  await sql`update identity.users set email_verified_at = ${at}, updated_at = ${at}
             where id = ${id} and email_verified_at is null`.execute(executor);
}

/** An account as the operator list shows it. */
export interface AccountSummaryRow {
  readonly id: string;
  readonly email: string;
  readonly name: string | null;
  readonly email_verified_at: Date | null;
  readonly totp_confirmed_at: Date | null;
  readonly created_at: Date;
  /** Sessions neither revoked nor expired (a count: a string from both drivers). */
  readonly active_sessions: string | number | bigint | null;
}

/** An account as other modules show it (an organization's member list). */
export interface AccountProfile {
  readonly id: string;
  readonly email: string;
  readonly name: string | null;
}

/** The account's email, read with the caller's executor (their transaction); undefined if none. */
export async function findEmail(id: string, executor: QueryExecutorProvider): Promise<string | undefined> {
  const { rows } = await sql<{ email: string }>`select email from identity.users where id = ${id}`.execute(
    executor,
  );
  return rows[0]?.email;
}

/** SQL of accounts. Emails arrive normalized. */
export function createUsersStore(db: Database<IdentityTables>) {
  const byEmail = db.prepare((kysely, params: { email: string }) =>
    kysely.selectFrom('identity.users').selectAll().where('email', '=', params.email),
  );
  const byId = db.prepare((kysely, params: { id: string }) =>
    kysely.selectFrom('identity.users').selectAll().where('id', '=', params.id),
  );
  const revocation = db.prepare((kysely, params: { id: string; sessionId: string }) =>
    kysely
      .selectFrom('identity.users as user')
      .leftJoin('identity.sessions as session', (join) =>
        join.onRef('session.user_id', '=', 'user.id').on('session.id', '=', params.sessionId),
      )
      .select(['user.credentials_revoked_at', 'session.id as session_id', 'session.revoked_at'])
      .where('user.id', '=', params.id),
  );
  return {
    /**
     * Whether an access token of this account and session still works: false once the session
     * was revoked (sign-out, revocation, password reset) or an erasure revoked the account's
     * credentials, or when either does not exist. Two primary-key reads in one statement.
     */
    async credentialsValid(id: string, sessionId: string): Promise<boolean> {
      const row = await revocation.executeTakeFirst({ id, sessionId });
      return (
        row !== undefined &&
        row.credentials_revoked_at === null &&
        row.session_id !== null &&
        row.revoked_at === null
      );
    },
    findByEmail: (email: string, executor?: Executor): Promise<UserRow | undefined> =>
      byEmail.executeTakeFirst({ email }, executor),
    findById: (id: string, executor?: Executor): Promise<UserRow | undefined> =>
      byId.executeTakeFirst({ id }, executor),
    /** Email and name of the accounts of `ids` that exist, in no particular order. */
    async findProfiles(ids: readonly string[]): Promise<AccountProfile[]> {
      if (ids.length === 0) return [];
      return db.kysely
        .selectFrom('identity.users')
        .select(['id', 'email', 'name'])
        .where('id', 'in', [...ids])
        .execute();
    },
    findEmail,
    /** Inserts a user; resolves false when the email is taken (unique index), without raising. */
    async insert(
      user: { id: string; email: string; passwordHash: string; name: string | null },
      executor: Executor,
    ): Promise<boolean> {
      const inserted = await executor
        .insertInto('identity.users')
        .values({ id: user.id, email: user.email, password_hash: user.passwordHash, name: user.name })
        .onConflict((conflict) => conflict.column('email').doNothing())
        .executeTakeFirst();
      return inserted.numInsertedOrUpdatedRows === 1n;
    },
    /**
     * Reads a user by id or by (normalized) email and locks the row until `trx` ends: changes to
     * one account's email tokens run one at a time.
     */
    lock(
      target: { id: string } | { email: string },
      trx: Transaction<IdentityTables>,
    ): Promise<UserRow | undefined> {
      const query = trx.selectFrom('identity.users').selectAll();
      return ('id' in target ? query.where('id', '=', target.id) : query.where('email', '=', target.email))
        .forUpdate()
        .executeTakeFirst();
    },
    markEmailVerified,
    /**
     * Every account in email order, a page after the email `after`, for operators:
     * `search` matches part of the email or the name, case-insensitively.
     */
    async listAll(options: {
      search?: string | undefined;
      after?: string | undefined;
      limit: number;
      now: Date;
    }): Promise<AccountSummaryRow[]> {
      let query = db.kysely
        .selectFrom('identity.users as user')
        .select([
          'user.id',
          'user.email',
          'user.name',
          'user.email_verified_at',
          'user.totp_confirmed_at',
          'user.created_at',
          (eb) =>
            eb
              .selectFrom('identity.sessions as session')
              .select((count) => count.fn.countAll<string>().as('sessions'))
              .whereRef('session.user_id', '=', 'user.id')
              .where('session.revoked_at', 'is', null)
              .where('session.expires_at', '>', options.now)
              .as('active_sessions'),
        ])
        // Erased accounts stay as pseudonymized rows (personal-data.store.ts): not people to list.
        .where('user.email', 'not like', '%@erased.invalid')
        .orderBy('user.email')
        .limit(options.limit);
      if (options.search !== undefined && options.search.trim() !== '') {
        const pattern = `%${options.search.trim().replace(/[\\%_]/g, (character) => `\\${character}`)}%`;
        query = query.where((eb) =>
          eb.or([eb('user.email', 'ilike', pattern), eb('user.name', 'ilike', pattern)]),
        );
      }
      // Keyset pagination on the (unique) email: stable while accounts are added or erased.
      if (options.after !== undefined) query = query.where('user.email', '>', options.after);
      return query.execute();
    },
    async updatePasswordHash(id: string, passwordHash: string, executor?: Executor): Promise<void> {
      await (executor ?? db.kysely)
        .updateTable('identity.users')
        .set({ password_hash: passwordHash, updated_at: new Date() })
        .where('id', '=', id)
        .execute();
    },
  };
}

export type UsersStore = ReturnType<typeof createUsersStore>;

/**
 * The person a privacy request is about, by user id or email; as the owner role, since an
 * erasure may run while the account is half gone.
 */
export async function findPrivacySubject(
  db: Database,
  reference: string,
): Promise<PrivacySubject | undefined> {
  const byId = isUuid(reference);
  const row = await withOwnerTransaction(db, async (connection) => {
    const { rows } = await connection.query<{ id: string; email: string }>(
      `select id, email from identity.users where ${byId ? 'id = $1::uuid' : 'email = lower(trim($1))'}`,
      [reference],
    );
    return rows[0];
  });
  return row === undefined ? undefined : { userId: row.id, email: row.email };
}
