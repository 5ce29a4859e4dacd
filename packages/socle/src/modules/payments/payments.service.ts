import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import {
  type Clock,
  type Database,
  isSocleError,
  type Logger,
  type MetricCounter,
  type Metrics,
  type ScopeAccess,
  tenantSettings,
  withOwnerTransaction,
} from '../../kernel/index.js';
import type { LedgerService, TransferOperation } from '../ledger/index.js';
import type { Realtime } from '../realtime/index.js';
import { paymentQrCode } from './bitcoin.js';
import type { Catalog, Product } from './catalog.js';
import { createEventFailureRecorder } from './payment-events.service.js';
import { paymentsErrors } from './payments.errors.js';
import {
  type FoundRoute,
  type NewPaymentRow,
  type PaymentRoute,
  type PaymentRow,
  paymentsStore,
  preparePaymentsStatements,
  type SubscriptionRow,
  textArray,
} from './payments.store.js';
import type { PaymentsTables } from './payments.tables.js';
import type { PaymentChange, PaymentProvider, StorePurchaseProof, VerifiedEvent } from './provider.js';

/** A payment as apps and clients see it (amounts in minor units, as bigints). */
export interface Payment {
  readonly id: string;
  readonly orgId: string;
  readonly userId: string | null;
  readonly provider: string;
  readonly providerReference: string;
  /** `subscription_invoice`: one paid invoice of a subscription (its period's grant). */
  readonly kind: 'pack' | 'subscription' | 'invoice' | 'subscription_invoice';
  readonly productId: string | null;
  readonly orderId: string | null;
  /**
   * `partially_paid`: a Bitcoin invoice still open that received less than due; `underpaid`: one
   * that expired so (final, never credited). `receivedSats` says what came.
   */
  readonly status: 'pending' | 'partially_paid' | 'succeeded' | 'failed' | 'expired' | 'underpaid';
  readonly amount: bigint;
  readonly currency: string;
  readonly refundedAmount: bigint;
  readonly credits: bigint;
  readonly unit: string | null;
  readonly transferId: string | null;
  readonly amountSats: bigint | null;
  /** A Bitcoin invoice: what the processor received so far, in sats (null before anything came). */
  readonly receivedSats: bigint | null;
  readonly paymentUri: string | null;
  readonly checkoutUrl: string | null;
  readonly expiresAt: Date | null;
  readonly metadata: Record<string, unknown>;
  readonly createdAt: Date;
  readonly settledAt: Date | null;
  /** A subscription invoice's payment: the subscription's payment (its checkout). */
  readonly subscriptionPaymentId: string | null;
}

/** A subscription's state, as its provider's events left it. */
export interface Subscription {
  readonly id: string;
  readonly userId: string | null;
  readonly provider: string;
  readonly providerSubscriptionId: string;
  readonly productId: string;
  /** Stripe's: `active`, `trialing`, `past_due`, `canceled`, `unpaid`, `incomplete`… */
  readonly status: string;
  readonly currentPeriodEnd: Date | null;
  readonly cancelAtPeriodEnd: boolean;
}

/** What payments tells apps inside the transaction that records the provider's event. */
export type PaymentEventName =
  | 'payment.succeeded'
  | 'payment.failed'
  | 'payment.refunded'
  | 'invoice.expired'
  /** A Bitcoin invoice received less than due and is still open (each new amount received). */
  | 'payment.partially_paid'
  /** A Bitcoin invoice expired having received less than due: not paid, never credited. */
  | 'payment.underpaid';

/**
 * An app's reaction to a payment, run in the event's transaction: throw and nothing is recorded.
 * `afterCommit` queues work for once the transaction committed (telling the app's clients what
 * changed): it never runs for an event rolled back, and its failure is logged, not retried.
 */
export type PaymentHandler = (
  // biome-ignore lint/suspicious/noExplicitAny: the caller's transaction is typed with its own tables
  trx: Transaction<any>,
  payment: Payment,
  afterCommit: (work: () => Promise<void>) => void,
) => Promise<void> | void;

/** An invoice an app opens at a Bitcoin processor for one of its orders. */
export interface NewInvoice {
  /** The app's reference, unique in the organization: the same order asked twice is one invoice. */
  readonly orderId: string;
  /** Minor units of `currency` (2500 = 25.00 EUR); the processor converts to sats at its rate. */
  readonly amount: bigint | number;
  readonly currency: string;
  /** Default: the first enabled provider that opens invoices. */
  readonly provider?: string | undefined;
  /** Who pays: told on their private channel, and their data for privacy export/erase. */
  readonly userId?: string | null | undefined;
  /** A pack of the catalog: its credits are posted to the buyer's wallet on settlement. */
  readonly productId?: string | undefined;
  readonly description?: string | undefined;
  /** The app's own data, returned on the payment its handlers receive. */
  readonly metadata?: Readonly<Record<string, unknown>> | undefined;
  /** Default 15 minutes. */
  readonly expiresInSeconds?: number | undefined;
}

const ORDER_ID = /^[A-Za-z0-9][A-Za-z0-9_.:\-/]{0,127}$/;
const DEFAULT_INVOICE_SECONDS = 900;

/** What a received event did. */
export interface ReceivedEvent {
  readonly duplicate: boolean;
  readonly outcome: string;
  readonly paymentId: string;
}

export interface PaymentsServiceOptions {
  readonly db: Database<PaymentsTables>;
  readonly ledger: LedgerService;
  readonly realtime: Realtime | undefined;
  readonly catalog: Catalog;
  readonly providers: readonly PaymentProvider[];
  readonly clock: Clock;
  readonly log: Logger;
  /** Where the current organization is read (a request's, a job's, `scope.run`). */
  readonly scope: ScopeAccess;
  readonly eventsApplied: MetricCounter;
  /** Where the coalescer's gauge (`socle_payments_event_transactions`) is registered. */
  readonly metrics: Pick<Metrics, 'gauge'>;
  /**
   * Event transactions of all organizations in flight at once (PAYMENTS_EVENT_TRANSACTIONS_MAX,
   * resolved: at least 1); a burst past it waits in the coalescer, where it batches (see applyCoalesced).
   */
  readonly eventTransactionsMax: number;
  /** How far back `backfill()` reads by default. */
  readonly backfillHours: number;
}

const toBigint = (value: string | bigint | null) => (value === null ? null : BigInt(value));

/** A payment row before its provider said anything: pending, nothing settled, no provider ids yet. */
function pendingPayment(
  fields: Pick<
    NewPaymentRow,
    | 'id'
    | 'user_id'
    | 'provider'
    | 'provider_reference'
    | 'kind'
    | 'product_id'
    | 'order_id'
    | 'amount'
    | 'currency'
    | 'credits'
    | 'unit'
  > & { readonly metadata?: NewPaymentRow['metadata'] },
  now: Date,
): NewPaymentRow {
  return {
    provider_payment_id: null,
    provider_subscription_id: null,
    provider_customer_id: null,
    status: 'pending',
    transfer_id: null,
    amount_sats: null,
    payment_uri: null,
    checkout_url: null,
    expires_at: null,
    metadata: {},
    created_at: now,
    updated_at: now,
    settled_at: null,
    ...fields,
  };
}

export function toPayment(row: PaymentRow): Payment {
  return {
    id: row.id,
    orgId: row.tenant_id,
    userId: row.user_id,
    provider: row.provider,
    providerReference: row.provider_reference,
    kind: row.kind as Payment['kind'],
    productId: row.product_id,
    orderId: row.order_id,
    status: row.status as Payment['status'],
    amount: BigInt(row.amount),
    currency: row.currency,
    refundedAmount: BigInt(row.refunded_amount),
    credits: BigInt(row.credits),
    unit: row.unit,
    transferId: row.transfer_id,
    amountSats: toBigint(row.amount_sats),
    receivedSats: toBigint(row.received_sats ?? null),
    paymentUri: row.payment_uri,
    checkoutUrl: row.checkout_url,
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
    metadata: (row.metadata ?? {}) as Record<string, unknown>,
    createdAt: new Date(row.created_at),
    settledAt: row.settled_at === null ? null : new Date(row.settled_at),
    subscriptionPaymentId: row.parent_payment_id ?? null,
  };
}

function toSubscription(row: SubscriptionRow): Subscription {
  return {
    id: row.id,
    userId: row.user_id,
    provider: row.provider,
    providerSubscriptionId: row.provider_subscription_id,
    productId: row.product_id,
    status: row.status,
    currentPeriodEnd: row.current_period_end === null ? null : new Date(row.current_period_end),
    cancelAtPeriodEnd: row.cancel_at_period_end,
  };
}

/** A message for the buyer's private channel, or an app handler's work, run once the transaction committed. */
type Notice =
  | { readonly userId: string; readonly event: PaymentEventName; readonly data: Record<string, unknown> }
  | { readonly afterCommit: () => Promise<void> };

const SOURCE_OWNER = 'source';
/**
 * Transactions of one organization's events in flight at once (see applyCoalesced); events
 * that arrive while they are wait and go together...
 */
const EVENTS_IN_FLIGHT = 2;
/** ...at most this many in one transaction. */
const EVENTS_PER_TRANSACTION = 32;

/** An organization's events waiting for a transaction, and its transactions in flight (see applyCoalesced). */
interface EventQueue {
  readonly key: string;
  readonly waiting: QueuedEvent[];
  inFlight: number;
  /** In line for a slot (readyQueues). */
  ready: boolean;
}

/** An event waiting for a transaction of its organization (see applyCoalesced). */
interface QueuedEvent {
  readonly provider: string;
  readonly event: VerifiedEvent;
  readonly route: PaymentRoute;
  readonly resolve: (result: ReceivedEvent) => void;
  readonly reject: (error: unknown) => void;
}
/** Wallet ids remembered per process (see knownWallets): ~100 bytes each. */
const KNOWN_WALLETS_MAX = 10_000;
/** Routes remembered per process (see knownRoutes): ~200 bytes each. */
const KNOWN_ROUTES_MAX = 10_000;
/** QR images remembered per process: ~2–10 kB each. */
const QR_CODES_MAX = 500;

/**
 * Payments: checkouts and invoices opened at a provider, and the provider's events applied to the
 * ledger exactly once. An event is stored under (provider, event id) and its effect applied in
 * the same transaction, on the payment row locked: a replay finds the row, a concurrent copy waits
 * for the first and then finds it, a crash rolls both back so the redelivery applies it.
 */
