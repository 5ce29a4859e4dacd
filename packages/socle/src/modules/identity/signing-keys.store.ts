import type { Database, SecretBox } from '../../kernel/index.js';
import type { IdentityTables, SigningKeyRow } from './identity.tables.js';

/** A signing key as the access-token code uses it: the private JWK opened. */
export interface SigningKey extends Omit<SigningKeyRow, 'private_jwk'> {
  readonly privateJwk: object;
}

const contextOf = (kid: string) => `identity.signing_keys:${kid}`;

/**
 * SQL of access-token signing keys. Private keys are sealed with the secret box on the way in
 * and opened on the way out; rows from before sealing are plain JSON until `resealAll` runs.
 */
export function createSigningKeysStore(db: Database<IdentityTables>, secrets: SecretBox) {
  const openPrivateJwk = (row: SigningKeyRow): object =>
    JSON.parse(secrets.openStored(row.private_jwk, contextOf(row.kid)));
  return {
    /** Keys not retired before `since`, newest first. */
    async listPublishable(since: Date): Promise<SigningKey[]> {
      const rows = await db.kysely
        .selectFrom('identity.signing_keys')
        .selectAll()
        .where((where) => where.or([where('retired_at', 'is', null), where('retired_at', '>', since)]))
        .orderBy('created_at', 'desc')
        .execute();
      return rows.map((row) => {
        const { private_jwk: _sealed, ...rest } = row;
        return { ...rest, privateJwk: openPrivateJwk(row) };
      });
    },

    /**
     * Seals private keys stored in plain text (before migration 0004) or under a previous
     * SECRET_KEY with the current key. Resolves to the number of keys resealed.
     */
    async resealAll(): Promise<number> {
      const rows = await db.kysely.selectFrom('identity.signing_keys').selectAll().execute();
      let resealed = 0;
      for (const row of rows) {
        if (secrets.isCurrent(row.private_jwk)) continue;
        await db.kysely
          .updateTable('identity.signing_keys')
          .set({ private_jwk: secrets.reseal(row.private_jwk, contextOf(row.kid)) })
          .where('kid', '=', row.kid)
          .where('private_jwk', '=', row.private_jwk)
          .execute();
        resealed += 1;
      }
      return resealed;
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
          private_jwk: secrets.seal(JSON.stringify(key.privateJwk), contextOf(key.kid)),
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
