import type { Kysely } from 'kysely';
import type { CredentialTables } from './credentials.tables.js';

type Executor = Kysely<CredentialTables>;

/** SQL of per-organization provider keys; every statement runs under the organization's RLS. */
export const credentialsStore = {
  async upsert(db: Executor, row: { provider: string; sealedKey: string; hint: string }) {
    return db
      .insertInto('outbound_credentials.credentials')
      .values({ provider: row.provider, sealed_key: row.sealedKey, hint: row.hint })
      .onConflict((conflict) =>
        conflict.columns(['tenant_id', 'provider']).doUpdateSet({
          sealed_key: row.sealedKey,
          hint: row.hint,
          updated_at: new Date(),
        }),
      )
      .returning(['provider', 'hint', 'updated_at'])
      .executeTakeFirstOrThrow();
  },
  async find(db: Executor, provider: string) {
    return db
      .selectFrom('outbound_credentials.credentials')
      .select(['tenant_id', 'sealed_key'])
      .where('provider', '=', provider)
      .executeTakeFirst();
  },
  async list(db: Executor) {
    return db
      .selectFrom('outbound_credentials.credentials')
      .select(['provider', 'hint', 'updated_at'])
      .orderBy('provider')
      .execute();
  },
  async remove(db: Executor, provider: string): Promise<boolean> {
    const result = await db
      .deleteFrom('outbound_credentials.credentials')
      .where('provider', '=', provider)
      .executeTakeFirst();
    return result.numDeletedRows > 0n;
  },
};
