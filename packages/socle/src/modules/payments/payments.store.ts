import type { Kysely, Selectable, Transaction } from 'kysely';
import type { SqlConnection } from '../../kernel/index.js';
import type { PaymentsTables } from './payments.tables.js';

type Executor = Kysely<PaymentsTables> | Transaction<PaymentsTables>;
export type PaymentRow = Selectable<PaymentsTables['payments.payments']>;
export type SubscriptionRow = Selectable<PaymentsTables['payments.subscriptions']>;
export type NewPaymentRow = Omit<
  PaymentsTables['payments.payments'],
  'tenant_id' | 'refunded_amount' | 'reversed_credits' | 'restored_credits' | 'metadata' | 'credits'
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
   * Inserts the payment of a store purchase unless the purchase has one (its provider reference is
   * unique across organizations: a concurrent claim waits, then finds it); undefined when it had.
   */
  insertStorePayment(trx: Executor, row: NewPaymentRow) {
    return trx
      .insertInto('payments.payments')
      .values(row)
      .onConflict((conflict) => conflict.columns(['provider', 'provider_reference']).doNothing())
      .returningAll()
      .executeTakeFirst();
  },

  findPayment(trx: Executor, id: string) {
    return trx.selectFrom('payments.payments').selectAll().where('id', '=', id).executeTakeFirst();
  },

  findPaymentByOrder(trx: Executor, orderId: string) {
    return trx.selectFrom('payments.payments').selectAll().where('order_id', '=', orderId).executeTakeFirst();
  },

  /** The payment row, locked until the transaction ends: one event applies to it at a time. */
  lockPayment(trx: Executor, id: string) {
    return trx
      .selectFrom('payments.payments')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst();
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

  /** Stores the event; undefined when it was stored before (or by a concurrent transaction that committed). */
  insertEvent(trx: Executor, row: Omit<PaymentsTables['payments.events'], 'tenant_id'>) {
    return trx
      .insertInto('payments.events')
      .values(row)
      .onConflict((conflict) => conflict.columns(['provider', 'event_id']).doNothing())
      .returning('event_id')
      .executeTakeFirst();
  },

  setEventOutcome(trx: Executor, provider: string, eventId: string, outcome: string, paymentId: string) {
    return trx
      .updateTable('payments.events')
      .set({ outcome, payment_id: paymentId })
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

  /** Which organization and payment a provider object belongs to (global table: no tenant yet). */
  findRoute(trx: Executor, provider: string, references: readonly string[]) {
    return trx
      .selectFrom('payments.provider_references')
      .select(['tenant_id', 'payment_id'])
      .where('provider', '=', provider)
      .where('reference', 'in', references)
      .limit(1)
      .executeTakeFirst();
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
        where status = 'pending' and kind = 'invoice' and provider_reference not like 'pending:%'
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
