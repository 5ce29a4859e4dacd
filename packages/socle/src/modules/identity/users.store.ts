import type { Kysely } from 'kysely';
import type { Database } from '../../kernel/db/index.js';
import type { IdentityTables, UserRow } from './identity.tables.js';

type Executor = Kysely<IdentityTables>;

/** SQL of accounts. Emails arrive normalized. */
export function createUsersStore(db: Database<IdentityTables>) {
  const byEmail = db.prepare((kysely, params: { email: string }) =>
    kysely.selectFrom('identity.users').selectAll().where('email', '=', params.email),
  );
  const byId = db.prepare((kysely, params: { id: string }) =>
    kysely.selectFrom('identity.users').selectAll().where('id', '=', params.id),
  );
  return {
    findByEmail: (email: string, executor?: Executor): Promise<UserRow | undefined> =>
      byEmail.executeTakeFirst({ email }, executor),
    findById: (id: string, executor?: Executor): Promise<UserRow | undefined> =>
      byId.executeTakeFirst({ id }, executor),
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
