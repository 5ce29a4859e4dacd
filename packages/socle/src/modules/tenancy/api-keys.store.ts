import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../../kernel/index.js';
import type { OrgRole } from './roles.js';
import type { TenancyTables } from './tenancy.tables.js';

type Executor = Kysely<TenancyTables>;
type Trx = Transaction<TenancyTables>;

/** What authenticating a request needs to know about a key, found by its hash. */
export interface ApiKeyLookup {
  readonly id: string;
  readonly tenant_id: string;
  readonly created_by: string;
  readonly scopes: string[];
  readonly role: Exclude<OrgRole, 'owner'>;
  readonly expires_at: Date | null;
  readonly revoked_at: Date | null;
}

/** SQL of API keys. Row-level security scopes every query but the lookup by hash. */
export function createApiKeysStore(db: Database<TenancyTables>) {
  const byHash = db.prepare((kysely, params: { hash: string }) =>
    kysely.selectFrom(sql<ApiKeyLookup>`tenancy.api_key_by_hash(${params.hash})`.as('k')).selectAll(),
  );

  return {
    /** The key with this hash in any organization (security-definer function), in one statement. */
    findByHash(hash: string): Promise<ApiKeyLookup | undefined> {
      return byHash.executeTakeFirst({ hash });
    },

    async insert(
      key: {
        id: string;
        tenantId: string;
        name: string;
        prefix: string;
        keyHash: string;
        scopes: string[];
        role: Exclude<OrgRole, 'owner'>;
        createdBy: string;
        expiresAt: Date | null;
      },
      trx: Trx,
    ) {
      return trx
        .insertInto('tenancy.api_keys')
        .values({
          id: key.id,
          tenant_id: key.tenantId,
          name: key.name,
          prefix: key.prefix,
          key_hash: key.keyHash,
          scopes: key.scopes,
          role: key.role,
          created_by: key.createdBy,
          last_used_at: null,
          expires_at: key.expiresAt,
          revoked_at: null,
        })
        .returning(['created_at'])
        .executeTakeFirstOrThrow();
    },

    /** Keys of the organization acted in that are not revoked (expired ones included). */
    listActive(trx: Executor) {
      return trx
        .selectFrom('tenancy.api_keys')
        .select(['id', 'name', 'prefix', 'scopes', 'role', 'created_at', 'last_used_at', 'expires_at'])
        .where('revoked_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
    },

    async revoke(id: string, at: Date, trx: Executor): Promise<boolean> {
      const result = await trx
        .updateTable('tenancy.api_keys')
        .set({ revoked_at: at })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },

    /**
     * Records a use, unless one was recorded in the last `granularityMs` (by this node or another):
     * at most one write per key per interval however busy the key is.
     */
    async recordUse(id: string, at: Date, granularityMs: number, trx: Executor): Promise<void> {
      await trx
        .updateTable('tenancy.api_keys')
        .set({ last_used_at: at })
        .where('id', '=', id)
        .where((eb) =>
          eb.or([
            eb('last_used_at', 'is', null),
            eb('last_used_at', '<=', new Date(at.getTime() - granularityMs)),
          ]),
        )
        .execute();
    },
  };
}

export type ApiKeysStore = ReturnType<typeof createApiKeysStore>;
