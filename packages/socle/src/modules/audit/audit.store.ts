import { type Kysely, sql } from 'kysely';
import type { Database } from '../../kernel/index.js';
import { tenantSettings } from '../../kernel/index.js';
import type { AuditTables } from './audit.tables.js';

/** An audit event as the recorder captured it, before it is written. */
export interface NewAuditEvent {
  readonly id: string;
  /** The organization acted in; null for actions outside any (sign-up, sign-in). */
  readonly tenantId: string | null;
  readonly occurredAt: Date;
  readonly actorUserId: string | null;
  readonly actorApiKeyId: string | null;
  /** The request acted as the operator (it passed `requireOperator`). */
  readonly actorOperator: boolean;
  readonly action: string;
  readonly target: string | null;
  readonly changedFields: readonly string[];
  readonly status: number;
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly requestId: string | null;
}

/** Where a page of the listing starts: strictly after this (occurred_at, id), newest first. */
export interface AuditPosition {
  /** `occurred_at` in microseconds, as Postgres prints it (ISO 8601, UTC). */
  readonly occurredAt: string;
  readonly id: string;
}

/** What an org admin (or the operator) filters the log by. */
export interface AuditEventFilter {
  /** The organization; undefined: every organization's and those of none (the operator's listing). */
  readonly tenantId: string | undefined;
  /** A user id or API key id. */
  readonly actor?: string | undefined;
  /** Prefix of the action, e.g. `DELETE /org`. */
  readonly actionPrefix?: string | undefined;
  /** Inclusive. */
  readonly since?: Date | undefined;
  /** Exclusive. */
  readonly until?: Date | undefined;
  readonly after?: AuditPosition | undefined;
  readonly limit: number;
}

/** SQL of the audit log. Row-level security scopes every query to the tenant of its settings. */
export function createAuditStore(db: Database<AuditTables>) {
  return {
    /**
     * Writes events of one organization (or of none, `tenantId` null) in one transaction that acts
     * in it: the insert policy accepts rows of the transaction's tenant and rows of no tenant.
     * One statement whatever the number of events (rows travel as one JSON parameter), so Postgres
     * prepares it once.
     */
    async insertEvents(tenantId: string | null, events: readonly NewAuditEvent[]): Promise<void> {
      if (events.length === 0) return;
      const rows = JSON.stringify(
        events.map((event) => ({
          id: event.id,
          tenant_id: event.tenantId,
          occurred_at: event.occurredAt.toISOString(),
          actor_user_id: event.actorUserId,
          actor_api_key_id: event.actorApiKeyId,
          actor_operator: event.actorOperator,
          action: event.action,
          target: event.target,
          changed_fields: event.changedFields,
          status: event.status,
          ip: event.ip,
          user_agent: event.userAgent,
          request_id: event.requestId,
        })),
      );
      // Explicit, so the ambient scope (whatever async context the flush runs in) cannot change
      // the tenant: '' is "no tenant" to socle.current_tenant_id().
      await db.transaction(
        async (trx) => {
          await sql`
            insert into audit.events (id, tenant_id, occurred_at, actor_user_id, actor_api_key_id, actor_operator,
                                      action, target, changed_fields, status, ip, user_agent, request_id)
            select id, tenant_id, occurred_at, actor_user_id, actor_api_key_id, coalesce(actor_operator, false),
                   action, target, coalesce(changed_fields, '{}'), status, ip, user_agent, request_id
              from jsonb_to_recordset(${rows}::jsonb) as e(
                id uuid, tenant_id uuid, occurred_at timestamptz, actor_user_id uuid, actor_api_key_id uuid,
                actor_operator boolean, action text, target text, changed_fields text[], status integer, ip text, user_agent text,
                request_id text)`.execute(trx);
        },
        { settings: tenantSettings({ tenantId: tenantId ?? '' }) },
      );
    },

    /**
     * One page of an organization's events (or, `tenantId` undefined, of every one and of none:
     * run it on an executor presenting `app.operator_read`), newest first, keyset-paginated on
     * (occurred_at, id).
     */
    listEvents(filter: AuditEventFilter, executor: Kysely<AuditTables>) {
      let query = executor.selectFrom('audit.events').select([
        'id',
        'tenant_id',
        'occurred_at',
        'actor_user_id',
        'actor_api_key_id',
        'actor_operator',
        'action',
        'target',
        'changed_fields',
        'status',
        'ip',
        'user_agent',
        'request_id',
        // Full precision for the cursor: a JavaScript Date keeps milliseconds, Postgres microseconds.
        sql<string>`to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('position'),
      ]);
      const { tenantId, actor, actionPrefix, since, until, after } = filter;
      // Row-level security already confines the rows; naming the tenant lets the planner use
      // the (tenant_id, occurred_at, id) index directly.
      if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
      if (actor !== undefined)
        query = query.where((eb) =>
          eb.or([eb('actor_user_id', '=', actor), eb('actor_api_key_id', '=', actor)]),
        );
      if (actionPrefix !== undefined) query = query.where(sql<boolean>`starts_with(action, ${actionPrefix})`);
      if (since !== undefined) query = query.where('occurred_at', '>=', since);
      if (until !== undefined) query = query.where('occurred_at', '<', until);
      if (after !== undefined)
        query = query.where(
          sql<boolean>`(occurred_at, id) < (${after.occurredAt}::timestamptz, ${after.id}::uuid)`,
        );
      return query.orderBy('occurred_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
    },
  };
}

/** The audit store's API. */
export type AuditStore = ReturnType<typeof createAuditStore>;
