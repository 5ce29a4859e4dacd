import type { Database } from '../../kernel/db/index.js';
import type { IdentityTables, SigningKeyRow } from './identity.tables.js';

/** SQL of access-token signing keys. */
export function createSigningKeysStore(db: Database<IdentityTables>) {
  return {
    /** Keys not retired before `since`, newest first. */
    listPublishable(since: Date): Promise<SigningKeyRow[]> {
      return db.kysely
        .selectFrom('identity.signing_keys')
        .selectAll()
        .where((where) => where.or([where('retired_at', 'is', null), where('retired_at', '>', since)]))
        .orderBy('created_at', 'desc')
        .execute();
    },
    async insert(key: {
      kid: string;
      algorithm: string;
      privateJwk: object;
      publicJwk: object;
    }): Promise<void> {
      await db.kysely
        .insertInto('identity.signing_keys')
        .values({
          kid: key.kid,
          algorithm: key.algorithm,
          private_jwk: JSON.stringify(key.privateJwk),
          public_jwk: JSON.stringify(key.publicJwk),
          retired_at: null,
        })
        .execute();
    },
    async retireAllExcept(kid: string, at: Date): Promise<void> {
      await db.kysely
        .updateTable('identity.signing_keys')
        .set({ retired_at: at })
        .where('kid', '!=', kid)
        .where('retired_at', 'is', null)
        .execute();
    },
  };
}

export type SigningKeysStore = ReturnType<typeof createSigningKeysStore>;
