import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type { Database, PreparedQuery, SqlConnection } from '../../kernel/index.js';
import type { PaymentsTables } from './payments.tables.js';
import { REFUND_REVERSED_EVENT } from './provider.js';

type Executor = Kysely<PaymentsTables> | Transaction<PaymentsTables>;
export type PaymentRow = Selectable<PaymentsTables['payments.payments']>;
export type SubscriptionRow = Selectable<PaymentsTables['payments.subscriptions']>;
export type NewPaymentRow = Omit<
  PaymentsTables['payments.payments'],
  | 'tenant_id'
  | 'refunded_amount'
  | 'reversed_credits'
  | 'restored_credits'
  | 'metadata'
  | 'credits'
  | 'parent_payment_id'
  | 'received_sats'
> & { credits: string; metadata: unknown };

/** SQL of payments. Tenant tables run under the caller's transaction (row-level security). */
export const paymentsStore = {
  insertPayment(trx: Executor, row: NewPaymentRow) {
    return trx.insertInto('payments.payments').values(row).returningAll().executeTakeFirstOrThrow();
  },

  /**
   * Inserts the payment of an order unless the order has one (a concurrent request waits on the
   * unique key, then finds the winner's row); undefined when it had.
   */
  insertOrderPayment(trx: Executor, row: NewPaymentRow) {
    return trx
      .insertInto('payments.payments')
      .values(row)
      .onConflict((conflict) =>
        conflict.columns(['tenant_id', 'order_id']).where('order_id', 'is not', null).doNothing(),
      )
      .returningAll()
      .executeTakeFirst();
  },

  /**
   * Inserts a payment unless its provider reference has one (unique across organizations): a store
   * purchase claimed twice (a concurrent claim waits, then finds it), a subscription invoice told
   * by two events (its subscription's payment is locked by the caller); undefined when it had.
   */
  insertPaymentOnce(trx: Executor, row: NewPaymentRow & { parent_payment_id?: string }) {
    return trx
      .insertInto('payments.payments')
      .values(row)
      .onConflict((conflict) => conflict.columns(['provider', 'provider_reference']).doNothing())
      .returningAll()
      .executeTakeFirst();
  },

  /** A subscription invoice's payment, by the invoice id or the PaymentIntent that paid it. */
  findInvoicePayment(
    trx: Executor,
    parentId: string,
    by: { readonly invoiceId?: string | undefined; readonly providerPaymentId?: string | undefined },
  ) {
    return trx
      .selectFrom('payments.payments')
      .selectAll()
      .where('parent_payment_id', '=', parentId)
      .where((eb) =>
        eb.or([
          ...(by.invoiceId === undefined ? [] : [eb('provider_reference', '=', by.invoiceId)]),
          ...(by.providerPaymentId === undefined
            ? []
            : [eb('provider_payment_id', '=', by.providerPaymentId)]),
        ]),
      )
      .forUpdate()
      .executeTakeFirst();
  },

  findPayment(trx: Executor, id: string) {
    return trx.selectFrom('payments.payments').selectAll().where('id', '=', id).executeTakeFirst();
  },

  findPaymentByOrder(trx: Executor, orderId: string) {
    return trx.selectFrom('payments.payments').selectAll().where('order_id', '=', orderId).executeTakeFirst();
  },

  updatePayment(trx: Executor, id: string, changes: Partial<Omit<PaymentRow, 'id' | 'tenant_id'>>) {
    return trx
      .updateTable('payments.payments')
      .set(changes)
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
  },

  listPayments(trx: Executor, filter: { userId?: string | undefined; limit: number }) {
    let query = trx.selectFrom('payments.payments').selectAll();
    if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
    return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
  },

  /** The customer id the person's latest payment at this provider learned. */
  async latestCustomer(trx: Executor, userId: string, provider: string) {
    const row = await trx
      .selectFrom('payments.payments')
      .select('provider_customer_id')
      .where('user_id', '=', userId)
      .where('provider', '=', provider)
      .where('provider_customer_id', 'is not', null)
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row?.provider_customer_id ?? undefined;
  },

  /** Whether a reversal of the payment's refund (a store's REFUND_REVERSED) happened at or after `time`. */
  async refundReversedAfter(trx: Executor, paymentId: string, time: Date): Promise<boolean> {
    const row = await trx
      .selectFrom('payments.events')
      .select('event_id')
      .where('payment_id', '=', paymentId)
      .where('type', '=', REFUND_REVERSED_EVENT)
      .where('occurred_at', '>=', time)
      .limit(1)
      .executeTakeFirst();
    return row !== undefined;
  },

  /**
   * Records a stored event as about `paymentId` (one invoice of the subscription whose payment
   * received it): that invoice's history, and what refundReversedAfter reads.
   */
  async assignEvent(trx: Executor, provider: string, eventId: string, paymentId: string): Promise<void> {
    await trx
      .updateTable('payments.events')
      .set({ payment_id: paymentId })
      .where('provider', '=', provider)
      .where('event_id', '=', eventId)
      .execute();
  },

  listEvents(trx: Executor, paymentId: string) {
    return trx
      .selectFrom('payments.events')
      .select(['provider', 'event_id', 'type', 'occurred_at', 'received_at', 'outcome'])
      .where('payment_id', '=', paymentId)
      .orderBy('occurred_at')
      .execute();
  },

  addReferences(trx: Executor, rows: readonly PaymentsTables['payments.provider_references'][]) {
    if (rows.length === 0) return Promise.resolve();
    return trx
      .insertInto('payments.provider_references')
      .values([...rows])
      .onConflict((conflict) => conflict.columns(['provider', 'reference']).doNothing())
      .execute();
  },

  findWallet(trx: Executor, owner: string, unit: string) {
    return trx
      .selectFrom('payments.wallets')
      .select('account_id')
      .where('owner', '=', owner)
      .where('unit', '=', unit)
      .executeTakeFirst();
  },

  /**
   * Claims the wallet row; undefined when another transaction has it (this one waited on the key
   * until that one committed).
   */
  claimWallet(trx: Executor, owner: string, unit: string, accountId: string) {
    return trx
      .insertInto('payments.wallets')
      .values({ owner, unit, account_id: accountId })
      .onConflict((conflict) => conflict.columns(['tenant_id', 'owner', 'unit']).doNothing())
      .returning('account_id')
      .executeTakeFirst();
  },

  lockSubscription(trx: Executor, provider: string, subscriptionId: string) {
    return trx
      .selectFrom('payments.subscriptions')
      .selectAll()
      .where('provider', '=', provider)
      .where('provider_subscription_id', '=', subscriptionId)
      .forUpdate()
      .executeTakeFirst();
  },

  upsertSubscription(trx: Executor, row: Omit<PaymentsTables['payments.subscriptions'], 'tenant_id'>) {
    return trx
      .insertInto('payments.subscriptions')
      .values(row)
      .onConflict((conflict) =>
        conflict.columns(['provider', 'provider_subscription_id']).doUpdateSet({
          status: row.status,
          current_period_end: row.current_period_end,
          cancel_at_period_end: row.cancel_at_period_end,
          state_at: row.state_at,
          updated_at: row.updated_at,
        }),
      )
      .returningAll()
      .executeTakeFirstOrThrow();
  },

  listSubscriptions(trx: Executor, userId: string | undefined) {
    let query = trx.selectFrom('payments.subscriptions').selectAll();
    if (userId !== undefined) query = query.where('user_id', '=', userId);
    return query.orderBy('created_at', 'desc').execute();
  },

  /** A dispute's row, locked until the transaction ends (two events about it apply one after the other). */
  lockDispute(trx: Executor, provider: string, disputeId: string) {
    return trx
      .selectFrom('payments.disputes')
      .selectAll()
      .where('provider', '=', provider)
      .where('dispute_id', '=', disputeId)
      .forUpdate()
      .executeTakeFirst();
  },

  upsertDispute(trx: Executor, row: Omit<PaymentsTables['payments.disputes'], 'tenant_id'>) {
    return trx
      .insertInto('payments.disputes')
      .values(row)
      .onConflict((conflict) =>
        conflict
          .columns(['provider', 'dispute_id'])
          .doUpdateSet({ amount: row.amount, status: row.status, state_at: row.state_at }),
      )
      .execute();
  },

  /** What the payment's disputes hold back now: opened (funds withdrawn) or lost. */
  async heldByDisputes(trx: Executor, paymentId: string): Promise<bigint> {
    const row = await trx
      .selectFrom('payments.disputes')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<string>('amount'), eb.val('0')).as('held'))
      .where('payment_id', '=', paymentId)
      .where('status', 'in', ['needs_response', 'under_review', 'lost'])
      .executeTakeFirst();
    return BigInt(row?.held ?? 0);
  },

  /** Invoices still open, of every organization (owner role), for the backfill's re-fetch. */
  async listOpenInvoices(connection: SqlConnection) {
    const { rows } = await connection.query<{ id: string; provider: string; provider_reference: string }>(
      `select id, provider, provider_reference from payments.payments
        where status in ('pending', 'partially_paid') and kind = 'invoice' and provider_reference not like 'pending:%'
        order by created_at limit 500`,
    );
    return rows;
  },

  /** Privacy export: a person's payments, subscriptions and their events, in every organization (owner role). */
  async exportUser(connection: SqlConnection, userId: string) {
    const payments = await connection.query(
      `select id, tenant_id as "orgId", provider, provider_reference as "providerReference", kind,
              product_id as "productId", order_id as "orderId", status, amount::text as amount, currency,
              refunded_amount::text as "refundedAmount", credits::text as credits, unit,
              amount_sats::text as "amountSats", metadata, created_at as "createdAt", settled_at as "settledAt"
         from payments.payments where user_id = $1 order by created_at, id`,
      [userId],
    );
    const subscriptions = await connection.query(
      `select id, tenant_id as "orgId", provider, provider_subscription_id as "providerSubscriptionId",
              product_id as "productId", status, current_period_end as "currentPeriodEnd", created_at as "createdAt"
         from payments.subscriptions where user_id = $1 order by created_at, id`,
      [userId],
    );
    return { payments: payments.rows, subscriptions: subscriptions.rows };
  },

  /**
   * Privacy erasure: the rows stop naming the person and lose the app's metadata and the
   * provider's payloads (which carry emails, names); amounts, currencies and dates stay.
   */
  async eraseUser(connection: SqlConnection, userId: string) {
    await connection.query(
      `update payments.events set payload = '{}'
        where payment_id in (select id from payments.payments where user_id = $1)`,
      [userId],
    );
    await connection.query(
      `update payments.payments set user_id = null, metadata = '{}', checkout_url = null, provider_customer_id = null
        where user_id = $1`,
      [userId],
    );
    await connection.query(`update payments.subscriptions set user_id = null where user_id = $1`, [userId]);
  },
};