export function createPaymentsService(options: PaymentsServiceOptions) {
  const { db, ledger, catalog, clock, log } = options;
  const statements = preparePaymentsStatements(db);
  const failures = createEventFailureRecorder({ db, clock, log });
  /**
   * The organization and payment of the first of a provider's `references` known here. A webhook
   * names no organization: with SHARDS the route (written with its payment, on the payment's
   * database) is looked for on the primary, then each shard.
   */
  const findRoute = async (provider: string, references: readonly string[]) => {
    const params = { provider, references: textArray(references) };
    const databases = db.everyDatabase();
    if (databases.length === 1) return statements.findRoute.executeTakeFirst(params);
    for (const database of databases) {
      const route = await statements.findRoute.executeTakeFirst(params, database.kysely);
      if (route !== undefined) return route;
    }
    return undefined;
  };
  const providers = new Map(options.providers.map((provider) => [provider.name, provider]));
  const handlers = new Map<PaymentEventName, PaymentHandler[]>();

  const providerNamed = (name: string, path?: string) => {
    const provider = providers.get(name);
    if (provider === undefined) throw paymentsErrors.providerNotFound(name, path);
    return provider;
  };

  /**
   * Wallet ids already committed, by organization, owner and unit: a wallet row never changes
   * once written, so the webhook path reads it once per process. Only rows of committed
   * transactions go in (see walletsOf): one created by a transaction that then rolled back must
   * not be remembered.
   */
  const knownWallets = new Map<string, string>();
  /**
   * Routes already read, by provider and reference (oldest first, evicted first): a route row is
   * never updated, so the webhooks of a payment seen before skip the lookup (one statement and
   * round trip of each, measured by the payments bench). A route goes away only with its
   * organization (deleted by cascade, e.g. when its last member is erased): an event applied on a
   * remembered route that finds it gone forgets it and looks again (see receiveEvent).
   */
  const knownRoutes = new Map<string, PaymentRoute>();
  const routeKey = (provider: string, reference: string) => `${provider}\n${reference}`;
  const rememberRoute = (provider: string, route: FoundRoute) => {
    const key = routeKey(provider, route.reference);
    if (knownRoutes.size >= KNOWN_ROUTES_MAX && !knownRoutes.has(key)) {
      const oldest = knownRoutes.keys().next().value;
      if (oldest !== undefined) knownRoutes.delete(oldest);
    }
    knownRoutes.set(key, { tenant_id: route.tenant_id, payment_id: route.payment_id });
  };
  /** QR images by format and payment URI, oldest first (evicted first). */
  const qrCodes = new Map<string, Promise<Buffer | string>>();
  const walletKey = (orgId: string, owner: string, unit: string) => `${orgId}/${owner}/${unit}`;
  const rememberWallets = (entries: readonly [string, string][]) => {
    for (const [key, accountId] of entries) {
      if (knownWallets.size >= KNOWN_WALLETS_MAX && !knownWallets.has(key)) {
        const oldest = knownWallets.keys().next().value;
        if (oldest !== undefined) knownWallets.delete(oldest);
      }
      knownWallets.set(key, accountId);
    }
  };

  /**
   * The ledger accounts of `owners` (user ids, or the organization's source) in `unit`, created
   * on first use: remembered ones, then one statement for the others, then a claim for each
   * still missing (the claim's unique key serializes two first purchases of one person).
   * `orgId` is the transaction's organization, the cache's key; undefined when the caller cannot
   * vouch for it (an app's transaction): nothing is then read from or added to the cache.
   */
  async function walletsOf(
    trx: Transaction<PaymentsTables>,
    orgId: string | undefined,
    owners: readonly string[],
    unit: string,
  ): Promise<Map<string, string>> {
    if (catalog.inPlatformBook(unit)) return platformWalletsOf(trx, owners, unit);
    const accounts = new Map<string, string>();
    for (const owner of orgId === undefined ? [] : owners) {
      const known = knownWallets.get(walletKey(orgId as string, owner, unit));
      if (known !== undefined) accounts.set(owner, known);
    }
    if (accounts.size === owners.length) return accounts;
    const read = owners.filter((owner) => !accounts.has(owner));
    for (const row of await statements.findWallets.execute({ unit, owners: textArray(read) }, trx))
      accounts.set(row.owner, row.account_id);
    for (const owner of read) {
      if (accounts.has(owner)) continue;
      const accountId = randomUUID();
      const claimed = await paymentsStore.claimWallet(trx, owner, unit, accountId);
      if (claimed === undefined) {
        const winner = await paymentsStore.findWallet(trx, owner, unit);
        if (winner === undefined) throw new Error(`wallet ${owner}/${unit} vanished`);
        accounts.set(owner, winner.account_id);
        continue;
      }
      await ledger.createAccount(trx, {
        id: accountId,
        owner: owner === SOURCE_OWNER ? { kind: 'system' } : { kind: 'user', userId: owner },
        unit,
        rule: owner === SOURCE_OWNER ? null : 'debits_must_not_exceed_credits',
        code: owner === SOURCE_OWNER ? 'payments.source' : 'wallet',
      });
      accounts.set(owner, accountId);
    }
    if (orgId === undefined) return accounts;
    const learned = read.map((owner): [string, string] => [
      walletKey(orgId, owner, unit),
      accounts.get(owner) as string,
    ]);
    await db.afterCommit(trx, async () => rememberWallets(learned));
    return accounts;
  }

  /**
   * The accounts outside organizations of `owners` in `unit` (a unit of `book: 'platform'`
   * products): the buyer's own, and the platform's source of the unit, the ledger's one per
   * owner, unit and code, opened on first use. Remembered once committed, as walletsOf's.
   */
  async function platformWalletsOf(
    trx: Transaction<PaymentsTables>,
    owners: readonly string[],
    unit: string,
  ): Promise<Map<string, string>> {
    const accounts = new Map<string, string>();
    const learned: [string, string][] = [];
    await ledger.inPlatformBook(trx, async () => {
      for (const owner of owners) {
        const key = walletKey('platform', owner, unit);
        const known = knownWallets.get(key);
        if (known !== undefined) {
          accounts.set(owner, known);
          continue;
        }
        const account = await ledger.platformAccountOf(trx, {
          userId: owner === SOURCE_OWNER ? null : owner,
          unit,
          code: owner === SOURCE_OWNER ? 'payments.source' : 'wallet',
        });
        accounts.set(owner, account.id);
        learned.push([key, account.id]);
      }
    });
    if (learned.length > 0) await db.afterCommit(trx, async () => rememberWallets(learned));
    return accounts;
  }

  /** Runs `work` in the book that holds `unit`'s credits (see ProductBook), in `trx`. */
  const inUnitBook = <T>(trx: Transaction<PaymentsTables>, unit: string | null, work: () => Promise<T>) =>
    unit !== null && catalog.inPlatformBook(unit) ? ledger.inPlatformBook(trx, work) : work();

  /** One person's wallet (see walletsOf); `orgId` undefined: not remembered, read every time. */
  async function walletOf(
    trx: Transaction<PaymentsTables>,
    orgId: string | undefined,
    owner: string,
    unit: string,
  ): Promise<string> {
    return (await walletsOf(trx, orgId, [owner], unit)).get(owner) as string;
  }

  /** Posts `credits` from the source to the buyer's wallet; returns the wallet's new balance. */
  async function credit(
    trx: Transaction<PaymentsTables>,
    payment: PaymentRow,
    transferId: string,
    credits: bigint,
    code: string,
  ): Promise<bigint | undefined> {
    if (payment.user_id === null || payment.unit === null || credits === 0n) return undefined;
    const { user_id: userId, unit } = payment;
    return inUnitBook(trx, unit, async () => {
      const accounts = await walletsOf(trx, payment.tenant_id, [userId, SOURCE_OWNER], unit);
      const wallet = accounts.get(userId) as string;
      const { balances } = await ledger.transferWithBalances(trx, {
        id: transferId,
        debitAccountId: accounts.get(SOURCE_OWNER) as string,
        creditAccountId: wallet,
        amount: credits,
        code,
        metadata: { paymentId: payment.id, productId: payment.product_id },
      });
      // Posted now: the ledger says the new balance; a replay (posted before) changed nothing.
      return (balances.get(wallet) ?? (await ledger.balance(trx, wallet))).posted;
    });
  }

  /**
   * Brings the credits held back from a purchase to what its refunds and disputes take now: the
   * share of the credits that the refunded plus disputed (opened or lost) share of the amount is.
   * More than before: reversals of the purchase, at most what the wallet still holds (credits
   * already spent stay spent; the rest is taken by a later event). Less (a dispute won, a refund
   * reversed): the difference given back by a new transfer. Each step is
   * named by what was moved before, so the ledger's own idempotency is a second line.
   */
  function settleReversals(
    trx: Transaction<PaymentsTables>,
    payment: PaymentRow,
    restoreCode = 'payments.dispute_won',
  ): Promise<PaymentRow> {
    return inUnitBook(trx, payment.unit, () => settleReversalsInBook(trx, payment, restoreCode));
  }

  /** settleReversals, in the book of the payment's credits. */
  async function settleReversalsInBook(
    trx: Transaction<PaymentsTables>,
    payment: PaymentRow,
    restoreCode: string,
  ): Promise<PaymentRow> {
    if (payment.transfer_id === null || payment.user_id === null || payment.unit === null) return payment;
    const credits = BigInt(payment.credits);
    const amount = BigInt(payment.amount);
    const held = BigInt(payment.refunded_amount) + (await paymentsStore.heldByDisputes(trx, payment.id));
    const target = amount === 0n ? 0n : held >= amount ? credits : (credits * held) / amount;
    const reversed = BigInt(payment.reversed_credits);
    const restored = BigInt(payment.restored_credits);
    const net = reversed - restored;
    if (target < net) {
      const step = net - target;
      await credit(trx, payment, `payments:${payment.id}:restore:${restored}`, step, restoreCode);
      return paymentsStore.updatePayment(trx, payment.id, { restored_credits: (restored + step).toString() });
    }
    if (target === net) return payment;
    const accounts = await walletsOf(trx, payment.tenant_id, [payment.user_id, SOURCE_OWNER], payment.unit);
    const wallet = accounts.get(payment.user_id) as string;
    const code = held > BigInt(payment.refunded_amount) ? 'payments.chargeback' : 'payments.refund';
    /** Credits taken back by this call so far (a retry goes on from there, under new ids). */
    let done = 0n;
    const reverse = async (): Promise<void> => {
      const available = (await ledger.balance(trx, wallet)).available;
      let step = target - net - done;
      if (step > available) step = available;
      if (step <= 0n) return;
      const before = reversed + done;
      // The purchase's transfer, as far as it has anything left to reverse (the ledger bounds a
      // transfer's reversals by its amount)...
      const fromPurchase = step < credits - before ? step : credits > before ? credits - before : 0n;
      if (fromPurchase > 0n) {
        await ledger.reverse(trx, {
          id: `payments:${payment.id}:reversal:${before}`,
          transferId: payment.transfer_id as string,
          amount: fromPurchase,
          code,
          metadata: { paymentId: payment.id },
        });
        done += fromPurchase;
      }
      // ...then credits given back since (a refund Apple reversed, refunded again) are taken back by
      // a transfer of their own, from the wallet to the source.
      if (step > fromPurchase) {
        await ledger.transfer(trx, {
          id: `payments:${payment.id}:reversal:${reversed + done}`,
          debitAccountId: wallet,
          creditAccountId: accounts.get(SOURCE_OWNER) as string,
          amount: step - fromPurchase,
          code,
          metadata: { paymentId: payment.id },
        });
        done += step - fromPurchase;
      }
    };
    try {
      await reverse();
    } catch (error) {
      // The wallet was read without a lock: a spend committed in between left less than read.
      // The refused movement locked the wallet in this transaction (the ledger locks a batch's
      // accounts before it checks them, and a refusal writes nothing), so what is read again
      // cannot move before this commits: the second try takes what is there (after what the
      // first try already moved, if its first part went through).
      if (!isSocleError(error) || error.code !== 'ledger.insufficient_funds') throw error;
      await reverse();
    }
    if (done === 0n) return payment;
    return paymentsStore.updatePayment(trx, payment.id, { reversed_credits: (reversed + done).toString() });
  }

  async function runHandlers(
    trx: Transaction<PaymentsTables>,
    name: PaymentEventName,
    row: PaymentRow,
    notices: Notice[],
  ) {
    for (const handler of handlers.get(name) ?? [])
      await handler(trx, toPayment(row), (afterCommit) => notices.push({ afterCommit }));
  }

  async function balanceOf(trx: Transaction<PaymentsTables>, row: PaymentRow) {
    if (row.user_id === null || row.unit === null) return undefined;
    const { user_id: userId, unit } = row;
    if (catalog.inPlatformBook(unit))
      return inUnitBook(trx, unit, async () => {
        const wallet = (await platformWalletsOf(trx, [userId], unit)).get(userId) as string;
        return (await ledger.balance(trx, wallet)).posted;
      });
    const found = await paymentsStore.findWallet(trx, row.user_id, row.unit);
    return found === undefined ? undefined : (await ledger.balance(trx, found.account_id)).posted;
  }

  function notice(
    notices: Notice[],
    name: PaymentEventName,
    row: PaymentRow,
    extra: Record<string, unknown>,
  ) {
    if (row.user_id === null) return;
    notices.push({
      userId: row.user_id,
      event: name,
      data: {
        paymentId: row.id,
        productId: row.product_id,
        orderId: row.order_id,
        status: row.status,
        unit: row.unit,
        ...extra,
      },
    });
  }

  /**
   * Applies one verified event's change to its locked payment; returns the outcome. Provider ids
   * the event teaches go into `references`, mapped to the payment with the outcome.
   */
  async function apply(
    trx: Transaction<PaymentsTables>,
    provider: string,
    event: VerifiedEvent,
    locked: PaymentRow,
    notices: Notice[],
    learnedReferences: string[],
    /** Set when the change recorded the event's outcome and references itself (a renewal). */
    finished: { recorded: boolean },
  ): Promise<string> {
    let payment = locked;
    const now = clock.now();
    // A store's refund or revocation takes the whole purchase back: a full refund.
    // About a store subscription, it names the period whose grant it takes back (refunded whole).
    const change: Exclude<PaymentChange, { kind: 'revoked' }> =
      event.change.kind === 'revoked'
        ? {
            kind: 'refunded',
            refundedAmount: BigInt(locked.amount),
            ...(event.change.invoiceId === undefined ? {} : { invoiceId: event.change.invoiceId }),
          }
        : event.change;
    const references = (ids: (string | undefined)[]) => {
      for (const id of ids) if (id !== undefined) learnedReferences.push(id);
    };
    if (payment.kind === 'subscription' && (change.kind === 'refunded' || change.kind === 'disputed')) {
      // A charge of one of the subscription's invoices: what it reverses is that invoice's grant.
      const invoicePayment = await invoicePaymentOf(trx, payment, change, event.occurredAt);
      if (invoicePayment === undefined) return 'ignored';
      payment = invoicePayment;
    }
    if (payment.kind === 'subscription' && change.kind === 'refund_reversed') {
      // A store's reversal of one period's refund: about that period's invoice payment, which
      // keeps the event (a refund of that period older than it, arriving later, is then stale).
      const invoicePayment =
        change.invoiceId === undefined
          ? undefined
          : await paymentsStore.findInvoicePayment(trx, payment.id, { invoiceId: change.invoiceId });
      if (invoicePayment === undefined) return 'ignored';
      await paymentsStore.assignEvent(trx, provider, event.eventId, invoicePayment.id);
      payment = invoicePayment;
    }
    switch (change.kind) {
      case 'noted':
        return 'noted';
      case 'paid': {
        references([change.providerPaymentId, change.subscriptionId]);
        const learned = {
          ...(change.receivedSats === undefined ? {} : { received_sats: change.receivedSats.toString() }),
          ...(change.providerPaymentId === undefined
            ? {}
            : { provider_payment_id: change.providerPaymentId }),
          ...(change.customerId === undefined ? {} : { provider_customer_id: change.customerId }),
          ...(change.subscriptionId === undefined ? {} : { provider_subscription_id: change.subscriptionId }),
        };
        if (payment.status === 'succeeded') {
          if (Object.keys(learned).length > 0) await paymentsStore.updatePayment(trx, payment.id, learned);
          return 'already_paid';
        }
        // A pack (by checkout or invoice) credits here; a subscription's credits come with each
        // paid invoice; an app's order credits nothing (its handler does what the order needs).
        const credits = payment.kind === 'subscription' ? 0n : BigInt(payment.credits);
        const credited = credits > 0n && payment.user_id !== null && payment.unit !== null;
        const transferId = `payments:${payment.id}:credit`;
        payment = await paymentsStore.updatePayment(trx, payment.id, {
          ...learned,
          status: 'succeeded',
          settled_at: event.occurredAt,
          updated_at: now,
          ...(credited ? { transfer_id: transferId } : {}),
        });
        let balance: bigint | undefined;
        if (credited) {
          balance = await credit(trx, payment, transferId, credits, 'payments.purchase');
          // A refund or dispute that arrived before the payment: applied now that there is
          // something to reverse.
          const reversedBefore = payment.reversed_credits;
          payment = await settleReversals(trx, payment);
          if (payment.reversed_credits !== reversedBefore) balance = await balanceOf(trx, payment);
        }
        await runHandlers(trx, 'payment.succeeded', payment, notices);
        notice(notices, 'payment.succeeded', payment, {
          credits: payment.kind === 'subscription' ? '0' : String(payment.credits),
          balance: balance?.toString() ?? (await balanceOf(trx, payment))?.toString() ?? null,
        });
        return 'paid';
      }
      case 'partially_paid':
      case 'underpaid': {
        // By state: more received than recorded while open; underpaid once, from open.
        const recorded = BigInt(payment.received_sats ?? 0);
        const open = payment.status === 'pending' || payment.status === 'partially_paid';
        if (!open || (change.kind === 'partially_paid' && change.receivedSats <= recorded)) return 'ignored';
        payment = await paymentsStore.updatePayment(trx, payment.id, {
          status: change.kind,
          received_sats: change.receivedSats.toString(),
          updated_at: now,
        });
        const name = change.kind === 'underpaid' ? 'payment.underpaid' : 'payment.partially_paid';
        await runHandlers(trx, name, payment, notices);
        notice(notices, name, payment, {
          amountSats: payment.amount_sats === null ? null : String(payment.amount_sats),
          receivedSats: change.receivedSats.toString(),
          missingSats: change.missingSats.toString(),
        });
        return change.kind;
      }
      case 'failed':
      case 'expired': {
        // An invoice that received part of its amount can still be marked invalid.
        const open =
          payment.status === 'pending' ||
          (change.kind === 'failed' &&
            (payment.status === 'partially_paid' || payment.status === 'underpaid'));
        if (!open) return 'ignored';
        payment = await paymentsStore.updatePayment(trx, payment.id, {
          status: change.kind === 'failed' ? 'failed' : 'expired',
          ...(change.kind === 'failed' && change.receivedSats !== undefined && change.receivedSats > 0n
            ? { received_sats: change.receivedSats.toString() }
            : {}),
          updated_at: now,
        });
        const name = change.kind === 'failed' ? 'payment.failed' : 'invoice.expired';
        await runHandlers(trx, name, payment, notices);
        notice(notices, name, payment, { balance: (await balanceOf(trx, payment))?.toString() ?? null });
        return change.kind;
      }
      case 'refunded': {
        references([change.providerPaymentId]);
        if (change.refundedAmount <= BigInt(payment.refunded_amount)) return 'ignored';
        // A store's revocation older than a reversal of a refund already received: delivered
        // late (the reversal came first), it changes nothing.
        if (
          event.change.kind === 'revoked' &&
          (await paymentsStore.refundReversedAfter(trx, payment.id, event.occurredAt))
        )
          return 'stale';
        payment = await paymentsStore.updatePayment(trx, payment.id, {
          refunded_amount: change.refundedAmount.toString(),
          ...(change.providerPaymentId === undefined
            ? {}
            : { provider_payment_id: change.providerPaymentId }),
          updated_at: now,
        });
        // Before the payment is known paid, the refund is recorded and applied when it is.
        if (payment.status !== 'succeeded') return 'refund_recorded';
        payment = await settleReversals(trx, payment);
        await runHandlers(trx, 'payment.refunded', payment, notices);
        notice(notices, 'payment.refunded', payment, {
          refundedAmount: String(payment.refunded_amount),
          balance: (await balanceOf(trx, payment))?.toString() ?? null,
        });
        return 'refunded';
      }
      case 'refund_reversed': {
        if (BigInt(payment.refunded_amount) === 0n) return 'ignored';
        payment = await paymentsStore.updatePayment(trx, payment.id, {
          refunded_amount: '0',
          updated_at: now,
        });
        if (payment.status !== 'succeeded') return 'refund_reversal_recorded';
        const before = BigInt(payment.reversed_credits) - BigInt(payment.restored_credits);
        payment = await settleReversals(trx, payment, 'payments.refund_reversed');
        if (BigInt(payment.reversed_credits) - BigInt(payment.restored_credits) !== before)
          notice(notices, 'payment.refunded', payment, {
            refundedAmount: '0',
            refundReversed: true,
            balance: (await balanceOf(trx, payment))?.toString() ?? null,
          });
        return 'refund_reversed';
      }
      case 'disputed': {
        references([change.disputeId]);
        const current = await paymentsStore.lockDispute(trx, provider, change.disputeId);
        // By state: an older event, or anything after won or lost, changes nothing.
        if (
          current !== undefined &&
          (new Date(current.state_at) > event.occurredAt ||
            current.status === 'won' ||
            current.status === 'lost')
        )
          return 'stale';
        await paymentsStore.upsertDispute(trx, {
          provider,
          dispute_id: change.disputeId,
          payment_id: payment.id,
          amount: change.amount.toString(),
          status: change.status,
          state_at: event.occurredAt,
        });
        if (payment.status !== 'succeeded') return 'dispute_recorded';
        const before = BigInt(payment.reversed_credits) - BigInt(payment.restored_credits);
        payment = await settleReversals(trx, payment);
        const after = BigInt(payment.reversed_credits) - BigInt(payment.restored_credits);
        if (after !== before)
          notice(notices, 'payment.refunded', payment, {
            refundedAmount: String(payment.refunded_amount),
            disputeId: change.disputeId,
            disputeStatus: change.status,
            balance: (await balanceOf(trx, payment))?.toString() ?? null,
          });
        return `dispute_${change.status}`;
      }
      case 'subscription': {
        references([change.subscriptionId]);
        const current = await paymentsStore.lockSubscription(trx, provider, change.subscriptionId);
        // By state, not arrival: an older event, or anything after cancellation (unless the
        // store resumes subscriptions that ended), changes nothing.
        if (
          current !== undefined &&
          (new Date(current.state_at) > event.occurredAt ||
            (current.status === 'canceled' && change.resumable !== true))
        )
          return 'stale';
        await paymentsStore.upsertSubscription(trx, {
          id: current?.id ?? randomUUID(),
          user_id: payment.user_id,
          provider,
          provider_subscription_id: change.subscriptionId,
          product_id: payment.product_id ?? '',
          status: change.status,
          current_period_end: change.currentPeriodEnd,
          cancel_at_period_end: change.cancelAtPeriodEnd,
          state_at: event.occurredAt,
          created_at: now,
          updated_at: now,
        });
        if (payment.provider_subscription_id === null)
          await paymentsStore.updatePayment(trx, payment.id, {
            provider_subscription_id: change.subscriptionId,
          });
        return `subscription_${change.status}`;
      }
      case 'renewal': {
        references([change.subscriptionId, change.invoiceId]);
        const renewal = renewalOf(payment, change, event, now);
        // The invoice's own payment, which its refunds and disputes reverse: one statement when
        // it is new; one a refund or dispute delivered first recorded is marked paid now. The
        // same statement finishes the event (its outcome is known: 'granted').
        const inserted = await statements.insertPaidInvoiceAndFinish.executeTakeFirst(
          {
            ...renewal.row,
            tenantId: payment.tenant_id,
            now: now.toISOString(),
            outcome: 'granted',
            references: textArray(learnedReferences),
          },
          trx,
        );
        finished.recorded = true;
        const balance = await credit(
          trx,
          payment,
          renewal.grantId,
          BigInt(payment.credits),
          'payments.subscription_grant',
        );
        await finishRenewal(trx, renewal, inserted !== undefined, balance, notices);
        return 'granted';
      }
      case 'renewal_failed': {
        await runHandlers(trx, 'payment.failed', payment, notices);
        notice(notices, 'payment.failed', payment, { invoiceId: change.invoiceId });
        return 'renewal_failed';
      }
    }
  }

  /**
   * What a subscription's paid invoice writes: the invoice's payment row (paid) and its grant's
   * ledger id, one per paid invoice whatever event carried it.
   */
  function renewalOf(
    payment: PaymentRow,
    change: Extract<PaymentChange, { kind: 'renewal' }>,
    event: VerifiedEvent,
    now: Date,
  ) {
    const grantId = `payments:${payment.id}:grant:${change.invoiceId}`;
    const credited = BigInt(payment.credits) > 0n && payment.user_id !== null && payment.unit !== null;
    return {
      payment,
      change,
      grantId,
      credited,
      paid: {
        status: 'succeeded',
        settled_at: event.occurredAt,
        updated_at: now,
        transfer_id: credited ? grantId : null,
      },
      row: {
        id: randomUUID(),
        userId: payment.user_id,
        provider: payment.provider,
        invoiceId: change.invoiceId,
        productId: payment.product_id,
        amount: (change.amount ?? BigInt(payment.amount)).toString(),
        currency: payment.currency,
        credits: String(payment.credits),
        unit: payment.unit,
        transferId: credited ? grantId : null,
        subscriptionId: payment.provider_subscription_id,
        customerId: payment.provider_customer_id,
        parentId: payment.id,
        settledAt: event.occurredAt.toISOString(),
        eventId: event.eventId,
      },
    };
  }

  /**
   * A renewal after its invoice's row was written and its grant posted: an invoice payment a
   * refund or dispute delivered first recorded (not `inserted` now) is marked paid and its
   * reversal applied; then the app's handlers, and the buyer's message with the new balance.
   */
  async function finishRenewal(
    trx: Transaction<PaymentsTables>,
    { payment, change, paid }: ReturnType<typeof renewalOf>,
    inserted: boolean,
    balance: bigint | undefined,
    notices: Notice[],
  ) {
    let reversedBalance: bigint | undefined;
    if (!inserted) {
      const recorded = await paymentsStore.findInvoicePayment(trx, payment.id, {
        invoiceId: change.invoiceId,
      });
      if (recorded !== undefined && recorded.status !== 'succeeded') {
        const updated = await paymentsStore.updatePayment(trx, recorded.id, paid);
        const settled = await settleReversals(trx, updated);
        if (settled.reversed_credits !== updated.reversed_credits)
          reversedBalance = await balanceOf(trx, settled);
      }
    }
    await runHandlers(trx, 'payment.succeeded', payment, notices);
    notice(notices, 'payment.succeeded', payment, {
      invoiceId: change.invoiceId,
      credits: String(payment.credits),
      balance: (reversedBalance ?? balance)?.toString() ?? null,
    });
  }

  /** The payment row of a subscription's invoice, before it is inserted (pending). */
  function invoicePaymentRow(
    subscription: PaymentRow,
    invoiceId: string,
    amount: bigint | undefined,
    now: Date,
  ): NewPaymentRow & { parent_payment_id: string } {
    return {
      ...pendingPayment(
        {
          id: randomUUID(),
          user_id: subscription.user_id,
          provider: subscription.provider,
          provider_reference: invoiceId,
          kind: 'subscription_invoice',
          product_id: subscription.product_id,
          order_id: null,
          amount: (amount ?? BigInt(subscription.amount)).toString(),
          currency: subscription.currency,
          credits: String(subscription.credits),
          unit: subscription.unit,
        },
        now,
      ),
      provider_subscription_id: subscription.provider_subscription_id,
      provider_customer_id: subscription.provider_customer_id,
      parent_payment_id: subscription.id,
    };
  }

  /**
   * The payment of the subscription invoice a refunded or disputed charge paid, locked: found by
   * its PaymentIntent or invoice id; recorded pending when the charge's event comes before the
   * invoice's `invoice.paid` (which then grants and reverses at once). Undefined when nothing
   * here names the invoice (the provider did not say which it was).
   */
  async function invoicePaymentOf(
    trx: Transaction<PaymentsTables>,
    subscription: PaymentRow,
    change: Extract<PaymentChange, { kind: 'refunded' | 'disputed' }>,
    occurredAt: Date,
  ): Promise<PaymentRow | undefined> {
    if (change.providerPaymentId === undefined && change.invoiceId === undefined) return undefined;
    const found = await paymentsStore.findInvoicePayment(trx, subscription.id, {
      invoiceId: change.invoiceId,
      providerPaymentId: change.providerPaymentId,
    });
    const learned =
      change.providerPaymentId === undefined ? {} : { provider_payment_id: change.providerPaymentId };
    if (found !== undefined)
      return found.provider_payment_id === null && change.providerPaymentId !== undefined
        ? paymentsStore.updatePayment(trx, found.id, learned)
        : found;
    if (change.invoiceId === undefined) return undefined;
    return paymentsStore.insertPayment(trx, {
      ...invoicePaymentRow(subscription, change.invoiceId, change.invoiceAmount, occurredAt),
      ...learned,
    });
  }

  /** Tells the store an applied purchase was delivered, when it asks to be told. */
  async function acknowledge(event: VerifiedEvent, paymentId: string) {
    if (event.acknowledge === undefined) return;
    try {
      await event.acknowledge();
    } catch (error) {
      // Applied already; the next delivery or post of this purchase acknowledges it again.
      log.warn({ err: error, paymentId }, 'Store purchase could not be acknowledged');
    }
  }

  async function publish(notices: readonly Notice[]) {
    for (const item of notices) {
      try {
        if ('afterCommit' in item) await item.afterCommit();
        else if (options.realtime !== undefined)
          await options.realtime.publish({
            channel: `private-user-${item.userId}`,
            event: item.event,
            data: item.data,
          });
      } catch (error) {
        // The event is committed: a lost message is not a lost payment (the client can re-read).
        log.warn(
          { err: error, event: 'event' in item ? item.event : 'afterCommit' },
          'Payment message could not be published',
        );
      }
    }
  }

  /**
   * Whether applying an event on a remembered route failed because the route is gone: its
   * organization was deleted (the event's row names it: foreign key violation, 23503) or its
   * payment with it.
   */
  const isGoneRoute = (error: unknown): boolean =>
    (isSocleError(error) && error.code === 'payments.unknown_event') ||
    (error as { code?: unknown } | null)?.code === '23503';

  /**
   * Tells the consoles watching (the operator's, the organization's admins') that an event was
   * applied or failed, after its commit: their payments page reads the list again, no reload.
   */
  const tellConsole = async (
    provider: string,
    event: VerifiedEvent,
    route: PaymentRoute,
    status: 'applied' | 'failed',
  ): Promise<void> => {
    await options.realtime?.notifyConsole({
      event: 'payments',
      orgId: route.tenant_id,
      data: { provider, eventId: event.eventId, status },
    });
  };

  /**
   * Keeps the failure of an event whose transaction rolled back, in a transaction of its own
   * (nothing is written on success), and gives the error back to throw.
   */
  const keptFailure = async (
    provider: string,
    event: VerifiedEvent,
    route: PaymentRoute,
    error: unknown,
  ): Promise<unknown> => {
    await failures.record(provider, event, route, error);
    options.eventsApplied.inc({ provider, outcome: 'failed' });
    await tellConsole(provider, event, route, 'failed');
    return error;
  };

  /** Stores and applies a verified event in the organization of `route` (see receiveEvent). */
  async function applyOnRoute(
    provider: string,
    event: VerifiedEvent,
    route: PaymentRoute,
  ): Promise<ReceivedEvent> {
    const notices: Notice[] = [];
    const result = await db.transaction(
      async (trx) => {
        const payment = await statements.storeEventAndLockPayment.executeTakeFirst(
          {
            provider,
            eventId: event.eventId,
            type: event.type,
            paymentId: route.payment_id,
            occurredAt: event.occurredAt.toISOString(),
            receivedAt: clock.now().toISOString(),
            payload: JSON.stringify(event.payload),
          },
          trx,
        );
        if (payment === undefined) {
          // Stored before (a replay, or a concurrent copy that committed first), or no payment.
          if ((await paymentsStore.findPayment(trx, route.payment_id)) === undefined)
            throw paymentsErrors.unknownEvent(provider, 'its payment does not exist');
          return { duplicate: true, outcome: 'duplicate' };
        }
        const learned: string[] = [];
        const finished = { recorded: false };
        const outcome = await apply(trx, provider, event, payment, notices, learned, finished);
        if (!finished.recorded)
          await statements.finishEvent.execute(
            {
              provider,
              eventId: event.eventId,
              outcome,
              tenantId: payment.tenant_id,
              paymentId: payment.id,
              references: textArray(learned),
            },
            trx,
          );
        return { duplicate: false, outcome };
      },
      { settings: tenantSettings({ tenantId: route.tenant_id }) },
    );
    options.eventsApplied.inc({ provider, outcome: result.outcome });
    if (!result.duplicate) await tellConsole(provider, event, route, 'applied');
    await publish(notices);
    return { ...result, paymentId: route.payment_id };
  }

  /**
   * Receives an event and then each event it tells along (`related`), each once by its own id:
   * duplicate when all were; the outcomes of those applied, joined by `+`. With `paymentId` (a
   * store purchase claimed), every event is about that payment.
   */
  async function receiveWithRelated(
    provider: string,
    event: VerifiedEvent,
    paymentId?: string,
  ): Promise<ReceivedEvent> {
    const { related, ...first } = event;
    const about = (one: VerifiedEvent) => (paymentId === undefined ? one : { ...one, paymentId });
    const received = await service.receiveEvent(provider, about(first));
    if (related === undefined || related.length === 0) return received;
    const results = [received];
    for (const next of related) results.push(await service.receiveEvent(provider, about(next)));
    const applied = results.filter((result) => !result.duplicate);
    return {
      paymentId: received.paymentId,
      duplicate: applied.length === 0,
      outcome: applied.length === 0 ? received.outcome : applied.map((result) => result.outcome).join('+'),
    };
  }

  /** Events waiting for a transaction, by organization (see applyCoalesced). */
  const eventQueues = new Map<string, EventQueue>();
  /**
   * Organizations with events waiting and a transaction of their own to spare, in the order they
   * became so: each takes the next free slot under `eventTransactionsMax`, then goes to the back.
   */
  const readyQueues: EventQueue[] = [];
  /** Event transactions begun (session asked for) and not ended, all organizations together. */
  let eventTransactions = 0;
  /** Events waiting in the coalescer for a transaction, all organizations together. */
  let eventsWaiting = 0;
  const eventTransactionsMax = Math.max(1, options.eventTransactionsMax);
  options.metrics.gauge({
    name: 'socle_payments_event_transactions',
    help: 'Payment event transactions in flight (running, at most PAYMENTS_EVENT_TRANSACTIONS_MAX) and events waiting for one (waiting)',
    labelNames: ['state'],
    collect: (set) => {
      set({ state: 'running' }, eventTransactions);
      set({ state: 'waiting' }, eventsWaiting);
    },
  });

  /**
   * Stores and applies a verified event in the organization of `route`, coalesced with the
   * concurrent ones of that organization. Natural batching, as the ledger coalesces single
   * transfers (and TigerBeetle's clients do): while fewer than EVENTS_IN_FLIGHT transactions of
   * the organization's events are in flight, an event goes at once, alone (applyOnRoute: no added
   * latency at low load); events that arrive meanwhile wait and go together, up to
   * EVENTS_PER_TRANSACTION, in ONE transaction (applyTogether): one BEGIN, one set of tenant
   * settings, one insert of all the events, one commit (one WAL flush) for all of them. Each
   * caller is answered once its event is committed, with its own outcome.
   *
   * All organizations together have at most `eventTransactionsMax` transactions in flight (about
   * half the request pool): in a burst of many organizations the wait is here, where each
   * organization's events pile up and then go in one transaction, and not in the database pool,
   * where each would hold its own place in the line (and a session each) and nothing batches.
   * Organizations take the free slots in turn (first ready, first served; then to the back).
   *
   * Organizations are never mixed in one transaction: its tenant settings are what row-level
   * security checks every row against.
   */
  function applyCoalesced(
    provider: string,
    event: VerifiedEvent,
    route: PaymentRoute,
  ): Promise<ReceivedEvent> {
    const key = route.tenant_id;
    let queue = eventQueues.get(key);
    if (queue === undefined) {
      queue = { key, waiting: [], inFlight: 0, ready: false };
      eventQueues.set(key, queue);
    }
    const waiting = queue.waiting;
    const promise = new Promise<ReceivedEvent>((resolve, reject) => {
      waiting.push({ provider, event, route, resolve, reject });
    });
    eventsWaiting++;
    markReady(queue);
    startEventTransactions();
    return promise;
  }

  /** Puts `queue` in line for a slot if it has events waiting and a transaction to spare. */
  function markReady(queue: EventQueue): void {
    if (queue.ready || queue.waiting.length === 0 || queue.inFlight >= EVENTS_IN_FLIGHT) return;
    queue.ready = true;
    readyQueues.push(queue);
  }

  /**
   * Starts a transaction for each organization in line while slots are free. The batch is taken
   * when the slot is given, so what arrived while the organization waited goes together.
   */
  function startEventTransactions(): void {
    while (eventTransactions < eventTransactionsMax && readyQueues.length > 0) {
      const queue = readyQueues.shift() as EventQueue;
      queue.ready = false;
      const batch = queue.waiting.splice(0, EVENTS_PER_TRANSACTION);
      if (batch.length === 0) continue;
      eventsWaiting -= batch.length;
      queue.inFlight++;
      eventTransactions++;
      markReady(queue); // more than one batch waiting: in line again, behind the others
      void applyQueued(batch)
        // applyQueued settles each caller itself; were it to throw, no caller is left waiting.
        .catch((error: unknown) => {
          for (const queued of batch) queued.reject(error);
        })
        .finally(() => {
          queue.inFlight--;
          eventTransactions--;
          markReady(queue);
          if (queue.inFlight === 0 && queue.waiting.length === 0) eventQueues.delete(queue.key);
          startEventTransactions();
        });
    }
  }

  /** Applies `batch` (alone, or together), settling each caller with its own answer. */
  async function applyQueued(batch: readonly QueuedEvent[]): Promise<void> {
    const alone = (queued: QueuedEvent) =>
      applyOnRoute(queued.provider, queued.event, queued.route).then(queued.resolve, queued.reject);
    if (batch.length === 1) {
      await alone(batch[0] as QueuedEvent);
      return;
    }
    let answers: (ReceivedEvent | Error)[];
    try {
      answers = await applyTogether(batch);
    } catch (error) {
      log.debug({ err: error, events: batch.length }, 'Payment events failed together: each applied alone');
      // Nothing of the transaction remains (it rolled back): each event goes alone, so the one
      // that failed gets its error (and its failure is kept) and the others their outcomes. One
      // after the other, in this batch's slot: the cap on transactions in flight still holds.
      for (const queued of batch) await alone(queued);
      return;
    }
    for (const [index, queued] of batch.entries()) {
      const answer = answers[index] as ReceivedEvent | Error;
      if (answer instanceof Error) queued.reject(answer);
      else queued.resolve(answer);
    }
  }

  /**
   * Events of one organization applied in one transaction, each decided on its own by its
   * object's state exactly as alone (applyOnRoute): one statement stores them all and locks
   * their payments; the renewals (`invoice.paid`, the bulk of a busy endpoint's events) are
   * written with set-based statements (their invoices' rows in one statement, their grants in one
   * `ledger.post_transfers`); other events are applied one after the other in the same
   * transaction. The same event twice in the batch is applied once (the copy answers
   * `duplicate`, as a concurrent copy alone would). Anything failing throws, and the transaction
   * rolls back whole (the caller then applies each alone). Realtime messages and `afterCommit`
   * work run per event after the commit.
   */
  async function applyTogether(batch: readonly QueuedEvent[]): Promise<(ReceivedEvent | Error)[]> {
    const tenantId = (batch[0] as QueuedEvent).route.tenant_id;
    const eventKey = (provider: string, eventId: string) => `${provider}\n${eventId}`;
    /** The index of each event's first copy in the batch (itself when it is the first). */
    const firstCopy = new Map<string, number>();
    const firsts: number[] = [];
    for (const [index, queued] of batch.entries()) {
      const key = eventKey(queued.provider, queued.event.eventId);
      if (firstCopy.has(key)) continue;
      firstCopy.set(key, index);
      firsts.push(index);
    }
    const notices: Notice[][] = batch.map(() => []);
    const now = clock.now();
    const answers = await db.transaction(
      async (trx) => {
        const unique = firsts.map((index) => batch[index] as QueuedEvent);
        const lockedRows = await statements.storeEventsAndLockPayments.execute(
          {
            providers: textArray(unique.map((queued) => queued.provider)),
            eventIds: textArray(unique.map((queued) => queued.event.eventId)),
            types: textArray(unique.map((queued) => queued.event.type)),
            paymentIds: textArray(unique.map((queued) => queued.route.payment_id)),
            occurredAt: textArray(unique.map((queued) => queued.event.occurredAt.toISOString())),
            payloads: textArray(unique.map((queued) => JSON.stringify(queued.event.payload))),
            receivedAt: now.toISOString(),
          },
          trx,
        );
        const locked = new Map<string, PaymentRow>();
        for (const { event_provider, event_id, ...payment } of lockedRows)
          locked.set(eventKey(event_provider, event_id), payment as PaymentRow);
        const outcomes: (ReceivedEvent | Error | undefined)[] = batch.map(() => undefined);
        // Not stored now: stored before (a replay, or a concurrent copy committed first), or
        // naming a payment that does not exist (that event's own error, not the batch's).
        const notStored = firsts.filter((index) => {
          const queued = batch[index] as QueuedEvent;
          return !locked.has(eventKey(queued.provider, queued.event.eventId));
        });
        if (notStored.length > 0) {
          const existing = new Set(
            (
              await trx
                .selectFrom('payments.payments')
                .select('id')
                .where('id', 'in', [
                  ...new Set(notStored.map((index) => (batch[index] as QueuedEvent).route.payment_id)),
                ])
                .execute()
            ).map((row) => row.id),
          );
          for (const index of notStored) {
            const queued = batch[index] as QueuedEvent;
            outcomes[index] = existing.has(queued.route.payment_id)
              ? { duplicate: true, outcome: 'duplicate', paymentId: queued.route.payment_id }
              : paymentsErrors.unknownEvent(queued.provider, 'its payment does not exist');
          }
        }
        const stored = firsts.filter((index) => outcomes[index] === undefined);
        const renewals = stored.filter(
          (index) => (batch[index] as QueuedEvent).event.change.kind === 'renewal',
        );
        if (renewals.length > 0) {
          await applyRenewals(
            trx,
            tenantId,
            now,
            renewals.map((index) => {
              const queued = batch[index] as QueuedEvent;
              return {
                event: queued.event,
                payment: locked.get(eventKey(queued.provider, queued.event.eventId)) as PaymentRow,
                notices: notices[index] as Notice[],
              };
            }),
          );
          for (const index of renewals)
            outcomes[index] = {
              duplicate: false,
              outcome: 'granted',
              paymentId: (batch[index] as QueuedEvent).route.payment_id,
            };
        }
        // The others one after the other, as alone; a payment an earlier one changed is read again.
        const changed = new Set<string>();
        for (const index of stored) {
          if (outcomes[index] !== undefined) continue;
          const queued = batch[index] as QueuedEvent;
          let payment = locked.get(eventKey(queued.provider, queued.event.eventId)) as PaymentRow;
          if (changed.has(payment.id))
            payment = (await paymentsStore.findPayment(trx, payment.id)) as PaymentRow;
          changed.add(payment.id);
          const learned: string[] = [];
          const finished = { recorded: false };
          const outcome = await apply(
            trx,
            queued.provider,
            queued.event,
            payment,
            notices[index] as Notice[],
            learned,
            finished,
          );
          if (!finished.recorded)
            await statements.finishEvent.execute(
              {
                provider: queued.provider,
                eventId: queued.event.eventId,
                outcome,
                tenantId: payment.tenant_id,
                paymentId: payment.id,
                references: textArray(learned),
              },
              trx,
            );
          outcomes[index] = { duplicate: false, outcome, paymentId: queued.route.payment_id };
        }
        return outcomes;
      },
      { settings: tenantSettings({ tenantId }) },
    );
    const results: (ReceivedEvent | Error)[] = [];
    for (const [index, queued] of batch.entries()) {
      const first = firstCopy.get(eventKey(queued.provider, queued.event.eventId)) as number;
      const answer = answers[first] as ReceivedEvent | Error;
      if (first !== index) {
        // A copy of an event earlier in the batch: as a concurrent copy alone, a duplicate.
        results.push(
          answer instanceof Error
            ? answer
            : { duplicate: true, outcome: 'duplicate', paymentId: queued.route.payment_id },
        );
        if (!(answer instanceof Error))
          options.eventsApplied.inc({ provider: queued.provider, outcome: 'duplicate' });
        continue;
      }
      results.push(answer);
      if (answer instanceof Error) continue;
      options.eventsApplied.inc({ provider: queued.provider, outcome: answer.outcome });
      if (!answer.duplicate) await tellConsole(queued.provider, queued.event, queued.route, 'applied');
      await publish(notices[index] as Notice[]);
    }
    return results;
  }

  /**
   * Renewals stored together (see applyTogether), set-based: their invoices' payments and their
   * events' outcomes in one statement, their grants in one `ledger.post_transfers`, then each
   * one's remainder (a reversal recorded before its invoice was paid, the app's handlers, the
   * buyer's message) as alone. A grant the ledger refuses throws (the batch rolls back).
   */
  async function applyRenewals(
    trx: Transaction<PaymentsTables>,
    tenantId: string,
    now: Date,
    items: readonly { event: VerifiedEvent; payment: PaymentRow; notices: Notice[] }[],
  ): Promise<void> {
    const renewals = items.map(({ event, payment }) =>
      renewalOf(payment, event.change as Extract<PaymentChange, { kind: 'renewal' }>, event, now),
    );
    const column = (pick: (row: (typeof renewals)[number]['row']) => string | null) =>
      textArray(renewals.map((renewal) => pick(renewal.row)));
    const inserted = new Set(
      (
        await statements.insertPaidInvoicesAndFinish.execute(
          {
            ids: column((row) => row.id),
            userIds: column((row) => row.userId),
            providers: column((row) => row.provider),
            invoiceIds: column((row) => row.invoiceId),
            productIds: column((row) => row.productId),
            amounts: column((row) => row.amount),
            currencies: column((row) => row.currency),
            credits: column((row) => row.credits),
            units: column((row) => row.unit),
            transferIds: column((row) => row.transferId),
            subscriptionIds: column((row) => row.subscriptionId),
            customerIds: column((row) => row.customerId),
            parentIds: column((row) => row.parentId),
            settledAt: column((row) => row.settledAt),
            eventIds: column((row) => row.eventId),
            learnedSubscriptions: textArray(renewals.map((renewal) => renewal.change.subscriptionId ?? null)),
            tenantId,
            now: now.toISOString(),
          },
          trx,
        )
      ).map((row) => row.id),
    );
    // The grants, from each organization's source to each buyer's wallet: one statement per book
    // (a unit held outside organizations is posted in the ledger's platform book, see ProductBook).
    const grants: { index: number; wallet: string; platform: boolean; operation: TransferOperation }[] = [];
    for (const [index, renewal] of renewals.entries()) {
      const { payment } = renewal;
      if (!renewal.credited) continue;
      const unit = payment.unit as string;
      const accounts = await walletsOf(
        trx,
        payment.tenant_id,
        [payment.user_id as string, SOURCE_OWNER],
        unit,
      );
      const wallet = accounts.get(payment.user_id as string) as string;
      grants.push({
        index,
        wallet,
        platform: catalog.inPlatformBook(unit),
        operation: {
          id: renewal.grantId,
          debitAccountId: accounts.get(SOURCE_OWNER) as string,
          creditAccountId: wallet,
          amount: BigInt(payment.credits),
          code: 'payments.subscription_grant',
          metadata: { paymentId: payment.id, productId: payment.product_id },
        },
      });
    }
    const balances = new Map<number, bigint>();
    const postGrants = async (group: typeof grants) => {
      if (group.length === 0) return;
      const posted = await ledger.transfersWithBalances(
        trx,
        group.map((grant) => grant.operation),
      );
      for (const [at, grant] of group.entries()) {
        const answer = posted[at];
        if (answer === undefined || answer instanceof Error) throw answer ?? new Error('grant not posted');
        // Posted now: the ledger says the new balance; a replay (posted before) changed nothing.
        balances.set(
          grant.index,
          (answer.balances.get(grant.wallet) ?? (await ledger.balance(trx, grant.wallet))).posted,
        );
      }
    };
    await postGrants(grants.filter((grant) => !grant.platform));
    const inPlatform = grants.filter((grant) => grant.platform);
    if (inPlatform.length > 0) await ledger.inPlatformBook(trx, () => postGrants(inPlatform));
    for (const [index, renewal] of renewals.entries())
      await finishRenewal(
        trx,
        renewal,
        inserted.has(renewal.row.id),
        balances.get(index),
        (items[index] as (typeof items)[number]).notices,
      );
  }

  const service = {
    catalog,

    /**
     * The person's wallet in `unit` in the transaction's organization: the ledger account packs,
     * store purchases and subscriptions credit (and refunds reverse), opened empty when first
     * asked. An app keeps its own movements of that unit (spends, grants) on the same account.
     * Open it in a transaction acting as the person (or for a member of the organization). For a
     * unit of `book: 'platform'` products it is the person's account outside organizations (the
     * ledger's platform book, `ledger.platformAccountOf(trx, { userId, unit, code: 'wallet' })`),
     * whatever organization the transaction acts for.
     *
     * @example
     * const walletId = await payments.wallet(trx, userId, 'coins');
     */
    wallet: <Tables>(trx: Transaction<Tables>, userId: string, unit: string): Promise<string> =>
      walletOf(trx as unknown as Transaction<PaymentsTables>, undefined, userId, unit),

    /** The enabled providers' names. */
    providers: () => [...providers.keys()],

    /**
     * Runs `handler` inside the transaction that records each matching provider event, after its
     * ledger effect: an app marks its order paid in the same commit, or throws to refuse it all.
     *
     * @example
     * payments.on('payment.succeeded', async (trx, payment) => {
     *   if (payment.orderId?.startsWith('appointment:')) await markPaid(trx, payment.orderId);
     * });
     */
    on(name: PaymentEventName, handler: PaymentHandler): void {
      handlers.set(name, [...(handlers.get(name) ?? []), handler]);
    },

    /**
     * Opens a checkout at the provider for a product of the catalog, for the signed-in person in
     * the current organization. The payment row is written first (pending), so the provider's
     * events always find it.
     */
    async createCheckout(input: {
      readonly orgId: string;
      readonly userId: string;
      readonly productId: string;
      readonly provider?: string | undefined;
      readonly successUrl: string;
      readonly cancelUrl: string;
      readonly email?: string | undefined;
    }): Promise<Payment> {
      const product: Product | undefined = catalog.product(input.productId);
      if (product === undefined) throw paymentsErrors.productNotFound(input.productId);
      const provider = providerNamed(input.provider ?? [...providers.keys()][0] ?? 'stripe', 'body/provider');
      if (provider.createCheckout === undefined)
        throw paymentsErrors.invalidInput(
          'payments.no_checkout',
          'body/provider',
          'does not offer checkouts',
        );
      const id = randomUUID();
      const now = clock.now();
      const customerId = await db.transaction(async (trx) => {
        // The buyer's wallet is opened now, by the buyer (this transaction acts as them): the
        // paid webhook acts for nobody, and the ledger opens a person's account in an
        // organization only for a member or for themself (a game's players are not members).
        await walletOf(trx, input.orgId, input.userId, product.unit);
        await paymentsStore.insertPayment(
          trx,
          pendingPayment(
            {
              id,
              user_id: input.userId,
              provider: provider.name,
              provider_reference: `pending:${id}`,
              kind: product.kind,
              product_id: product.id,
              order_id: null,
              amount: String(product.price),
              currency: product.currency,
              credits: String(product.credits),
              unit: product.unit,
            },
            now,
          ),
        );
        await paymentsStore.addReferences(trx, [
          { provider: provider.name, reference: id, tenant_id: input.orgId, payment_id: id },
        ]);
        return paymentsStore.latestCustomer(trx, input.userId, provider.name);
      });
      const created = await provider.createCheckout({
        paymentId: id,
        orgId: input.orgId,
        userId: input.userId,
        product,
        successUrl: input.successUrl,
        cancelUrl: input.cancelUrl,
        customerId,
        email: input.email,
      });
      const row = await db.transaction(async (trx) => {
        await paymentsStore.addReferences(trx, [
          { provider: provider.name, reference: created.reference, tenant_id: input.orgId, payment_id: id },
        ]);
        return paymentsStore.updatePayment(trx, id, {
          provider_reference: created.reference,
          checkout_url: created.url,
          expires_at: created.expiresAt ?? null,
          ...(created.customerId === undefined ? {} : { provider_customer_id: created.customerId }),
          updated_at: clock.now(),
        });
      });
      return toPayment(row);
    },

    /**
     * Opens an invoice at a Bitcoin processor for an app's order, in the current organization:
     * an amount in sats and fiat, an expiry, a BIP21 URI (with Lightning when the processor gives
     * an invoice) and a QR code (`invoiceQrCode`). Settlement, expiry and failure arrive as events
     * applied once, in one transaction, where the app's `on(...)` handlers run.
     *
     * @example
     * const invoice = await payments.createInvoice({ orderId: `appointment:${id}`, amount: 4500n,
     *   currency: 'EUR', userId: patientId, metadata: { appointmentId: id } });
     * // invoice.paymentUri, invoice.amountSats, invoice.expiresAt; payments.invoiceQrCode(invoice, 'svg')
     */
    async createInvoice(input: NewInvoice): Promise<Payment> {
      if (!ORDER_ID.test(input.orderId))
        throw paymentsErrors.invalidInput(
          'payments.invalid_order_id',
          'orderId',
          'must be 1 to 128 of A-Za-z0-9_.:-/',
        );
      const amount = BigInt(input.amount);
      if (amount <= 0n)
        throw paymentsErrors.invalidInput('payments.invalid_amount', 'amount', 'must be positive');
      if (!/^[A-Z]{3}$/.test(input.currency))
        throw paymentsErrors.invalidInput(
          'payments.invalid_currency',
          'currency',
          'must be an ISO 4217 code such as EUR',
        );
      const expiresIn = input.expiresInSeconds ?? DEFAULT_INVOICE_SECONDS;
      if (!Number.isInteger(expiresIn) || expiresIn < 60 || expiresIn > 7 * 86_400)
        throw paymentsErrors.invalidInput(
          'payments.invalid_expiry',
          'expiresInSeconds',
          'must be 60 to 604800',
        );
      const product = input.productId === undefined ? undefined : catalog.product(input.productId);
      if (input.productId !== undefined && (product === undefined || product.kind !== 'pack'))
        throw paymentsErrors.productNotFound(input.productId, 'productId');
      if (options.scope.current()?.tenantId === undefined) throw paymentsErrors.tenantRequired();
      const provider =
        input.provider === undefined
          ? [...providers.values()].find((candidate) => candidate.createInvoice !== undefined)
          : providerNamed(input.provider, 'provider');
      if (provider?.createInvoice === undefined)
        throw paymentsErrors.invalidInput(
          'payments.no_invoices',
          'provider',
          'no enabled provider opens invoices',
        );
      const now = clock.now();
      const row = pendingPayment(
        {
          id: randomUUID(),
          user_id: input.userId ?? null,
          provider: provider.name,
          provider_reference: '',
          kind: 'invoice',
          product_id: product?.id ?? null,
          order_id: input.orderId,
          amount: amount.toString(),
          currency: input.currency,
          credits: String(product?.credits ?? 0),
          unit: product?.unit ?? null,
          metadata: input.metadata ?? {},
        },
        now,
      );
      const existing = await db.transaction(async (trx) => {
        const inserted = await paymentsStore.insertOrderPayment(trx, {
          ...row,
          provider_reference: `pending:${row.id}`,
        });
        if (inserted === undefined) {
          const found = await paymentsStore.findPaymentByOrder(trx, input.orderId);
          if (found === undefined) throw paymentsErrors.orderExists(input.orderId);
          return found;
        }
        await paymentsStore.addReferences(trx, [
          { provider: provider.name, reference: row.id, tenant_id: inserted.tenant_id, payment_id: row.id },
        ]);
        return inserted;
      });
      if (
        existing.id !== row.id &&
        (existing.provider !== provider.name ||
          BigInt(existing.amount) !== amount ||
          existing.currency !== input.currency)
      )
        throw paymentsErrors.orderExists(input.orderId);
      // The same order asked again: its invoice, or (when opening it failed) a new try.
      if (!existing.provider_reference.startsWith('pending:')) return toPayment(existing);
      const created = await provider.createInvoice({
        paymentId: existing.id,
        orgId: existing.tenant_id,
        amount,
        currency: input.currency,
        orderId: input.orderId,
        description: input.description,
        expiresInSeconds: expiresIn,
      });
      const updated = await db.transaction(async (trx) => {
        await paymentsStore.addReferences(trx, [
          {
            provider: provider.name,
            reference: created.reference,
            tenant_id: existing.tenant_id,
            payment_id: existing.id,
          },
        ]);
        return paymentsStore.updatePayment(trx, existing.id, {
          provider_reference: created.reference,
          amount_sats: created.amountSats.toString(),
          payment_uri: created.paymentUri,
          checkout_url: created.checkoutUrl ?? null,
          expires_at: created.expiresAt,
          updated_at: clock.now(),
        });
      });
      return toPayment(updated);
    },

    /**
     * Credits a purchase an app made in a store (StoreKit, Play Billing) once its proof verifies:
     * Apple's signed transaction (JWS checked against Apple's certificate chain) or Play's purchase
     * token (read back from the Android Publisher API). The payment is keyed by the store's id of
     * the purchase, so the same purchase posted again, by any client, or told by the store's
     * notification, is credited once; a revoked or refunded one is reversed. The first account to
     * post a purchase owns it (and the store's account token, when the app set one, must be theirs).
     */
    async claimPurchase(
      providerName: string,
      proof: StorePurchaseProof,
      buyer: { readonly orgId: string; readonly userId: string },
    ): Promise<ReceivedEvent & { readonly payment: Payment }> {
      const provider = providerNamed(providerName);
      if (provider.verifyPurchase === undefined)
        throw paymentsErrors.invalidInput(
          'payments.no_purchases',
          'params/provider',
          'takes no in-app purchases',
        );
      const purchase = await provider.verifyPurchase(proof, {
        isSubscription: (storeProductId) =>
          catalog.storeProduct(provider.name, storeProductId)?.kind === 'subscription',
      });
      const product = catalog.storeProduct(provider.name, purchase.storeProductId);
      if (product === undefined) throw paymentsErrors.productNotFound(purchase.storeProductId, 'body');
      if (purchase.accountToken !== undefined && purchase.accountToken.toLowerCase() !== buyer.userId)
        throw paymentsErrors.purchaseNotYours(provider.name);
      // A purchase replacing another known here (Play's upgrade or downgrade) is its buyer's.
      const replaced =
        purchase.replaces === undefined
          ? undefined
          : await findRoute(provider.name, [purchase.replaces.reference]);
      if (replaced !== undefined) {
        const previous = await db.transaction((trx) => paymentsStore.findPayment(trx, replaced.payment_id), {
          settings: tenantSettings({ tenantId: replaced.tenant_id }),
        });
        if (replaced.tenant_id !== buyer.orgId || previous?.user_id !== buyer.userId)
          throw paymentsErrors.purchaseNotYours(provider.name);
      }
      const now = clock.now();
      const row = pendingPayment(
        {
          id: randomUUID(),
          user_id: buyer.userId,
          provider: provider.name,
          provider_reference: purchase.reference,
          kind: product.kind,
          product_id: product.id,
          order_id: null,
          amount: String(product.price),
          currency: product.currency,
          credits: String(product.credits),
          unit: product.unit,
        },
        now,
      );
      let route = await findRoute(provider.name, [purchase.reference]);
      if (route === undefined) {
        // Never credited here and already taken back by the store: nothing to record.
        if (purchase.event.change.kind === 'revoked') throw paymentsErrors.purchaseRevoked(provider.name);
        await db.transaction(
          async (trx) => {
            const inserted = await paymentsStore.insertPaymentOnce(trx, row);
            // Opened by the buyer, as at checkout: the store's notifications act for nobody.
            if (inserted !== undefined) await walletOf(trx, buyer.orgId, buyer.userId, product.unit);
            if (inserted !== undefined)
              await paymentsStore.addReferences(trx, [
                {
                  provider: provider.name,
                  reference: purchase.reference,
                  tenant_id: buyer.orgId,
                  payment_id: row.id,
                },
              ]);
          },
          { settings: tenantSettings({ tenantId: buyer.orgId, userId: buyer.userId }) },
        );
        route = await findRoute(provider.name, [purchase.reference]);
      }
      if (route === undefined) throw new Error(`the ${provider.name} purchase has no payment`);
      const { tenant_id: tenantId, payment_id: paymentId } = route;
      const owner = await db.transaction((trx) => paymentsStore.findPayment(trx, paymentId), {
        settings: tenantSettings({ tenantId }),
      });
      if (tenantId !== buyer.orgId || owner?.user_id !== buyer.userId)
        throw paymentsErrors.purchaseNotYours(provider.name);
      const result = await receiveWithRelated(provider.name, purchase.event, paymentId);
      // Then the replaced purchase's subscription ends (once: its event's own id).
      if (replaced !== undefined && purchase.replaces !== undefined)
        await service.receiveEvent(provider.name, purchase.replaces.event);
      const payment = await db.transaction((trx) => paymentsStore.findPayment(trx, paymentId), {
        settings: tenantSettings({ tenantId }),
      });
      if (payment === undefined) throw paymentsErrors.paymentNotFound(paymentId);
      await acknowledge(purchase.event, paymentId);
      return { ...result, payment: toPayment(payment) };
    },

    /**
     * The QR code of an invoice's payment URI: PNG bytes or SVG text; 404 for a payment without one.
     * Given the payment itself (what `createInvoice` or `payment` returned) rather than its id, it
     * reads nothing from the database: a hold that just opened its invoice saves a session lease.
     */
    async invoiceQrCode(
      paymentOrId: string | Pick<Payment, 'id' | 'paymentUri'>,
      format: 'png' | 'svg',
    ): Promise<Buffer | string> {
      const payment = typeof paymentOrId === 'string' ? await service.payment(paymentOrId) : paymentOrId;
      if (payment.paymentUri === null) throw paymentsErrors.paymentNotFound(payment.id);
      // A payment's URI never changes: its image is drawn once (a PNG of a BIP21 URI with its
      // Lightning invoice is ~15 ms of CPU) and a wallet screen that polls it costs a lookup.
      const key = `${format} ${payment.paymentUri}`;
      let image = qrCodes.get(key);
      if (image === undefined) {
        image = paymentQrCode(payment.paymentUri, format);
        if (qrCodes.size >= QR_CODES_MAX) qrCodes.delete(qrCodes.keys().next().value as string);
        qrCodes.set(key, image);
        image.catch(() => qrCodes.delete(key));
      }
      return image;
    },

    /**
     * Verifies a webhook with its provider, then stores it and applies it (see
     * {@link receiveEvent}). 400 and nothing stored when it does not verify.
     */
    async receiveWebhook(
      providerName: string,
      rawBody: Buffer,
      headers: Readonly<Record<string, string | string[] | undefined>>,
      query: Readonly<Record<string, string>> = {},
    ): Promise<ReceivedEvent> {
      const provider = providerNamed(providerName);
      const event = await provider.verifyWebhook(rawBody, headers, query);
      const received = await receiveWithRelated(provider.name, event);
      await acknowledge(event, received.paymentId);
      return received;
    },

    /**
     * Stores a verified event and applies its effect in one transaction, in the organization of
     * the payment it names; once per (provider, event id) whatever the replays, races and order.
     * The buyer is told on `private-user-{userId}` after the commit.
     */
    async receiveEvent(provider: string, received: VerifiedEvent): Promise<ReceivedEvent> {
      let event = received;
      const referencesOf = (known: VerifiedEvent) => [
        ...(known.paymentId === undefined ? [] : [known.paymentId]),
        ...known.references,
      ];
      const remembered = referencesOf(event)
        .map((reference) => routeKey(provider, reference))
        .find((key) => knownRoutes.has(key));
      if (remembered !== undefined) {
        const route = knownRoutes.get(remembered) as PaymentRoute;
        try {
          return await applyCoalesced(provider, event, route);
        } catch (error) {
          // Its organization was deleted since (the transaction rolled back): look again.
          if (!isGoneRoute(error)) throw await keptFailure(provider, event, route, error);
          knownRoutes.delete(remembered);
        }
      }
      const routeOf = (known: VerifiedEvent): Promise<FoundRoute | undefined> | undefined => {
        const references = referencesOf(known);
        return references.length === 0 ? undefined : findRoute(provider, references);
      };
      let found = await routeOf(event);
      // Named by ids this server never saw (a subscription invoice's charge): the provider's API
      // may say which of our payments it is about.
      const resolve = providers.get(provider)?.resolveEvent;
      if (found === undefined && resolve !== undefined) {
        const resolved = await resolve(event);
        if (resolved !== undefined) {
          event = resolved;
          found = await routeOf(event);
        }
      }
      if (found === undefined)
        throw paymentsErrors.unknownEvent(provider, 'it names no payment of this server');
      const route = found;
      const result = await applyCoalesced(provider, event, route).catch(async (error: unknown) => {
        throw await keptFailure(provider, event, route, error);
      });
      rememberRoute(provider, route);
      return result;
    },

    /** A payment of the current organization, or 404. */
    async payment(id: string): Promise<Payment> {
      const row = await paymentsStore.findPayment(db.kysely, id);
      if (row === undefined) throw paymentsErrors.paymentNotFound(id);
      return toPayment(row);
    },

    /** The events received about a payment, in provider order. */
    async paymentEvents(id: string) {
      await service.payment(id);
      return paymentsStore.listEvents(db.kysely, id);
    },

    /** Payments of the current organization (of one person with `userId`), newest first. */
    async payments(
      filter: { userId?: string | undefined; limit?: number | undefined } = {},
    ): Promise<Payment[]> {
      const rows = await paymentsStore.listPayments(db.kysely, {
        userId: filter.userId,
        limit: filter.limit ?? 50,
      });
      return rows.map(toPayment);
    },

    /** Subscriptions of the current organization (of one person with `userId`). */
    async subscriptions(userId?: string): Promise<Subscription[]> {
      return (await paymentsStore.listSubscriptions(db.kysely, userId)).map(toSubscription);
    },

    /** Whether the person holds a subscription to `productId` that is active or trialing. */
    async hasActiveSubscription(userId: string, productId: string): Promise<boolean> {
      const rows = await paymentsStore.listSubscriptions(db.kysely, userId);
      return rows.some(
        (row) => row.product_id === productId && (row.status === 'active' || row.status === 'trialing'),
      );
    },

    /** The provider's customer portal for the person (Stripe's billing portal). */
    async portalUrl(userId: string, returnUrl: string, providerName = 'stripe'): Promise<string> {
      const provider = providerNamed(providerName, 'body/provider');
      if (provider.portalUrl === undefined)
        throw paymentsErrors.invalidInput('payments.no_portal', 'body/provider', 'has no customer portal');
      const customerId = await paymentsStore.latestCustomer(db.kysely, userId, provider.name);
      if (customerId === undefined) throw paymentsErrors.noCustomer();
      return provider.portalUrl(customerId, returnUrl);
    },

    /**
     * Asks the provider to refund all (default) or part of what remains of a paid pack or of one
     * paid invoice of a subscription (that period's charge), with a key derived from the payment
     * and what was refunded before, so a retried call refunds once. The ledger reversal follows
     * from the provider's refund event, like every effect, never from this call.
     */
    async refund(paymentId: string, amount?: bigint): Promise<void> {
      const payment = await service.payment(paymentId);
      const provider = providerNamed(payment.provider);
      if (provider.refund === undefined)
        throw paymentsErrors.notRefundable(paymentId, 'the provider has no refunds');
      if (
        payment.status !== 'succeeded' ||
        (payment.kind !== 'pack' && payment.kind !== 'subscription_invoice')
      )
        throw paymentsErrors.notRefundable(
          paymentId,
          'only a paid pack or a paid subscription invoice can be refunded here',
        );
      const remaining = payment.amount - payment.refundedAmount;
      const asked = amount ?? remaining;
      if (asked <= 0n || asked > remaining)
        throw paymentsErrors.invalidInput(
          'payments.invalid_amount',
          'body/amount',
          `must be between 1 and ${remaining}`,
        );
      const row = await paymentsStore.findPayment(db.kysely, paymentId);
      let providerPaymentId = row?.provider_payment_id ?? undefined;
      // A subscription invoice's payment learns its PaymentIntent from a refund or dispute only:
      // until then the provider says which paid the invoice.
      if (providerPaymentId === undefined && payment.kind === 'subscription_invoice' && row !== undefined)
        providerPaymentId = await provider.invoicePayment?.(row.provider_reference);
      if (providerPaymentId === undefined)
        throw paymentsErrors.notRefundable(paymentId, 'its provider payment is unknown');
      await provider.refund(
        { id: paymentId, providerPaymentId },
        asked,
        `socle-refund-${paymentId}-${payment.refundedAmount}-${asked}`,
      );
    },

    /**
     * Recovers missed webhooks: each provider's events since `since`, applied like webhooks
     * (those already applied are duplicates); by default the last `PAYMENTS_BACKFILL_HOURS`.
     * The `payments.backfill` job runs it.
     */
    async backfill(
      since: Date = new Date(clock.now().getTime() - options.backfillHours * 3_600_000),
    ): Promise<{ applied: number; duplicates: number; skipped: number }> {
      const counts = { applied: 0, duplicates: 0, skipped: 0 };
      const count = async (event: VerifiedEvent, provider: string) => {
        try {
          const result = await service.receiveEvent(provider, event);
          if (result.duplicate) counts.duplicates++;
          else counts.applied++;
        } catch (error) {
          if (!isSocleError(error) || error.code !== 'payments.unknown_event') throw error;
          counts.skipped++;
        }
      };
      // Invoices still open here: their processor is asked for their state.
      for (const pending of await withOwnerTransaction(db, (connection) =>
        paymentsStore.listOpenInvoices(connection),
      )) {
        const provider = providers.get(pending.provider);
        if (provider?.invoiceEvent === undefined) continue;
        try {
          const event = await provider.invoiceEvent(pending.provider_reference);
          if (event !== undefined) await count(event, provider.name);
        } catch (error) {
          log.warn({ err: error, paymentId: pending.id }, 'Invoice state could not be read back');
        }
      }
      for (const provider of providers.values()) {
        if (provider.eventsSince === undefined) continue;
        for await (const event of provider.eventsSince(since)) await count(event, provider.name);
      }
      return counts;
    },
  };
  return service;
}

/** The payments service API (`socle.servicesOf(paymentsModule).payments`). */
export type PaymentsService = ReturnType<typeof createPaymentsService>;
