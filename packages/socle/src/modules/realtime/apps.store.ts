import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../../kernel/index.js';
import type { RealtimeTables } from './realtime.tables.js';

/** What connecting and signing need to know about an app, found by key or id in any organization. */
export interface AppLookup {
  readonly id: string;
  readonly tenant_id: string;
  readonly key: string;
  readonly secret: string;
  readonly encryption_master_key: string | null;
  readonly max_connections: number;
  readonly client_events_per_second: number;
  readonly backend_events_per_second: number;
  readonly webhook_url: string | null;
}

/** A row whose sealed values need resealing with the current SECRET_KEY. */
export interface ResealCandidate {
  readonly id: string;
  readonly tenant_id: string;
  readonly secret: string;
  readonly encryption_master_key: string | null;
}

/** SQL of realtime apps. Row-level security scopes every query but the lookup by key or id. */
export function createAppsStore(db: Database<RealtimeTables>) {
  const lookup = db.prepare((kysely, params: { key: string | null; id: string | null }) =>
    kysely.selectFrom(sql<AppLookup>`realtime.app_lookup(${params.key}, ${params.id})`.as('a')).selectAll(),
  );
  const summary = [
    'id',
    'name',
    'key',
    'max_connections',
    'client_events_per_second',
    'backend_events_per_second',
    'webhook_url',
    'created_at',
    'secret_rotated_at',
    sql<boolean>`encryption_master_key is not null`.as('has_encryption_master_key'),
  ] as const;

  return {
    /**
     * The app with this key or id in any organization (security-definer function); with SHARDS,
     * on the primary then each shard: a key names no organization, so no shard either. A fan-out
     * rather than a directory of keys on the primary: lookups are cached by the service, a key is
     * found where its organization's rows are (moves included), and nothing is written twice.
     */
    async find(by: { key?: string; id?: string }): Promise<AppLookup | undefined> {
      const params = { key: by.key ?? null, id: by.id ?? null };
      const databases = db.everyDatabase();
      if (databases.length === 1) return lookup.executeTakeFirst(params);
      for (const database of databases) {
        const found = await lookup.executeTakeFirst(params, database.kysely);
        if (found !== undefined) return found;
      }
      return undefined;
    },

    insert(
      app: {
        id: string;
        tenantId: string;
        name: string;
        key: string;
        secret: string;
        encryptionMasterKey: string;
        maxConnections: number;
        clientEventsPerSecond: number;
        backendEventsPerSecond: number;
        webhookUrl: string | null;
      },
      trx: Transaction<RealtimeTables>,
    ) {
      return trx
        .insertInto('realtime.apps')
        .values({
          id: app.id,
          tenant_id: app.tenantId,
          name: app.name,
          key: app.key,
          secret: app.secret,
          encryption_master_key: app.encryptionMasterKey,
          max_connections: app.maxConnections,
          client_events_per_second: app.clientEventsPerSecond,
          backend_events_per_second: app.backendEventsPerSecond,
          webhook_url: app.webhookUrl,
          secret_rotated_at: null,
        })
        .returning(summary)
        .executeTakeFirstOrThrow();
    },

    /** Apps of the organization acted in. */
    list(trx: Kysely<RealtimeTables>) {
      return trx.selectFrom('realtime.apps').select(summary).orderBy('created_at').orderBy('id').execute();
    },

    /**
     * Apps of every organization (or of `orgId`), in id order after `after`: run it on an executor
     * presenting `app.operator_read` (policy `apps_operator_read`).
     */
    listAll(
      query: { orgId?: string | undefined; after?: string | undefined; limit: number },
      executor: Kysely<RealtimeTables>,
    ) {
      let select = executor.selectFrom('realtime.apps').select([...summary, 'tenant_id']);
      if (query.orgId !== undefined) select = select.where('tenant_id', '=', query.orgId);
      if (query.after !== undefined) select = select.where('id', '>', query.after);
      return select.orderBy('id').limit(query.limit).execute();
    },

    rotateSecret(id: string, secret: string, at: Date, trx: Transaction<RealtimeTables>) {
      return trx
        .updateTable('realtime.apps')
        .set({ secret, secret_rotated_at: at })
        .where('id', '=', id)
        .returning(summary)
        .executeTakeFirst();
    },

    rotateEncryptionKey(id: string, encryptionMasterKey: string, trx: Transaction<RealtimeTables>) {
      return trx
        .updateTable('realtime.apps')
        .set({ encryption_master_key: encryptionMasterKey })
        .where('id', '=', id)
        .returning(summary)
        .executeTakeFirst();
    },

    /**
     * Apps of every organization with a value not sealed with the current key (`prefix` is the
     * current key's), `limit` at a time in id order after `after` (security-definer function).
     */
    toReseal(prefix: string, after: string | null, limit: number) {
      return db.kysely
        .selectFrom(
          sql<ResealCandidate>`realtime.apps_to_reseal(${prefix}, ${after}::uuid, ${limit})`.as('a'),
        )
        .selectAll()
        .execute();
    },

    /**
     * Replaces the sealed values of an app if they are still the ones read (a concurrent rotation
     * or another node's reseal wins untouched); in a transaction of the app's organization.
     */
    async reseal(
      id: string,
      read: { secret: string; encryptionMasterKey: string | null },
      resealed: { secret: string; encryptionMasterKey: string | null },
      trx: Transaction<RealtimeTables>,
    ): Promise<boolean> {
      const result = await trx
        .updateTable('realtime.apps')
        .set({ secret: resealed.secret, encryption_master_key: resealed.encryptionMasterKey })
        .where('id', '=', id)
        .where('secret', '=', read.secret)
        .where((where) =>
          read.encryptionMasterKey === null
            ? where('encryption_master_key', 'is', null)
            : where('encryption_master_key', '=', read.encryptionMasterKey),
        )
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async remove(id: string, trx: Transaction<RealtimeTables>): Promise<boolean> {
      const result = await trx.deleteFrom('realtime.apps').where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    },
  };
}

export type AppsStore = ReturnType<typeof createAppsStore>;