/**
 * A Postgres array literal of text values (quoted; null elements as NULL), for
 * `= any($1::text[])` and `unnest($1::text[], …)` on both drivers.
 */
export function textArray(values: readonly (string | null)[]): string {
  return `{${values.map((value) => (value === null ? 'NULL' : `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`)).join(',')}}`;
}

/** Which organization and payment a provider object belongs to. */
export interface PaymentRoute {
  readonly tenant_id: string;
  readonly payment_id: string;
}

/** A route as the webhook path reads it: with the reference it was found by. */
export interface FoundRoute extends PaymentRoute {
  readonly reference: string;
}

/** A received event to store (the payload as JSON text). */
export interface ReceivedEventRow extends Record<string, unknown> {
  readonly provider: string;
  readonly eventId: string;
  readonly type: string;
  readonly paymentId: string;
  readonly occurredAt: string;
  readonly receivedAt: string;
  readonly payload: string;
}

/** Received events to store together: text array literals, one element per event, in order. */
export interface ReceivedEventsParams extends Record<string, unknown> {
  readonly providers: string;
  readonly eventIds: string;
  readonly types: string;
  readonly paymentIds: string;
  readonly occurredAt: string;
  readonly payloads: string;
  readonly receivedAt: string;
}

/** Paid subscription invoices to record together (see insertPaidInvoicesAndFinish): array literals. */
export interface PaidInvoicesParams extends Record<string, unknown> {
  readonly ids: string;
  readonly userIds: string;
  readonly providers: string;
  readonly invoiceIds: string;
  readonly productIds: string;
  readonly amounts: string;
  readonly currencies: string;
  readonly credits: string;
  readonly units: string;
  readonly transferIds: string;
  readonly subscriptionIds: string;
  readonly customerIds: string;
  readonly parentIds: string;
  readonly settledAt: string;
  readonly eventIds: string;
  /** The subscription id each event taught (routed to its payment), or NULL. */
  readonly learnedSubscriptions: string;
  readonly tenantId: string;
  readonly now: string;
}

