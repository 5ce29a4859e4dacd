import { type Kysely, sql, type Transaction } from 'kysely';
import type { SqlConnection } from '../../kernel/index.js';
import type { PaymentsTables } from './payments.tables.js';

type Executor = Kysely<PaymentsTables> | Transaction<PaymentsTables>;

/** A failed application of a provider event, as written after its transaction rolled back. */
export interface EventFailureInput {
  readonly provider: string;
  readonly eventId: string;
  readonly paymentId: string;
  readonly type: string;
  readonly errorCode: string;
  readonly errorMessage: string;
  readonly seenAt: Date;
  /** The verified event, serialized (see serializeVerifiedEvent). */
  readonly verified: string;
}

/** Which provider events a list shows. */
export interface PaymentEventFilter {
  readonly provider?: string | undefined;
  readonly status?: 'applied' | 'failed' | undefined;
  /** Last seen at or after (inclusive). */
  readonly since?: Date | undefined;
  /** Last seen before (exclusive): also the next page's cursor. */
  readonly until?: Date | undefined;
  readonly limit: number;
}

/** One provider event as the lists show it: applied (its row is in `events`) or failed. */
export interface PaymentEventRow {
  provider: string;
  event_id: string;
  tenant_id: string;
  payment_id: string | null;
  type: string;
  status: 'applied' | 'failed';
  outcome: string | null;
  error_code: string | null;
  error_message: string | null;
  /** Failed attempts (0 when it applied at the first). */
  failed_attempts: number;
  first_seen_at: Date | string;
  last_seen_at: Date | string;
}

/** SQL of the payments' event lists and failures. Tenant tables: RLS of the caller's transaction. */
export const paymentEventsStore = {
  /**
   * Records a failure, or one more attempt of a known one (the latest error wins). Runs in a
   * transaction of the event's organization, after the one that failed rolled back.
   */
  recordFailure(trx: Executor, input: EventFailureInput) {
    return trx
      .insertInto('payments.event_failures')
      .values({
        provider: input.provider,
        event_id: input.eventId,
        payment_id: input.paymentId,
        type: input.type,
        error_code: input.errorCode,
        error_message: input.errorMessage,
        first_seen_at: input.seenAt,
        last_seen_at: input.seenAt,
        verified: input.verified,
      })
      .onConflict((conflict) =>
        conflict.columns(['provider', 'event_id']).doUpdateSet((excluded) => ({
          attempts: sql`payments.event_failures.attempts + 1`,
          error_code: excluded.ref('excluded.error_code'),
          error_message: excluded.ref('excluded.error_message'),
          last_seen_at: excluded.ref('excluded.last_seen_at'),
          verified: excluded.ref('excluded.verified'),
        })),
      )
      .execute();
  },

  /** The verified event kept with a failure not applied since; undefined otherwise. */
  async findRetryable(trx: Executor, provider: string, eventId: string) {
    return trx
      .selectFrom('payments.event_failures as f')
      .select(['f.verified', 'f.tenant_id'])
      .where('f.provider', '=', provider)
      .where('f.event_id', '=', eventId)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('payments.events as e')
              .select(sql`1`.as('one'))
              .whereRef('e.provider', '=', 'f.provider')
              .whereRef('e.event_id', '=', 'f.event_id'),
          ),
        ),
      )
      .executeTakeFirst();
  },

  /** Whether the event has a row in `events` (applied), or a failure row (then not applied). */
  async eventState(trx: Executor, provider: string, eventId: string) {
    const applied = await trx
      .selectFrom('payments.events')
      .select('event_id')
      .where('provider', '=', provider)
      .where('event_id', '=', eventId)
      .executeTakeFirst();
    if (applied !== undefined) return 'applied' as const;
    const failed = await trx
      .selectFrom('payments.event_failures')
      .select('event_id')
      .where('provider', '=', provider)
      .where('event_id', '=', eventId)
      .executeTakeFirst();
    return failed === undefined ? undefined : ('failed' as const);
  },

  /**
   * Applied and failed events, most recently seen first: events joined with their past failures,
   * then failures without an event. Built once, run by Kysely under RLS (an organization) or on
   * an owner connection (the operator, every organization).
   */
  listQuery(db: Kysely<PaymentsTables>, filter: PaymentEventFilter) {
    const where = (alias: 'e' | 'f', seen: ReturnType<typeof sql.ref>) =>
      sql.join(
        [
          sql`true`,
          ...(filter.provider === undefined
            ? []
            : [sql`${sql.ref(`${alias}.provider`)} = ${filter.provider}`]),
          ...(filter.since === undefined ? [] : [sql`${seen} >= ${filter.since.toISOString()}::timestamptz`]),
          ...(filter.until === undefined ? [] : [sql`${seen} < ${filter.until.toISOString()}::timestamptz`]),
        ],
        sql` and `,
      );
    const applied = sql`
      select e.provider, e.event_id, e.tenant_id, e.payment_id, e.type, 'applied' as status, e.outcome,
             f.error_code, f.error_message, coalesce(f.attempts, 0) as failed_attempts,
             coalesce(f.first_seen_at, e.received_at) as first_seen_at, e.received_at as last_seen_at
        from payments.events e
        left join payments.event_failures f on f.provider = e.provider and f.event_id = e.event_id
       where ${where('e', sql.ref('e.received_at'))}`;
    const failed = sql`
      select f.provider, f.event_id, f.tenant_id, f.payment_id, f.type, 'failed' as status, null as outcome,
             f.error_code, f.error_message, f.attempts as failed_attempts, f.first_seen_at, f.last_seen_at
        from payments.event_failures f
       where ${where('f', sql.ref('f.last_seen_at'))}
         and not exists (select 1 from payments.events e where e.provider = f.provider and e.event_id = f.event_id)`;
    const parts =
      filter.status === 'applied' ? [applied] : filter.status === 'failed' ? [failed] : [applied, failed];
    return sql<PaymentEventRow>`
      select * from (${sql.join(parts, sql` union all `)}) listed
       order by last_seen_at desc, provider, event_id
       limit ${filter.limit}`.compile(db);
  },

  /** The current organization's events (RLS of the caller's transaction). */
  async listOfOrganization(db: Kysely<PaymentsTables>, filter: PaymentEventFilter) {
    return (await db.executeQuery(paymentEventsStore.listQuery(db, filter))).rows;
  },

  /** Every organization's events, on an owner connection (`withOwnerTransaction`). */
  async listOfEveryOrganization(
    connection: SqlConnection,
    db: Kysely<PaymentsTables>,
    filter: PaymentEventFilter,
  ) {
    const query = paymentEventsStore.listQuery(db, filter);
    const { rows } = await connection.query<PaymentEventRow>(query.sql, [...query.parameters]);
    return rows;
  },
};
