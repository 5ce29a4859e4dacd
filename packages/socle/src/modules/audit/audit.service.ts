import type { Database } from '../../kernel/index.js';
import { isUuid } from '../../kernel/index.js';
import { actingSettings, type CurrentOrg, OPERATOR_READ } from '../tenancy/index.js';
import { auditErrors } from './audit.errors.js';
import type { AuditPosition, AuditStore } from './audit.store.js';
import type { AuditTables } from './audit.tables.js';

/** One recorded request, as org admins see it. */
export interface AuditEvent {
  readonly id: string;
  /** The organization acted in; null for actions outside any (sign-in, the operator's own). */
  readonly tenantId: string | null;
  readonly occurredAt: string;
  readonly actorUserId: string | null;
  readonly actorApiKeyId: string | null;
  /** Done with the operator token (`OPERATOR_TOKEN`): the operator acted, whoever else is named. */
  readonly actorOperator: boolean;
  /** Method and route template: `DELETE /org/members/:userId`. */
  readonly action: string;
  /** The route's path parameters: `{ userId: '…' }`. */
  readonly target: Record<string, string> | null;
  /** Names of the body's top-level fields; never their values. */
  readonly changedFields: string[];
  readonly status: number;
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly requestId: string | null;
}

/** A page of the log and where the next one starts (null on the last page). */
export interface AuditEventPage {
  readonly events: AuditEvent[];
  readonly nextCursor: string | null;
}

/** What the listing is filtered by. */
export interface AuditEventQuery {
  readonly actor?: string | undefined;
  readonly action?: string | undefined;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  /** Default {@link DEFAULT_PAGE_SIZE}. */
  readonly limit?: number | undefined;
  readonly cursor?: string | undefined;
}

/** The operator's filters: the organization's as well (else every one's, and those of none). */
export interface OperatorAuditEventQuery extends AuditEventQuery {
  readonly org?: string | undefined;
}

/** Events per page when the query does not say. */
export const DEFAULT_PAGE_SIZE = 50;

const POSITION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** The opaque cursor of a position: base64url of `<occurred_at with microseconds>|<id>`. */
export function encodeCursor(position: AuditPosition): string {
  return Buffer.from(`${position.occurredAt}|${position.id}`, 'utf8').toString('base64url');
}

/** The position a cursor stands for, or 400 `audit.invalid_cursor`. */
export function decodeCursor(cursor: string): AuditPosition {
  const [occurredAt, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (
    rest.length > 0 ||
    occurredAt === undefined ||
    id === undefined ||
    !POSITION.test(occurredAt) ||
    Number.isNaN(Date.parse(occurredAt)) ||
    !isUuid(id)
  ) {
    throw auditErrors.invalidCursor();
  }
  return { occurredAt, id };
}

function parseTarget(target: string | null): Record<string, string> | null {
  if (target === null) return null;
  const parsed: unknown = JSON.parse(target);
  if (typeof parsed !== 'object' || parsed === null) return null;
  return Object.fromEntries(
    Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
  );
}

/** Reading the audit log of an organization. */
export function createAuditService(options: {
  readonly db: Database<AuditTables>;
  readonly store: AuditStore;
}) {
  const { db, store } = options;
  /**
   * One page from the executors (one per database the events may be on): each gives its page from
   * the same keyset position, merged newest first, so a cursor walks several databases' events as
   * one list. One row more than asked tells whether there is a next page.
   */
  async function page(
    tenantId: string | undefined,
    query: AuditEventQuery,
    executors: readonly Parameters<AuditStore['listEvents']>[1][],
  ): Promise<AuditEventPage> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const filter = {
      tenantId,
      actor: query.actor,
      actionPrefix: query.action,
      since: query.since === undefined ? undefined : new Date(query.since),
      until: query.until === undefined ? undefined : new Date(query.until),
      after,
      limit: limit + 1,
    };
    const pages = await Promise.all(executors.map((executor) => store.listEvents(filter, executor)));
    // Positions are fixed-width UTC text and ids lowercase uuids: text order is the database's.
    const newestFirst = (a: { position: string; id: string }, b: { position: string; id: string }) =>
      a.position === b.position ? (a.id < b.id ? 1 : a.id > b.id ? -1 : 0) : a.position < b.position ? 1 : -1;
    const rows =
      pages.length === 1
        ? (pages[0] ?? [])
        : pages
            .flat()
            .sort(newestFirst)
            .slice(0, limit + 1);
    const events = rows.slice(0, limit);
    const last = events.at(-1);
    return {
      events: events.map((row) => ({
        id: row.id,
        tenantId: row.tenant_id,
        occurredAt: row.occurred_at.toISOString(),
        actorUserId: row.actor_user_id,
        actorApiKeyId: row.actor_api_key_id,
        actorOperator: row.actor_operator,
        action: row.action,
        target: parseTarget(row.target),
        changedFields: row.changed_fields,
        status: row.status,
        ip: row.ip,
        userAgent: row.user_agent,
        requestId: row.request_id,
      })),
      nextCursor:
        rows.length > limit && last !== undefined
          ? encodeCursor({ occurredAt: last.position, id: last.id })
          : null,
    };
  }

  return {
    /** A page of the organization's events, newest first. Filters combine with `and`. */
    list(org: CurrentOrg, query: AuditEventQuery): Promise<AuditEventPage> {
      // One statement: it carries the organization in its own implicit transaction, no
      // BEGIN/COMMIT round trips. The log is written in batches after the request anyway: a read
      // replica may serve it (DATABASE_REPLICA_URLS), once it has replayed this client's own last
      // write.
      return page(org.orgId, query, [db.withSettings(actingSettings(org), { replica: true })]);
    },

    /**
     * A page of every organization's events and those of none (sign-ins, the operator's own), or
     * of one organization (`org`), for the operator: the statement presents `app.operator_read`
     * (policy `events_operator_read`), the only way past row-level security to them. With
     * `SHARDS`, read on the primary (events of no organization) and on every shard, merged.
     */
    listForOperator(query: OperatorAuditEventQuery): Promise<AuditEventPage> {
      return page(
        query.org,
        query,
        db.everyDatabase().map((database) => database.withSettings(OPERATOR_READ, { replica: true })),
      );
    },
  };
}

/** The audit service's API. */
export type AuditService = ReturnType<typeof createAuditService>;