/** A subscription invoice's payment, paid, and the event that said so (see insertPaidInvoiceAndFinish). */
export interface PaidInvoiceRow extends Record<string, unknown> {
  readonly id: string;
  readonly userId: string | null;
  readonly provider: string;
  readonly invoiceId: string;
  readonly productId: string | null;
  readonly amount: string;
  readonly currency: string;
  readonly credits: string;
  readonly unit: string | null;
  readonly transferId: string | null;
  readonly subscriptionId: string | null;
  readonly customerId: string | null;
  /** The subscription's payment. */
  readonly parentId: string;
  readonly tenantId: string;
  readonly now: string;
  readonly settledAt: string;
  readonly eventId: string;
  readonly outcome: string;
  /** Provider ids the event taught, a text array literal (routes to the subscription's payment). */
  readonly references: string;
}

/**
 * The statements of the webhook path, compiled once (named prepared statements on Postgres): a
 * webhook runs the same four or five statements each time, and building them with the query
 * builder cost ~0.1 ms of CPU each (measured by the payments bench's profile).
 */
export function preparePaymentsStatements(db: Database<PaymentsTables>) {
  return {
    /** The route of one of `references` (a text array literal) known here (global table). */
    findRoute: db.prepare((kysely, p: { provider: string; references: string }) => ({
      compile: () =>
        sql<FoundRoute>`
          select reference, tenant_id, payment_id from payments.provider_references
           where provider = ${p.provider} and reference = any(${p.references}::text[])
           limit 1`.compile(kysely),
    })) as PreparedQuery<{ provider: string; references: string }, FoundRoute>,

    /**
     * Stores the event (`on conflict do nothing`: a replay, or a concurrent copy once the first
     * committed, stores nothing) and, only when it was stored now, locks its payment row until the
     * transaction ends and returns it: one round trip for what were two. No row: a duplicate, or
     * a payment that does not exist (the caller tells them apart).
     */
    storeEventAndLockPayment: db.prepare((kysely, p: ReceivedEventRow) => ({
      compile: () =>
        sql<PaymentRow>`
          with stored as (
            insert into payments.events (provider, event_id, type, payment_id, occurred_at, received_at, outcome, payload)
            values (${p.provider}, ${p.eventId}, ${p.type}, ${p.paymentId}::uuid, ${p.occurredAt}::timestamptz,
                    ${p.receivedAt}::timestamptz, 'received', ${p.payload}::jsonb)
            on conflict (provider, event_id) do nothing
            returning 1
          )
          select p.* from payments.payments p
           where p.id = ${p.paymentId}::uuid and exists (select 1 from stored)
             for update of p`.compile(kysely),
    })) as PreparedQuery<ReceivedEventRow, PaymentRow>,

    /**
     * The event's outcome, and the provider ids it taught (a PaymentIntent, an invoice) mapped to
     * its payment for events that name only them: one statement at the end of the event.
     */
    finishEvent: db.prepare(
      (
        kysely,
        p: {
          provider: string;
          eventId: string;
          outcome: string;
          tenantId: string;
          paymentId: string;
          references: string;
        },
      ) => ({
        compile: () =>
          sql<never>`
            with added as (
              insert into payments.provider_references (provider, reference, tenant_id, payment_id)
              select ${p.provider}, reference, ${p.tenantId}::uuid, ${p.paymentId}::uuid
                from unnest(${p.references}::text[]) as reference
              on conflict do nothing
            )
            update payments.events set outcome = ${p.outcome}
             where provider = ${p.provider} and event_id = ${p.eventId}`.compile(kysely),
      }),
    ),

    /**
     * A subscription's paid invoice (`invoice.paid`): inserts the invoice's own payment, paid,
     * unless an event about it (a refund or dispute delivered first) recorded it (`on conflict do
     * nothing` on the provider reference), and finishes the event (its outcome and the provider
     * ids it taught, as `finishEvent`) in the same statement: a renewal's outcome is known before
     * its grant is posted, and a failure after this rolls it all back. One round trip and no query
     * building where there were two statements, one built by the query builder per webhook (its
     * `returningAll` also parsed ~25 columns nobody read). Returns the row's id when it inserted.
     */
    insertPaidInvoiceAndFinish: db.prepare((kysely, p: PaidInvoiceRow) => ({
      compile: () =>
        sql<{ id: string }>`
          with inserted as (
            insert into payments.payments (id, user_id, provider, provider_reference, kind, product_id,
                   amount, currency, credits, unit, status, transfer_id, provider_subscription_id,
                   provider_customer_id, parent_payment_id, created_at, updated_at, settled_at)
            values (${p.id}::uuid, ${p.userId}::uuid, ${p.provider}, ${p.invoiceId}, 'subscription_invoice',
                    ${p.productId}, ${p.amount}::bigint, ${p.currency}, ${p.credits}::bigint, ${p.unit},
                    'succeeded', ${p.transferId}, ${p.subscriptionId}, ${p.customerId},
                    ${p.parentId}::uuid, ${p.now}::timestamptz, ${p.now}::timestamptz,
                    ${p.settledAt}::timestamptz)
            on conflict (provider, provider_reference) do nothing
            returning id
          ), added as (
            insert into payments.provider_references (provider, reference, tenant_id, payment_id)
            select ${p.provider}, reference, ${p.tenantId}::uuid, ${p.parentId}::uuid
              from unnest(${p.references}::text[]) as reference
            on conflict do nothing
          ), finished as (
            update payments.events set outcome = ${p.outcome}
             where provider = ${p.provider} and event_id = ${p.eventId}
          )
          select id from inserted`.compile(kysely),
    })) as PreparedQuery<PaidInvoiceRow, { id: string }>,

    /**
     * Several events of one organization at once (coalesced deliveries, see the service's
     * applyTogether): stores each (`on conflict do nothing`, as storeEventAndLockPayment) in one
     * statement, and locks the payment rows of those stored now, in ascending id order (the order
     * every batch locks in, so two batches never wait for each other in a cycle), returning each
     * stored event's key with its payment. Events absent from the answer were stored before
     * (duplicates), or name a payment that does not exist.
     */
    storeEventsAndLockPayments: db.prepare((kysely, p: ReceivedEventsParams) => ({
      compile: () =>
        sql<PaymentRow & { event_provider: string; event_id: string }>`
          with stored as (
            insert into payments.events (provider, event_id, type, payment_id, occurred_at, received_at, outcome, payload)
            select e.provider, e.event_id, e.type, e.payment_id, e.occurred_at, ${p.receivedAt}::timestamptz,
                   'received', e.payload::jsonb
              from unnest(${p.providers}::text[], ${p.eventIds}::text[], ${p.types}::text[], ${p.paymentIds}::uuid[],
                          ${p.occurredAt}::timestamptz[], ${p.payloads}::text[])
                     as e(provider, event_id, type, payment_id, occurred_at, payload)
            on conflict (provider, event_id) do nothing
            returning provider, event_id, payment_id
          )
          select s.provider as event_provider, s.event_id, p.* from stored s
            join payments.payments p on p.id = s.payment_id
           order by p.id
             for update of p`.compile(kysely),
    })) as PreparedQuery<ReceivedEventsParams, PaymentRow & { event_provider: string; event_id: string }>,

    /**
     * insertPaidInvoiceAndFinish for several renewals of one organization in one statement (text
     * array literals, one element per renewal, in order): the invoices' payments inserted unless
     * recorded before (the first of two renewals naming one invoice wins), the provider ids they
     * taught routed to their subscriptions' payments, their events finished as `granted`. Returns
     * the ids of the rows it inserted.
     */
    insertPaidInvoicesAndFinish: db.prepare((kysely, p: PaidInvoicesParams) => ({
      compile: () =>
        sql<{ id: string }>`
          with input as (
            select * from unnest(${p.ids}::uuid[], ${p.userIds}::uuid[], ${p.providers}::text[],
                   ${p.invoiceIds}::text[], ${p.productIds}::text[], ${p.amounts}::bigint[],
                   ${p.currencies}::text[], ${p.credits}::bigint[], ${p.units}::text[], ${p.transferIds}::text[],
                   ${p.subscriptionIds}::text[], ${p.customerIds}::text[], ${p.parentIds}::uuid[],
                   ${p.settledAt}::timestamptz[], ${p.eventIds}::text[], ${p.learnedSubscriptions}::text[])
              with ordinality as i(id, user_id, provider, invoice_id, product_id, amount, currency, credits,
                   unit, transfer_id, subscription_id, customer_id, parent_id, settled_at, event_id,
                   learned_subscription, ordinal)
          ), inserted as (
            insert into payments.payments (id, user_id, provider, provider_reference, kind, product_id,
                   amount, currency, credits, unit, status, transfer_id, provider_subscription_id,
                   provider_customer_id, parent_payment_id, created_at, updated_at, settled_at)
            select id, user_id, provider, invoice_id, 'subscription_invoice', product_id, amount, currency,
                   credits, unit, 'succeeded', transfer_id, subscription_id, customer_id, parent_id,
                   ${p.now}::timestamptz, ${p.now}::timestamptz, settled_at
              from input order by ordinal
            on conflict (provider, provider_reference) do nothing
            returning id
          ), added as (
            insert into payments.provider_references (provider, reference, tenant_id, payment_id)
            select i.provider, r.reference, ${p.tenantId}::uuid, i.parent_id
              from input i cross join lateral unnest(array[i.learned_subscription, i.invoice_id]) as r(reference)
             where r.reference is not null
            on conflict do nothing
          ), finished as (
            update payments.events e set outcome = 'granted'
              from input i
             where e.provider = i.provider and e.event_id = i.event_id
          )
          select id from inserted`.compile(kysely),
    })) as PreparedQuery<PaidInvoicesParams, { id: string }>,

    /** The ledger accounts of `owners` (a text array literal: user ids, 'source') in `unit`. */
    findWallets: db.prepare((kysely, p: { unit: string; owners: string }) => ({
      compile: () =>
        sql<{ owner: string; account_id: string }>`
          select owner, account_id from payments.wallets
           where unit = ${p.unit} and owner = any(${p.owners}::text[])`.compile(kysely),
    })) as PreparedQuery<{ unit: string; owners: string }, { owner: string; account_id: string }>,
  };
}

export type PaymentsStatements = ReturnType<typeof preparePaymentsStatements>;
