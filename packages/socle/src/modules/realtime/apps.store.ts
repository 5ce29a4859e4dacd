import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../../kernel/db/index.js';
import type { RealtimeTables } from './realtime.tables.js';

/** What connecting and signing need to know about an app, found by key or id in any organization. */
export interface AppLookup {
  readonly id: string;
  readonly tenant_id: string;
  readonly key: string;
  readonly secret: string;
  readonly max_connections: number;
  readonly client_events_per_second: number;
  readonly backend_events_per_second: number;
  readonly webhook_url: string | null;
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
  ] as const;

  return {
    /** The app with this key or id in any organization (security-definer function). */
    find(by: { key?: string; id?: string }): Promise<AppLookup | undefined> {
      return lookup.executeTakeFirst({ key: by.key ?? null, id: by.id ?? null });
    },

    insert(
      app: {
        id: string;
        tenantId: string;
        name: string;
        key: string;
        secret: string;
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

    rotateSecret(id: string, secret: string, at: Date, trx: Transaction<RealtimeTables>) {
      return trx
        .updateTable('realtime.apps')
        .set({ secret, secret_rotated_at: at })
        .where('id', '=', id)
        .returning(summary)
        .executeTakeFirst();
    },

    async remove(id: string, trx: Transaction<RealtimeTables>): Promise<boolean> {
      const result = await trx.deleteFrom('realtime.apps').where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    },
  };
}

export type AppsStore = ReturnType<typeof createAppsStore>;
