import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Clock, Database, Logger, MetricCounter } from '../../kernel/index.js';
import {
  isSocleError,
  isUuid,
  type RequestScope,
  TENANT_ID_SETTING,
  tenantSettings,
  withOwnerTransaction,
} from '../../kernel/index.js';
import { ledgerErrors } from './ledger.errors.js';
import {
  type AccountRow,
  type AccountSums,
  type LedgerExecutor,
  ledgerStore,
  type NewTransferRow,
  PLATFORM_BOOK,
  type PostTransferParams,
  type PostTransferResult,
  postTransfersParams,
  preparePostTransfer,
  preparePostTransfers,
  type TransferRow,
} from './ledger.store.js';
import type { LedgerTables } from './ledger.tables.js';
import { type Amount, MAX_AMOUNT, parseAmount, resolveUnit } from './units.js';

/** The transaction setting by which service code works in the platform's book (migration 0007). */
export const LEDGER_PLATFORM_SETTING = 'app.ledger_platform';

/**
 * Settings of a transaction that works in the platform's book: the accounts outside any
 * organization (a person's coins in a game, the game's own source and revenue), with the scope's
 * tenant and user if given. Service code opts in as it names a tenant; a person's own request
 * (only `app.user_id`) reads their accounts outside organizations and posts nothing.
 *
 * @example
 * await db.transaction((trx) => ledger.transfer(trx, spend), { settings: ledgerPlatformSettings({ userId }) });
 */
export function ledgerPlatformSettings(scope: RequestScope = {}): Record<string, string> {
  return { ...tenantSettings(scope), [LEDGER_PLATFORM_SETTING]: 'on' };
}

/** Who holds an account's value. */
export type AccountOwner =
  | { readonly kind: 'user'; readonly userId: string }
  | { readonly kind: 'tenant' }
  | { readonly kind: 'system' };

/** A balance rule, after TigerBeetle's account flags. */
export type BalanceRule = 'debits_must_not_exceed_credits' | 'credits_must_not_exceed_debits';

export interface NewAccount {
  /** Default: a new UUID. */
  readonly id?: string;
  readonly owner: AccountOwner;
  /** An ISO 4217 code (`EUR`, `XOF`) or an app unit (`credits`, `coins`, `sats`). */
  readonly unit: string;
  /** Minor-unit exponent: ISO 4217's for a currency (checked), default 0 for an app unit. */
  readonly scale?: number;
  /**
   * `debits_must_not_exceed_credits` for what a user holds (a wallet never goes negative);
   * `credits_must_not_exceed_debits` for the reverse; none for system accounts that may go either way.
   */
  readonly rule?: BalanceRule | null;
  /** The app's label, e.g. `wallet`, `revenue`. */
  readonly code?: string | null;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** An account and its balances, in minor units. */
export interface Account {
  readonly id: string;
  readonly owner: AccountOwner | { readonly kind: 'erased' };
  readonly unit: string;
  readonly scale: number;
  readonly rule: BalanceRule | null;
  readonly code: string | null;
  readonly metadata: Record<string, unknown>;
  readonly createdAt: Date;
  readonly balance: Balance;
}

/**
 * The four running sums of an account, and what follows from them. `posted` is credits minus
 * debits posted (what a credit-normal account such as a user's wallet holds); `available` also
 * takes away the debits held: what the account can still spend.
 */
export interface Balance {
  readonly debitsPending: bigint;
  readonly debitsPosted: bigint;
  readonly creditsPending: bigint;
  readonly creditsPosted: bigint;
  readonly posted: bigint;
  readonly available: bigint;
}

/**
 * What the owner of a person's account is told, after the commit, on their private realtime
 * channel `private-user-{userId}` (event `ledger.balance`) when a transfer, hold, post, void,
 * reversal or expiry changed the account. Amounts are decimal strings of the minor unit.
 */
export interface BalanceMessage {
  readonly accountId: string;
  readonly unit: string;
  readonly scale: number;
  readonly code: string | null;
  /** The operation that changed it (the last one, for a batch touching the account several times). */
  readonly transferId: string;
  readonly balance: Record<keyof Balance, string>;
}

/**
 * A transfer `transferWithBalances` posted, and the new balances of its accounts that a person
 * owns, by account id (empty for a replay: nothing changed).
 */
export interface PostedTransfer {
  readonly transfer: Transfer;
  readonly balances: ReadonlyMap<string, Balance>;
}

/** The realtime event of a {@link BalanceMessage}. */
export const BALANCE_EVENT = 'ledger.balance';

/** What every ledger operation carries. */
interface OperationBase {
  /**
   * Client-supplied and unique in the organization: the idempotency key. A repeat with the same
   * id and content returns the original transfer; with other content, 409 `ledger.idempotency_conflict`.
   */
  readonly id: string;
  /** The app's label, e.g. `purchase`, `image_transform`: transfers are listable by it. */
  readonly code?: string | null;
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/** Moves `amount` from the debit account to the credit account, posted at once. */
export interface TransferOperation extends OperationBase {
  readonly kind?: 'transfer';
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly amount: Amount;
}

/** Reserves `amount` (pending) until posted, voided or expired. */
export interface HoldOperation extends OperationBase {
  readonly kind: 'hold';
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  readonly amount: Amount;
  /** Seconds until the hold expires (voided by the `ledger.expireHolds` job); default one hour. */
  readonly timeoutSeconds?: number;
}

/** Posts all (default) or part of a hold; the rest returns to the debit account. */
export interface PostOperation extends OperationBase {
  readonly kind: 'post';
  readonly holdId: string;
  readonly amount?: Amount;
}

/** Releases a hold. */
export interface VoidOperation extends OperationBase {
  readonly kind: 'void';
  readonly holdId: string;
}

/** Moves back all (default) or part of a posted transfer: a new transfer naming the original. */
export interface ReverseOperation extends OperationBase {
  readonly kind: 'reverse';
  readonly transferId: string;
  readonly amount?: Amount;
}

export type LedgerOperation =
  | TransferOperation
  | HoldOperation
  | PostOperation
  | VoidOperation
  | ReverseOperation;

/** A recorded transfer. Immutable. */
export interface Transfer {
  readonly id: string;
  /** `expire`: a hold voided by the expiry job. */
  readonly kind: 'transfer' | 'hold' | 'post' | 'void' | 'expire';
  readonly debitAccountId: string;
  readonly creditAccountId: string;
  /** For post: the amount posted; for void and expire: the amount released. */
  readonly amount: bigint;
  readonly unit: string;
  readonly holdId: string | null;
  readonly reversesId: string | null;
  readonly expiresAt: Date | null;
  readonly code: string | null;
  readonly metadata: Record<string, unknown>;
  readonly createdAt: Date;
  /** Position in the organization's ledger; what history pages on. */
  readonly sequence: bigint;
}

/** A page of transfers, newest first, and where the next starts (null on the last page). */
export interface TransferPage {
  readonly transfers: Transfer[];
  readonly nextCursor: string | null;
}

export interface TransferQuery {
  readonly accountId?: string | undefined;
  readonly code?: string | undefined;
  readonly since?: Date | undefined;
  readonly until?: Date | undefined;
  readonly limit?: number | undefined;
  readonly cursor?: string | undefined;
}

/**
 * A person's own accounts outside organizations (the platform's book) and a page of the transfers
 * touching them, newest first: what `GET /ledger/me` shows.
 */
export interface PersonalBook {
  readonly accounts: Account[];
  readonly transfers: Transfer[];
  /** Where the next page of transfers starts (null on the last page). */
  readonly nextCursor: string | null;
}

/** The most accounts outside organizations one person is shown (one per unit and code). */
const MAX_PERSONAL_ACCOUNTS = 200;

/** What reconciliation found; `ok` when nothing drifted. */
export interface ReconciliationReport {
  /** When it ran, and what ran it (the hourly job, or the operator). */
  readonly checkedAt: Date;
  readonly trigger: 'schedule' | 'operator';
  readonly ok: boolean;
  readonly accounts: {
    readonly accountId: string;
    /** Null: an account outside organizations (the platform's book). */
    readonly orgId: string | null;
    readonly unit: string;
    readonly stored: Record<'debitsPending' | 'debitsPosted' | 'creditsPending' | 'creditsPosted', string>;
    readonly computed: Record<'debitsPending' | 'debitsPosted' | 'creditsPending' | 'creditsPosted', string>;
  }[];
  readonly units: {
    readonly orgId: string | null;
    readonly unit: string;
    readonly posted: string;
    readonly pending: string;
  }[];
}

/** Transfers per page when the query does not say. */
export const DEFAULT_PAGE_SIZE = 50;
/** Operations in one batch, at most. */
export const MAX_BATCH_SIZE = 1000;
/** Holds the expiry job voids per run (the next run takes the rest). */
const EXPIRY_BATCH = 500;
/** Attempts of a batch that met a concurrent insert of one of its ids (then it is a replay). */
const MAX_ATTEMPTS = 3;

/**
 * Single transfers posted outside a caller's transaction are coalesced into one statement
 * (`ledger.post_transfers`) while earlier ones are in flight: at most this many per statement...
 */
const MAX_COALESCED = 64;
/**
 * ...and at most this many such statements in flight per organization (and user) at once. Two,
 * measured (bench ledger-transfers, 50 clients, load 20–25 on 2 cores): one leaves the database
 * idle while a statement's answer travels back (10 hot accounts 761/s); four or eight make
 * smaller statements that wait for each other's account locks (508/s, 483/s, and more CPU per
 * transfer); two gave 806–913/s.
 */
const MAX_IN_FLIGHT = 2;

const TRANSFER_ID = /^[A-Za-z0-9][A-Za-z0-9_.:\-/]{0,127}$/;
const CODE = /^[a-z0-9][a-z0-9_.:-]{0,63}$/;

/** A concurrent request committed one of the batch's ids first: retry the whole batch. */
class ConcurrentInsert extends Error {
  constructor(readonly transferId: string) {
    super(`transfer ${transferId} was inserted concurrently`);
  }
}

/** Deterministic JSON (sorted keys): metadata compares equal whatever order Postgres returns. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

function toTransfer(row: TransferRow): Transfer {
  return {
    id: row.id,
    kind: row.kind as Transfer['kind'],
    debitAccountId: row.debit_account_id,
    creditAccountId: row.credit_account_id,
    amount: BigInt(row.amount),
    unit: row.unit,
    holdId: row.hold_id,
    reversesId: row.reverses_id,
    expiresAt: row.expires_at === null ? null : new Date(row.expires_at),
    code: row.code,
    metadata: (row.metadata ?? {}) as Record<string, unknown>,
    createdAt: new Date(row.created_at),
    sequence: BigInt(row.seq),
  };
}

/** Running sums of a locked account, changed in memory while the batch is checked. */
interface Sums {
  debitsPending: bigint;
  debitsPosted: bigint;
  creditsPending: bigint;
  creditsPosted: bigint;
}

function balanceOf(sums: Sums): Balance {
  return {
    ...sums,
    posted: sums.creditsPosted - sums.debitsPosted,
    available: sums.creditsPosted - sums.debitsPosted - sums.debitsPending,
  };
}

function sumsOf(row: AccountRow): Sums {
  return {
    debitsPending: BigInt(row.debits_pending),
    debitsPosted: BigInt(row.debits_posted),
    creditsPending: BigInt(row.credits_pending),
    creditsPosted: BigInt(row.credits_posted),
  };
}

function ruleOf(row: AccountRow): BalanceRule | null {
  if (row.debits_must_not_exceed_credits) return 'debits_must_not_exceed_credits';
  if (row.credits_must_not_exceed_debits) return 'credits_must_not_exceed_debits';
  return null;
}

export function toAccount(row: AccountRow): Account {
  const owner: Account['owner'] =
    row.owner_kind === 'user' && row.owner_user_id !== null
      ? { kind: 'user', userId: row.owner_user_id }
      : { kind: row.owner_kind as 'tenant' | 'system' | 'erased' };
  return {
    id: row.id,
    owner,
    unit: row.unit,
    scale: row.scale,
    rule: ruleOf(row),
    code: row.code,
    metadata: (row.metadata ?? {}) as Record<string, unknown>,
    createdAt: new Date(row.created_at),
    balance: balanceOf(sumsOf(row)),
  };
}

/** A person's account's new balance, to push once the transaction has committed. */
interface BalancePush {
  readonly userId: string;
  readonly message: BalanceMessage;
}

function amountTexts(balance: Balance): Record<keyof Balance, string> {
  return {
    debitsPending: balance.debitsPending.toString(),
    debitsPosted: balance.debitsPosted.toString(),
    creditsPending: balance.creditsPending.toString(),
    creditsPosted: balance.creditsPosted.toString(),
    posted: balance.posted.toString(),
    available: balance.available.toString(),
  };
}

function balancePush(row: AccountRow, sums: Sums, transferId: string): BalancePush | undefined {
  if (row.owner_kind !== 'user' || row.owner_user_id === null) return undefined;
  return {
    userId: row.owner_user_id,
    message: {
      accountId: row.id,
      unit: row.unit,
      scale: row.scale,
      code: row.code,
      transferId,
      balance: amountTexts(balanceOf(sums)),
    },
  };
}

function encodeCursor(sequence: bigint): string {
  return Buffer.from(`seq:${sequence}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): bigint {
  const match = /^seq:([0-9]{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (match?.[1] === undefined) throw ledgerErrors.invalidCursor();
  return BigInt(match[1]);
}

/** An operation checked for shape, before anything is read. */
interface CheckedOperation {
  readonly index: number;
  readonly path: string;
  readonly kind: 'transfer' | 'hold' | 'post' | 'void' | 'reverse';
  readonly id: string;
  readonly debitAccountId?: string;
  readonly creditAccountId?: string;
  readonly amount?: bigint;
  readonly timeoutSeconds?: number;
  /** The hold posted or voided, or the transfer reversed. */
  readonly referenceId?: string;
  readonly code: string | null;
  readonly metadata: Record<string, unknown>;
}

function checkId(value: unknown, path: string): string {
  if (typeof value !== 'string' || !TRANSFER_ID.test(value))
    throw ledgerErrors.invalidInput(
      'ledger.invalid_transfer_id',
      path,
      'must be 1 to 128 letters, digits or _ . : - /',
    );
  return value;
}

function checkAccountId(value: unknown, path: string): string {
  if (typeof value !== 'string' || !isUuid(value))
    throw ledgerErrors.invalidInput('ledger.invalid_account_id', path, 'must be an account id (a UUID)');
  return value.toLowerCase();
}

function checkOperation(
  operation: LedgerOperation,
  index: number,
  prefix: string,
  defaultHoldTimeoutSeconds: number,
): CheckedOperation {
  const path = `${prefix}${index}`;
  const kind = operation.kind ?? 'transfer';
  const id = checkId(operation.id, `${path}/id`);
  const code = operation.code ?? null;
  if (code !== null && !(typeof code === 'string' && CODE.test(code)))
    throw ledgerErrors.invalidInput(
      'ledger.invalid_code',
      `${path}/code`,
      'must be 1 to 64 lower-case letters, digits or _ . : -',
    );
  const metadata = { ...(operation.metadata ?? {}) };
  const base = { index, path, kind, id, code, metadata };
  switch (operation.kind) {
    case undefined:
    case 'transfer':
    case 'hold': {
      const checked = {
        ...base,
        debitAccountId: checkAccountId(operation.debitAccountId, `${path}/debitAccountId`),
        creditAccountId: checkAccountId(operation.creditAccountId, `${path}/creditAccountId`),
        amount: parseAmount(operation.amount, `${path}/amount`),
      };
      if (checked.debitAccountId === checked.creditAccountId)
        throw ledgerErrors.sameAccount(`${path}/creditAccountId`);
      if (operation.kind !== 'hold') return checked;
      const timeoutSeconds = operation.timeoutSeconds ?? defaultHoldTimeoutSeconds;
      if (!(Number.isInteger(timeoutSeconds) && timeoutSeconds >= 1 && timeoutSeconds <= 366 * 86_400))
        throw ledgerErrors.invalidInput(
          'ledger.invalid_timeout',
          `${path}/timeoutSeconds`,
          'must be a whole number of seconds from 1 to a year',
        );
      return { ...checked, timeoutSeconds };
    }
    case 'post':
      return {
        ...base,
        referenceId: checkId(operation.holdId, `${path}/holdId`),
        ...(operation.amount === undefined
          ? {}
          : { amount: parseAmount(operation.amount, `${path}/amount`) }),
      };
    case 'void':
      return { ...base, referenceId: checkId(operation.holdId, `${path}/holdId`) };
    case 'reverse':
      return {
        ...base,
        referenceId: checkId(operation.transferId, `${path}/transferId`),
        ...(operation.amount === undefined
          ? {}
          : { amount: parseAmount(operation.amount, `${path}/amount`) }),
      };
    default:
      throw ledgerErrors.invalidInput(
        'ledger.invalid_kind',
        `${path}/kind`,
        'must be transfer, hold, post, void or reverse',
      );
  }
}

/** Is the row what `operation` would write? (Replays must match exactly; expiry is not compared.) */
function sameContent(row: TransferRow, expected: NewTransferRow): boolean {
  return (
    row.kind === expected.kind &&
    row.debit_account_id === expected.debit_account_id &&
    row.credit_account_id === expected.credit_account_id &&
    BigInt(row.amount).toString() === expected.amount &&
    row.hold_id === expected.hold_id &&
    row.reverses_id === expected.reverses_id &&
    row.code === expected.code &&
    canonicalJson(row.metadata ?? {}) === canonicalJson(expected.metadata)
  );
}

/** Postgres `numeric_value_out_of_range` / `check_violation`: a balance bound was crossed. */
function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The ledger's operations. Every write is one Postgres transaction (the caller's, or one of its
 * own) that locks the accounts it touches in ascending id order, checks everything in memory,
 * inserts the transfers and updates the running sums: all or nothing.
 */
export function createLedgerService(options: {
  readonly db: Database<LedgerTables>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly transfersPosted: MetricCounter;
  readonly driftFound: MetricCounter;
  /** Told each result (stored or read): the module's gauges of the last reconciliation. */
  readonly reconciled?: ((report: ReconciliationReport) => void) | undefined;
  /** Hold lifetime when an operation does not say (`LEDGER_HOLD_TIMEOUT_SECONDS`). */
  readonly defaultHoldTimeoutSeconds: number;
  /**
   * Whether a user is a member of the organization `executor` acts in (tenancy's `memberRole`);
   * asked before a person's account is opened for someone other than the acting user.
   */
  readonly isMember: (executor: LedgerExecutor, userId: string) => Promise<boolean>;
  /** Sends a realtime event (the realtime module's `publish`); undefined without realtime. */
  readonly publish?:
    | ((message: { channel: string; event: string; data: unknown }) => Promise<void>)
    | undefined;
  /**
   * The settings a statement outside a transaction carries now (the scope's tenant and user:
   * `scope.transactionSettings`), so single transfers are coalesced only with others that carry
   * the same. Undefined: never coalesced.
   */
  readonly scopeSettings?: (() => Readonly<Record<string, string>> | undefined) | undefined;
}) {
  const { db, clock, log } = options;
  const postTransfer = preparePostTransfer(db);
  const postTransfers = preparePostTransfers(db);

  interface Queued {
    readonly params: PostTransferParams;
    readonly resolve: (result: PostTransferResult) => void;
    readonly reject: (error: unknown) => void;
  }
  /** Single transfers waiting for a statement, by the settings they carry. */
  const queues = new Map<string, { readonly waiting: Queued[]; inFlight: number }>();

  /**
   * One posted transfer in a statement of its own (no caller's transaction). Natural batching,
   * as TigerBeetle's clients do: when no statement of the same organization is in flight it is
   * sent at once, alone (ledger.post_transfer, no added latency); while MAX_IN_FLIGHT are, it
   * waits and goes with every transfer that arrived meanwhile in ONE statement
   * (ledger.post_transfers): one round trip, one commit, one set of settings for all of them,
   * each decided on its own exactly as alone. Under load this is most of the CPU a transfer
   * costs (measured: docs/ledger.md#performance).
   *
   * Why coalescing only transfers with the same settings is enough to run them together: a
   * statement outside a transaction carries the settings of the async context that sends it
   * (Database.kysely), and `drain` runs in the context of the caller that started it, whose
   * settings are the queue's key.
   */
  function postAlone(params: PostTransferParams): Promise<PostTransferResult> {
    if (options.scopeSettings === undefined)
      return postTransfer.executeTakeFirst(params) as Promise<PostTransferResult>;
    const settings = options.scopeSettings();
    const key = settings === undefined ? '' : JSON.stringify(Object.entries(settings).sort());
    let queue = queues.get(key);
    if (queue === undefined) {
      queue = { waiting: [], inFlight: 0 };
      queues.set(key, queue);
    }
    const promise = new Promise<PostTransferResult>((resolve, reject) => {
      (queue as { waiting: Queued[] }).waiting.push({ params, resolve, reject });
    });
    if (queue.inFlight < MAX_IN_FLIGHT) void drain(key, queue);
    return promise;
  }

  async function drain(key: string, queue: { readonly waiting: Queued[]; inFlight: number }): Promise<void> {
    queue.inFlight++;
    try {
      while (queue.waiting.length > 0) await sendQueued(queue.waiting.splice(0, MAX_COALESCED));
    } finally {
      queue.inFlight--;
      if (queue.inFlight === 0 && queue.waiting.length === 0) queues.delete(key);
    }
  }

  /** Sends `batch` (one statement, or the single function for one), settling each caller. */
  async function sendQueued(batch: readonly Queued[]): Promise<void> {
    if (batch.length === 1) {
      const [only] = batch as [Queued];
      await postTransfer
        .executeTakeFirst(only.params)
        .then((result) => only.resolve(result as PostTransferResult), only.reject);
      return;
    }
    let rows: Awaited<ReturnType<typeof postTransfers.execute>>;
    try {
      rows = await postTransfers.execute(postTransfersParams(batch.map((queued) => queued.params)));
    } catch {
      // Nothing of the statement remains (an error rolls its implicit transaction back): each
      // transfer goes alone, so each caller gets its own answer (the one that failed, its error).
      await Promise.all(
        batch.map((queued) =>
          postTransfer
            .executeTakeFirst(queued.params)
            .then((result) => queued.resolve(result as PostTransferResult), queued.reject),
        ),
      );
      return;
    }
    const answered = new Set<number>();
    for (const row of rows) {
      answered.add(row.ordinal);
      batch[row.ordinal - 1]?.resolve(row);
    }
    for (const [index, queued] of batch.entries())
      if (!answered.has(index + 1))
        queued.reject(new Error('ledger.post_transfers answered no row for a transfer'));
  }

  /** Tells each owner their account's new balance; failures are logged (the transfer committed). */
  async function pushBalances(pushes: readonly BalancePush[]): Promise<void> {
    const publish = options.publish;
    if (publish === undefined) return;
    for (const push of pushes) {
      try {
        await publish({ channel: `private-user-${push.userId}`, event: BALANCE_EVENT, data: push.message });
      } catch (error) {
        log.warn({ err: error, accountId: push.message.accountId }, 'Ledger balance could not be pushed');
      }
    }
  }

  /**
   * Pushes once `executor`'s transaction has committed (never for one rolled back); at once when
   * it is no transaction (the statement that wrote committed on its own).
   */
  async function pushAfterCommit(executor: LedgerExecutor, pushes: readonly BalancePush[]): Promise<void> {
    if (options.publish === undefined || pushes.length === 0) return;
    if (executor === db.kysely) return pushBalances(pushes);
    await db.afterCommit(executor, () => pushBalances(pushes));
  }

  /** Runs `work` in the caller's transaction, or in one of its own (retried on a concurrent duplicate). */
  async function inTransaction<T>(
    trx: LedgerExecutor | undefined,
    work: (executor: LedgerExecutor) => Promise<T>,
    /** One statement: run it on its own (an implicit transaction) rather than in BEGIN … COMMIT. */
    singleStatement = false,
  ): Promise<T> {
    if (trx !== undefined) {
      try {
        return await work(trx);
      } catch (error) {
        if (error instanceof ConcurrentInsert) throw ledgerErrors.concurrentDuplicate(error.transferId);
        throw error;
      }
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await (singleStatement ? work(db.kysely) : db.transaction((own) => work(own)));
      } catch (error) {
        if (error instanceof ConcurrentInsert) {
          // The other request committed: the next attempt reads its row and answers as a replay.
          if (attempt < MAX_ATTEMPTS) continue;
          throw ledgerErrors.concurrentDuplicate(error.transferId);
        }
        throw error;
      }
    }
  }

  async function executeBatch(
    executor: LedgerExecutor,
    operations: readonly LedgerOperation[],
    prefix: string,
  ): Promise<Transfer[]> {
    if (operations.length === 0) return [];
    if (operations.length > MAX_BATCH_SIZE)
      throw ledgerErrors.invalidInput(
        'ledger.batch_too_large',
        prefix.replace(/\/$/, ''),
        `must hold at most ${MAX_BATCH_SIZE} transfers`,
      );
    const checked = operations.map((operation, index) =>
      checkOperation(operation, index, prefix, options.defaultHoldTimeoutSeconds),
    );
    const firstIndex = new Map<string, number>();
    for (const operation of checked) {
      if (firstIndex.has(operation.id))
        throw ledgerErrors.duplicateInBatch(operation.id, `${operation.path}/id`);
      firstIndex.set(operation.id, operation.index);
    }
    const now = clock.now();

    // 1. Transfers the batch refers to (holds, reversed transfers) that it does not create
    // itself: immutable rows, read without a lock, to know which accounts to lock.
    const outsideReferences = [
      ...new Set(
        checked
          .filter(
            (operation) => operation.referenceId !== undefined && !firstIndex.has(operation.referenceId),
          )
          .map((operation) => operation.referenceId as string),
      ),
    ];
    const referenced = new Map(
      (await ledgerStore.findTransfers(executor, outsideReferences)).map((row) => [row.id, row]),
    );
    const accountsOf = (operation: CheckedOperation): [string, string] => {
      if (operation.debitAccountId !== undefined && operation.creditAccountId !== undefined)
        return [operation.debitAccountId, operation.creditAccountId];
      const referenceId = operation.referenceId as string;
      const reference = referenced.get(referenceId) ?? inBatchReference(referenceId);
      if (reference === undefined)
        throw ledgerErrors.transferNotFound(
          referenceId,
          `${operation.path}/${operation.kind === 'reverse' ? 'transferId' : 'holdId'}`,
        );
      return operation.kind === 'reverse'
        ? [reference.credit_account_id, reference.debit_account_id]
        : [reference.debit_account_id, reference.credit_account_id];
    };
    // A reference to an earlier operation of the same batch: its accounts, as it will write them.
    const inBatchReference = (referenceId: string) => {
      const index = firstIndex.get(referenceId);
      const earlier = index === undefined ? undefined : checked[index];
      if (earlier === undefined) return undefined;
      const [debit, credit] = accountsOf(earlier);
      return { debit_account_id: debit, credit_account_id: credit };
    };
    const accountIds = new Set<string>();
    for (const operation of checked) for (const id of accountsOf(operation)) accountIds.add(id);

    // 2. Lock every account of the batch, in ascending id order (see lockAccounts).
    const locked = new Map(
      (await ledgerStore.lockAccounts(executor, [...accountIds])).map((row) => [row.id, row]),
    );
    for (const operation of checked) {
      const [debit, credit] = accountsOf(operation);
      if (!locked.has(debit)) throw ledgerErrors.accountNotFound(debit, `${operation.path}/debitAccountId`);
      if (!locked.has(credit))
        throw ledgerErrors.accountNotFound(credit, `${operation.path}/creditAccountId`);
    }

    // 3. Under the locks, what earlier transfers say: replays, resolutions, reversals.
    const related = await ledgerStore.findRelatedTransfers(
      executor,
      checked.map((operation) => operation.id),
      checked.filter((o) => o.kind === 'post' || o.kind === 'void').map((o) => o.referenceId as string),
      checked.filter((o) => o.kind === 'reverse').map((o) => o.referenceId as string),
    );
    const existing = new Map<string, TransferRow>();
    const resolutions = new Map<string, string>();
    const reversed = new Map<string, bigint>();
    for (const row of related) {
      if (firstIndex.has(row.id)) existing.set(row.id, row);
      if (row.hold_id !== null) resolutions.set(row.hold_id, row.kind);
      if (row.reverses_id !== null)
        reversed.set(row.reverses_id, (reversed.get(row.reverses_id) ?? 0n) + BigInt(row.amount));
    }

    // 4. Check and apply each operation in memory, in order.
    const sums = new Map([...locked].map(([id, row]) => [id, sumsOf(row)]));
    const changed = new Set<string>();
    const written = new Map<string, NewTransferRow>();
    const results: (TransferRow | NewTransferRow)[] = [];
    const createdAt = now.toISOString();
    for (const operation of checked) {
      const [debitId, creditId] = accountsOf(operation);
      const debit = locked.get(debitId) as AccountRow;
      const credit = locked.get(creditId) as AccountRow;
      const referenceId = operation.referenceId ?? null;
      const reference: TransferRow | NewTransferRow | undefined =
        referenceId === null
          ? undefined
          : (referenced.get(referenceId) ?? written.get(referenceId) ?? existing.get(referenceId));
      const referencePath = `${operation.path}/${operation.kind === 'reverse' ? 'transferId' : 'holdId'}`;
      if (debit.unit !== credit.unit)
        throw ledgerErrors.unitMismatch(debit.unit, credit.unit, `${operation.path}/creditAccountId`);

      let row: NewTransferRow;
      const common = {
        id: operation.id,
        debit_account_id: debitId,
        credit_account_id: creditId,
        unit: debit.unit,
        code: operation.code,
        metadata: operation.metadata,
        created_at: createdAt,
      };
      let heldAmount = 0n;
      if (operation.kind === 'transfer' || operation.kind === 'hold') {
        row = {
          ...common,
          kind: operation.kind,
          amount: (operation.amount as bigint).toString(),
          hold_id: null,
          reverses_id: null,
          expires_at:
            operation.kind === 'hold'
              ? new Date(now.getTime() + (operation.timeoutSeconds as number) * 1000).toISOString()
              : null,
        };
      } else if (operation.kind === 'post' || operation.kind === 'void') {
        if (reference === undefined)
          throw ledgerErrors.transferNotFound(referenceId as string, referencePath);
        if (reference.kind !== 'hold') throw ledgerErrors.notAHold(referenceId as string, referencePath);
        heldAmount = BigInt(reference.amount);
        row = {
          ...common,
          kind: operation.kind,
          amount: (operation.amount ?? heldAmount).toString(),
          hold_id: referenceId,
          reverses_id: null,
          expires_at: null,
        };
      } else {
        if (reference === undefined)
          throw ledgerErrors.transferNotFound(referenceId as string, referencePath);
        if (reference.kind !== 'transfer' && reference.kind !== 'post')
          throw ledgerErrors.notReversible(referenceId as string, referencePath);
        // A replay of this reversal counts what it reversed as still remaining, so "all that
        // remains" means the same on the retry as on the first call.
        const mine = existing.get(operation.id);
        const replayedAmount = mine?.reverses_id === referenceId ? BigInt(mine.amount) : 0n;
        const remaining =
          BigInt(reference.amount) - (reversed.get(referenceId as string) ?? 0n) + replayedAmount;
        row = {
          ...common,
          kind: 'transfer',
          amount: (operation.amount ?? remaining).toString(),
          hold_id: null,
          reverses_id: referenceId,
          expires_at: null,
        };
      }

      const replayed = existing.get(operation.id);
      if (replayed !== undefined) {
        if (!sameContent(replayed, row))
          throw ledgerErrors.idempotencyConflict(operation.id, `${operation.path}/id`);
        results.push(replayed);
        continue;
      }

      const amount = BigInt(row.amount);
      const debitSums = sums.get(debitId) as Sums;
      const creditSums = sums.get(creditId) as Sums;
      switch (operation.kind) {
        case 'transfer':
        case 'reverse':
          if (operation.kind === 'reverse') {
            const remaining =
              BigInt((reference as TransferRow).amount) - (reversed.get(referenceId as string) ?? 0n);
            if (amount > remaining)
              throw ledgerErrors.exceedsReversible(referenceId as string, `${operation.path}/amount`);
            reversed.set(referenceId as string, (reversed.get(referenceId as string) ?? 0n) + amount);
          }
          debitSums.debitsPosted += amount;
          creditSums.creditsPosted += amount;
          break;
        case 'hold':
          debitSums.debitsPending += amount;
          creditSums.creditsPending += amount;
          break;
        case 'post':
        case 'void': {
          const resolution = resolutions.get(referenceId as string);
          if (resolution !== undefined)
            throw ledgerErrors.holdResolved(referenceId as string, resolution, referencePath);
          const expiresAt = (reference as TransferRow | NewTransferRow).expires_at;
          if (expiresAt !== null && new Date(expiresAt).getTime() <= now.getTime())
            throw ledgerErrors.holdExpired(referenceId as string, referencePath);
          if (amount > heldAmount)
            throw ledgerErrors.exceedsHold(referenceId as string, `${operation.path}/amount`);
          resolutions.set(referenceId as string, operation.kind);
          debitSums.debitsPending -= heldAmount;
          creditSums.creditsPending -= heldAmount;
          if (operation.kind === 'post') {
            debitSums.debitsPosted += amount;
            creditSums.creditsPosted += amount;
          }
          break;
        }
      }
      for (const [account, accountSums] of [
        [debit, debitSums],
        [credit, creditSums],
      ] as const) {
        const path = operation.debitAccountId === undefined ? referencePath : `${operation.path}/amount`;
        for (const value of Object.values(accountSums))
          if (value > MAX_AMOUNT) throw ledgerErrors.overflow(path);
        if (
          account.debits_must_not_exceed_credits &&
          accountSums.debitsPending + accountSums.debitsPosted > accountSums.creditsPosted
        )
          throw ledgerErrors.insufficientFunds(account.id, path, 'debits_must_not_exceed_credits');
        if (
          account.credits_must_not_exceed_debits &&
          accountSums.creditsPending + accountSums.creditsPosted > accountSums.debitsPosted
        )
          throw ledgerErrors.insufficientFunds(account.id, path, 'credits_must_not_exceed_debits');
      }
      changed.add(debitId);
      changed.add(creditId);
      written.set(row.id, row);
      results.push(row);
    }

    // 5. Write: the new transfers, then the accounts' new sums.
    const seqs = new Map<string, string>();
    if (written.size > 0) {
      const inserted = await ledgerStore.insertTransfers(executor, [...written.values()]);
      for (const { id, seq } of inserted) seqs.set(id, String(seq));
      for (const id of written.keys()) if (!seqs.has(id)) throw new ConcurrentInsert(id);
      const newSums: AccountSums[] = [...changed].map((id) => {
        const value = sums.get(id) as Sums;
        return {
          id,
          debits_pending: value.debitsPending.toString(),
          debits_posted: value.debitsPosted.toString(),
          credits_pending: value.creditsPending.toString(),
          credits_posted: value.creditsPosted.toString(),
        };
      });
      await ledgerStore.updateAccountSums(executor, newSums);
      options.transfersPosted.inc(written.size);
      if (options.publish !== undefined) {
        const lastWriter = new Map<string, string>();
        for (const row of written.values()) {
          lastWriter.set(row.debit_account_id, row.id);
          lastWriter.set(row.credit_account_id, row.id);
        }
        const pushes: BalancePush[] = [];
        for (const id of changed) {
          const push = balancePush(
            locked.get(id) as AccountRow,
            sums.get(id) as Sums,
            lastWriter.get(id) as string,
          );
          if (push !== undefined) pushes.push(push);
        }
        await pushAfterCommit(executor, pushes);
      }
    }
    return results.map((row) =>
      'seq' in row
        ? toTransfer(row)
        : toTransfer({
            ...row,
            seq: seqs.get(row.id) as string,
            expires_at: row.expires_at === null ? null : new Date(row.expires_at),
            created_at: now,
          }),
    );
  }

  /**
   * The hot path: one posted transfer, one statement (`ledger.post_transfer`), so the locks on
   * the two accounts are held for one round trip (plus COMMIT in a caller's transaction). Same
   * checks and answers as executeBatch, whose steps the SQL function follows.
   */
  async function postOne(
    executor: LedgerExecutor,
    operation: TransferOperation,
    prefix: string,
  ): Promise<PostedTransfer> {
    const posting = checkedPosting(operation, 0, prefix);
    const result =
      executor === db.kysely
        ? // Its own statement (no caller's transaction), carrying the scope's tenant; coalesced
          // with concurrent ones (postAlone).
          await postAlone(posting.params)
        : ((await postTransfer.executeTakeFirst(posting.params, executor)) as PostTransferResult);
    return postedOrThrown(executor, posting, result);
  }

  /** A posted transfer checked, as its row and the parameters of `ledger.post_transfer`. */
  function checkedPosting(operation: TransferOperation, index: number, prefix: string) {
    const checked = checkOperation(operation, index, prefix, options.defaultHoldTimeoutSeconds);
    const row = {
      id: checked.id,
      debit_account_id: checked.debitAccountId as string,
      credit_account_id: checked.creditAccountId as string,
      amount: (checked.amount as bigint).toString(),
      code: checked.code,
      metadata: checked.metadata,
      created_at: clock.now().toISOString(),
    };
    return { checked, row, params: { ...row, metadata: JSON.stringify(row.metadata) } };
  }

  /**
   * What `ledger.post_transfer` answered for one posting: the transfer and its owners' new
   * balances (pushed after `executor` commits), or the ledger error of a refusal, thrown.
   */
  async function postedOrThrown(
    executor: LedgerExecutor,
    { checked, row }: ReturnType<typeof checkedPosting>,
    result: PostTransferResult,
  ): Promise<PostedTransfer> {
    const { path } = checked;
    switch (result.outcome) {
      case 'ok': {
        options.transfersPosted.inc();
        const balances = new Map<string, Balance>();
        for (const owner of result.pushes ?? [])
          balances.set(
            owner.accountId,
            balanceOf({
              debitsPending: BigInt(owner.debitsPending),
              debitsPosted: BigInt(owner.debitsPosted),
              creditsPending: BigInt(owner.creditsPending),
              creditsPosted: BigInt(owner.creditsPosted),
            }),
          );
        if (result.pushes !== null && options.publish !== undefined)
          await pushAfterCommit(
            executor,
            result.pushes.map((owner) => ({
              userId: owner.userId,
              message: {
                accountId: owner.accountId,
                unit: owner.unit,
                scale: owner.scale,
                code: owner.code,
                transferId: row.id,
                balance: amountTexts(balances.get(owner.accountId) as Balance),
              },
            })),
          );
        // The function answers only what this call did not send (migration 0004).
        const transfer: Transfer = {
          id: row.id,
          kind: 'transfer',
          debitAccountId: row.debit_account_id,
          creditAccountId: row.credit_account_id,
          amount: checked.amount as bigint,
          unit: result.unit,
          holdId: null,
          reversesId: null,
          expiresAt: null,
          code: row.code,
          metadata: (result.metadata ?? {}) as Record<string, unknown>,
          createdAt: new Date(row.created_at),
          sequence: BigInt(result.seq),
        };
        return { transfer, balances };
      }
      case 'replay':
        if (
          !sameContent(result, {
            ...row,
            kind: 'transfer',
            unit: result.unit,
            hold_id: null,
            reverses_id: null,
            expires_at: null,
          })
        )
          throw ledgerErrors.idempotencyConflict(checked.id, `${path}/id`);
        return { transfer: toTransfer(result), balances: new Map() };
      case 'debit_not_found':
        throw ledgerErrors.accountNotFound(row.debit_account_id, `${path}/debitAccountId`);
      case 'credit_not_found':
        throw ledgerErrors.accountNotFound(row.credit_account_id, `${path}/creditAccountId`);
      case 'unit_mismatch':
        // The function returns the two units in `id` and `kind`.
        throw ledgerErrors.unitMismatch(result.id, result.kind, `${path}/creditAccountId`);
      case 'insufficient_debit':
        throw ledgerErrors.insufficientFunds(
          row.debit_account_id,
          `${path}/amount`,
          'debits_must_not_exceed_credits',
        );
      case 'insufficient_credit':
        throw ledgerErrors.insufficientFunds(
          row.credit_account_id,
          `${path}/amount`,
          'credits_must_not_exceed_debits',
        );
      default:
        throw new ConcurrentInsert(checked.id);
    }
  }

  /** The operation when this call is one posted transfer (the hot path), else undefined. */
  const singleTransfer = (
    input: LedgerOperation | readonly LedgerOperation[],
  ): TransferOperation | undefined => {
    const operation = Array.isArray(input) ? (input.length === 1 ? input[0] : undefined) : input;
    return operation !== undefined && (operation.kind === undefined || operation.kind === 'transfer')
      ? (operation as TransferOperation)
      : undefined;
  };

  /** Splits `(trx, input)` / `(input)` call forms. */
  function splitArguments<Input>(args: readonly unknown[]): [LedgerExecutor | undefined, Input] {
    if (args.length >= 2) return [args[0] as LedgerExecutor | undefined, args[1] as Input];
    return [undefined, args[0] as Input];
  }

  async function one(trx: LedgerExecutor | undefined, operation: LedgerOperation): Promise<Transfer> {
    const [transfer] = await inTransaction(trx, (executor) =>
      executeBatch(executor, [operation], 'transfers/'),
    );
    return transfer as Transfer;
  }

  /** Translates what Postgres refuses (a bound crossed despite the checks) into a ledger error. */
  async function guarded<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (isSocleError(error)) throw error;
      const state = sqlState(error);
      if (state === '22003') throw ledgerErrors.overflow('transfers');
      throw error;
    }
  }

  const service = {
    /** Opens an account in the transaction's organization. */
    async createAccount(...args: [LedgerExecutor | undefined, NewAccount] | [NewAccount]): Promise<Account> {
      const [trx, input] = splitArguments<NewAccount>(args);
      const { unit, scale } = resolveUnit(input.unit, input.scale);
      const id = input.id ?? randomUUID();
      if (!isUuid(id)) throw ledgerErrors.invalidInput('ledger.invalid_account_id', 'id', 'must be a UUID');
      const owner = input.owner;
      if (owner.kind === 'user' && !isUuid(owner.userId))
        throw ledgerErrors.invalidInput('ledger.invalid_owner', 'owner/userId', 'must be a UUID');
      if (input.code != null && !CODE.test(input.code))
        throw ledgerErrors.invalidInput(
          'ledger.invalid_code',
          'code',
          'must be 1 to 64 lower-case letters, digits or _ . : -',
        );
      const row = await inTransaction(trx, async (executor) => {
        // Before the insert, so a refusal leaves nothing behind in the caller's transaction. In
        // an organization, a person's account is for a member, or opened by that person acting
        // for themself (the transaction's app.user_id). Outside organizations (the platform's
        // book) it is anyone's: no organization to be a member of.
        const platform = await ledgerStore.actsForPlatform(executor);
        if (platform && owner.kind === 'tenant')
          throw ledgerErrors.invalidInput(
            'ledger.invalid_owner',
            'owner/kind',
            'must be user or system outside organizations (no organization to own it)',
          );
        if (
          !platform &&
          owner.kind === 'user' &&
          !(await ledgerStore.actsAs(executor, owner.userId)) &&
          !(await options.isMember(executor, owner.userId))
        )
          throw ledgerErrors.ownerNotMember(owner.userId);
        return ledgerStore.insertAccount(executor, {
          id,
          owner_kind: owner.kind,
          owner_user_id: owner.kind === 'user' ? owner.userId : null,
          unit,
          scale,
          code: input.code ?? null,
          debits_must_not_exceed_credits: input.rule === 'debits_must_not_exceed_credits',
          credits_must_not_exceed_debits: input.rule === 'credits_must_not_exceed_debits',
          metadata: input.metadata ?? {},
          created_at: clock.now(),
        });
      }).catch((error: unknown) => {
        // The primary key: a client-chosen id already taken (in this organization or another).
        if (sqlState(error) === '23505') throw ledgerErrors.accountExists(id);
        throw error;
      });
      if (row === undefined) throw ledgerErrors.tenantRequired();
      return toAccount(row);
    },

    /**
     * The account outside organizations of a person (`userId`) or of the platform (`userId`
     * null) in `unit` with `code`, opened on first use: one per owner, unit and code, even when two
     * first uses race (the second waits for the first's commit and finds it). The caller's
     * transaction must work in the platform's book ({@link ledgerPlatformSettings}, or
     * {@link inPlatformBook}); a person's account gets `rule` (default
     * `debits_must_not_exceed_credits`: never negative), the platform's none unless given.
     *
     * @example
     * await db.transaction(async (trx) => {
     *   const wallet = await ledger.platformAccountOf(trx, { userId, unit: 'coins', code: 'wallet' });
     *   const source = await ledger.platformAccountOf(trx, { userId: null, unit: 'coins', code: 'game.source' });
     *   await ledger.transfer(trx, { id: `starter:${userId}`, debitAccountId: source.id, creditAccountId: wallet.id, amount: 100n });
     * }, { settings: ledgerPlatformSettings({ userId }) });
     */
    async platformAccountOf(
      trx: LedgerExecutor,
      input: {
        readonly userId: string | null;
        readonly unit: string;
        readonly code?: string | null;
        readonly scale?: number;
        readonly rule?: BalanceRule | null;
      },
    ): Promise<Account> {
      const { unit, scale } = resolveUnit(input.unit, input.scale);
      const code = input.code ?? null;
      if (input.userId !== null && !isUuid(input.userId))
        throw ledgerErrors.invalidInput('ledger.invalid_owner', 'owner/userId', 'must be a UUID');
      const found = await ledgerStore.findPlatformAccount(trx, input.userId, unit, code);
      if (found !== undefined) return toAccount(found);
      if (code !== null && !CODE.test(code))
        throw ledgerErrors.invalidInput(
          'ledger.invalid_code',
          'code',
          'must be 1 to 64 lower-case letters, digits or _ . : -',
        );
      if (!(await ledgerStore.actsForPlatform(trx))) throw ledgerErrors.tenantRequired();
      const rule =
        input.rule !== undefined
          ? input.rule
          : input.userId === null
            ? null
            : 'debits_must_not_exceed_credits';
      // ON CONFLICT DO NOTHING on the unique index of its owner, unit and code: a concurrent first
      // use's insert is waited for, then this one writes nothing and reads that one's row.
      const inserted = await ledgerStore.insertAccount(
        trx,
        {
          id: randomUUID(),
          owner_kind: input.userId === null ? 'system' : 'user',
          owner_user_id: input.userId,
          unit,
          scale,
          code,
          debits_must_not_exceed_credits: rule === 'debits_must_not_exceed_credits',
          credits_must_not_exceed_debits: rule === 'credits_must_not_exceed_debits',
          metadata: {},
          created_at: clock.now(),
        },
        { skipExisting: true },
      );
      const row = inserted ?? (await ledgerStore.findPlatformAccount(trx, input.userId, unit, code));
      if (row === undefined) throw new Error(`ledger account ${input.userId ?? 'platform'}/${unit} vanished`);
      return toAccount(row);
    },

    /**
     * Runs `work` in the platform's book inside the caller's transaction (which may work in an
     * organization's: a payment recorded by the organization that sells, crediting coins the buyer
     * holds outside organizations), then gives the transaction its book back.
     */
    async inPlatformBook<T>(trx: LedgerExecutor, work: () => Promise<T>): Promise<T> {
      const previous = await ledgerStore.setPlatform(trx, 'on');
      if (previous === 'on') return work();
      const result = await work();
      await ledgerStore.setPlatform(trx, previous);
      return result;
    },

    /** An account of the organization with its balance, or 404 `ledger.account_not_found`. */
    async account(...args: [LedgerExecutor | undefined, string] | [string]): Promise<Account> {
      const [trx, accountId] = splitArguments<string>(args);
      const id = checkAccountId(accountId, 'accountId');
      const row = await ledgerStore.findAccount(trx ?? db.kysely, id);
      if (row === undefined) throw ledgerErrors.accountNotFound(id, 'accountId');
      return toAccount(row);
    },

    /** The balance of an account (posted, pending, available), or 404. */
    async balance(...args: [LedgerExecutor | undefined, string] | [string]): Promise<Balance> {
      return (await service.account(...(args as [LedgerExecutor | undefined, string]))).balance;
    },

    /** Accounts of the organization (of one person with `ownerUserId`), by id. */
    async accounts(
      ...args:
        | [LedgerExecutor | undefined, { ownerUserId?: string; limit?: number; after?: string }]
        | [{ ownerUserId?: string; limit?: number; after?: string }]
    ): Promise<Account[]> {
      const [trx, filter] = splitArguments<{ ownerUserId?: string; limit?: number; after?: string }>(args);
      const rows = await ledgerStore.listAccounts(trx ?? db.kysely, {
        ownerUserId: filter.ownerUserId,
        after: filter.after,
        limit: filter.limit ?? DEFAULT_PAGE_SIZE,
      });
      return rows.map(toAccount);
    },

    /**
     * Posts one operation or a batch, atomically: all are written or none (the first failure is
     * thrown, naming its index). Replays of earlier ids return the original transfers.
     *
     * @example
     * await db.transaction(async (trx) => {
     *   await ledger.transfer(trx, { id: `purchase:${sessionId}`, debitAccountId: revenue,
     *     creditAccountId: wallet, amount: 500n, code: 'purchase' });
     * });
     */
    /** `transfer` with errors naming request body fields (`body/transfers/2/amount`): for routes. */
    transferFromRequest(operations: readonly LedgerOperation[]): Promise<Transfer[]> {
      const single = singleTransfer(operations);
      if (single !== undefined)
        return guarded(() =>
          inTransaction(undefined, (executor) => postOne(executor, single, 'body/transfers/'), true),
        ).then(({ transfer }) => [transfer]);
      return guarded(() =>
        inTransaction(undefined, (executor) => executeBatch(executor, operations, 'body/transfers/')),
      );
    },

    transfer(
      ...args:
        | [LedgerExecutor | undefined, LedgerOperation | readonly LedgerOperation[]]
        | [LedgerOperation | readonly LedgerOperation[]]
    ): Promise<Transfer[]> {
      const [trx, input] = splitArguments<LedgerOperation | readonly LedgerOperation[]>(args);
      const single = singleTransfer(input);
      if (single !== undefined)
        // Without a caller's transaction, one statement in its own implicit transaction: it
        // carries the scope's tenant (see Database.kysely) and commits on its own.
        return guarded(() =>
          inTransaction(trx, (executor) => postOne(executor, single, 'transfers/'), true),
        ).then(({ transfer }) => [transfer]);
      const operations = Array.isArray(input) ? input : [input as LedgerOperation];
      return guarded(() =>
        inTransaction(trx, (executor) => executeBatch(executor, operations, 'transfers/')),
      );
    },

    /**
     * One posted transfer, as `transfer` posts it (one statement), with the new balances of the
     * accounts it changed that a person owns (what their owners are told after the commit), so a
     * caller that shows the balance needs no read after the write. A replay answers the original
     * transfer and no balances (read them with `balance`).
     *
     * @example
     * const { balances } = await ledger.transferWithBalances(trx, { id: `grant:${invoiceId}`,
     *   debitAccountId: source, creditAccountId: wallet, amount: 1000n });
     * balances.get(wallet)?.posted; // the wallet's balance after the grant
     */
    transferWithBalances(
      trx: LedgerExecutor | undefined,
      operation: TransferOperation,
    ): Promise<PostedTransfer> {
      return guarded(() =>
        inTransaction(trx, (executor) => postOne(executor, operation, 'transfers/'), true),
      );
    },

    /**
     * Several posted transfers in the caller's transaction, in ONE statement
     * (`ledger.post_transfers`: one round trip for all), each decided on its own exactly as
     * `transferWithBalances` decides it: the answer has, for each operation in order, its
     * {@link PostedTransfer} or the error `transferWithBalances` would have thrown (a refusal
     * does not undo the others; an error of the statement itself, thrown, aborts the
     * transaction). For a caller that applies many independent events in one transaction (the
     * payments module's coalesced webhooks).
     *
     * @example
     * const [grant] = await ledger.transfersWithBalances(trx, [{ id: `grant:${invoiceId}`,
     *   debitAccountId: source, creditAccountId: wallet, amount: 1000n }]);
     */
    async transfersWithBalances(
      trx: LedgerExecutor,
      operations: readonly TransferOperation[],
    ): Promise<(PostedTransfer | Error)[]> {
      if (trx === db.kysely) throw new Error("transfersWithBalances runs in a caller's transaction");
      if (operations.length === 0) return [];
      const postings = operations.map((operation, index) => checkedPosting(operation, index, 'transfers/'));
      const rows = await guarded(() =>
        postTransfers.execute(postTransfersParams(postings.map((posting) => posting.params)), trx),
      );
      const byOrdinal = new Map(rows.map((row) => [row.ordinal, row]));
      const answers: (PostedTransfer | Error)[] = [];
      for (const [index, posting] of postings.entries()) {
        const result = byOrdinal.get(index + 1);
        if (result === undefined) {
          answers.push(new Error('ledger.post_transfers answered no row for a transfer'));
          continue;
        }
        try {
          answers.push(await postedOrThrown(trx, posting, result));
        } catch (error) {
          answers.push(
            error instanceof ConcurrentInsert
              ? ledgerErrors.concurrentDuplicate(error.transferId)
              : (error as Error),
          );
        }
      }
      return answers;
    },

    /** Reserves an amount: see {@link HoldOperation}. */
    hold(...args: [LedgerExecutor | undefined, Omit<HoldOperation, 'kind'>] | [Omit<HoldOperation, 'kind'>]) {
      const [trx, input] = splitArguments<Omit<HoldOperation, 'kind'>>(args);
      return guarded(() => one(trx, { ...input, kind: 'hold' }));
    },

    /** Posts all or part of a hold: see {@link PostOperation}. */
    post(...args: [LedgerExecutor | undefined, Omit<PostOperation, 'kind'>] | [Omit<PostOperation, 'kind'>]) {
      const [trx, input] = splitArguments<Omit<PostOperation, 'kind'>>(args);
      return guarded(() => one(trx, { ...input, kind: 'post' }));
    },

    /** Releases a hold: see {@link VoidOperation}. */
    void(...args: [LedgerExecutor | undefined, Omit<VoidOperation, 'kind'>] | [Omit<VoidOperation, 'kind'>]) {
      const [trx, input] = splitArguments<Omit<VoidOperation, 'kind'>>(args);
      return guarded(() => one(trx, { ...input, kind: 'void' }));
    },

    /** Reverses all or part of a transfer: see {@link ReverseOperation}. */
    reverse(
      ...args: [LedgerExecutor | undefined, Omit<ReverseOperation, 'kind'>] | [Omit<ReverseOperation, 'kind'>]
    ) {
      const [trx, input] = splitArguments<Omit<ReverseOperation, 'kind'>>(args);
      return guarded(() => one(trx, { ...input, kind: 'reverse' }));
    },

    /** A transfer by id, or 404 `ledger.transfer_not_found`. */
    async getTransfer(...args: [LedgerExecutor | undefined, string] | [string]): Promise<Transfer> {
      const [trx, transferId] = splitArguments<string>(args);
      const id = checkId(transferId, 'transferId');
      const [row] = await ledgerStore.findTransfers(trx ?? db.kysely, [id]);
      if (row === undefined) throw ledgerErrors.transferNotFound(id);
      return toTransfer(row);
    },

    /** Transfers of the organization, newest first, by account, code and time; cursor-paginated. */
    async transfers(
      ...args: [LedgerExecutor | undefined, TransferQuery] | [TransferQuery]
    ): Promise<TransferPage> {
      const [trx, query] = splitArguments<TransferQuery>(args);
      const limit = query.limit ?? DEFAULT_PAGE_SIZE;
      // Outside a caller's transaction, history is a read that may be stale: a read replica serves
      // it once it has replayed this client's own last write (the balance reads stay on the primary).
      const rows = await ledgerStore.listTransfers(trx ?? db.replica, {
        accountId: query.accountId,
        code: query.code,
        since: query.since,
        until: query.until,
        beforeSeq: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit).map(toTransfer);
      const last = page.at(-1);
      return {
        transfers: page,
        nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.sequence) : null,
      };
    },

    /** An account's history: its transfers, newest first (404 when it is not the organization's). */
    async history(
      ...args:
        | [LedgerExecutor | undefined, string, Omit<TransferQuery, 'accountId'>]
        | [string, Omit<TransferQuery, 'accountId'>]
    ): Promise<TransferPage> {
      const [trx, accountId, query] =
        args.length === 3
          ? args
          : [undefined, args[0] as string, args[1] as Omit<TransferQuery, 'accountId'>];
      await service.account(trx, accountId);
      return service.transfers(trx, { ...query, accountId: accountId.toLowerCase() });
    },

    /**
     * A person's own accounts outside organizations with their balances, and a page of the
     * transfers touching them, newest first (`cursor`: the previous page's `nextCursor`). Read as
     * that person alone, whatever the caller's scope names (no organization, not the platform's
     * flag), in one snapshot: row-level security gives their own accounts and those transfers,
     * never another person's, the platform's or an organization's.
     */
    async personalBook(
      userId: string,
      query: { readonly limit?: number | undefined; readonly cursor?: string | undefined } = {},
    ): Promise<PersonalBook> {
      if (!isUuid(userId))
        throw ledgerErrors.invalidInput('ledger.invalid_owner', 'userId', 'must be a UUID');
      const limit = query.limit ?? DEFAULT_PAGE_SIZE;
      const beforeSeq = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      return db.transaction(
        async (trx) => {
          const accounts = await ledgerStore.listOwnPlatformAccounts(trx, MAX_PERSONAL_ACCOUNTS);
          const rows = await ledgerStore.listPlatformTransfersOf(
            trx,
            accounts.map((account) => account.id),
            beforeSeq,
            limit + 1,
          );
          const transfers = rows.slice(0, limit).map(toTransfer);
          const last = transfers.at(-1);
          return {
            accounts: accounts.map(toAccount),
            transfers,
            nextCursor: rows.length > limit && last !== undefined ? encodeCursor(last.sequence) : null,
          };
        },
        {
          // The balances and the history from one snapshot; a read-only snapshot never conflicts.
          isolation: 'repeatable read',
          settings: { ...tenantSettings({ userId }), [TENANT_ID_SETTING]: '', [LEDGER_PLATFORM_SETTING]: '' },
        },
      );
    },

    /**
     * Voids every hold of every organization past its expiry (kind `expire`), each in its own
     * organization's transaction; returns how many. The `ledger.expireHolds` job runs it.
     */
    async expireHolds(now: Date = clock.now()): Promise<number> {
      const due = await withOwnerTransaction(db, (connection) =>
        ledgerStore.findExpiredHolds(connection, now, EXPIRY_BATCH),
      );
      let expired = 0;
      for (const hold of due) {
        try {
          await db.transaction(
            async (trx) => {
              const [row] = await ledgerStore.findTransfers(trx, [hold.id]);
              if (row === undefined) return;
              const locked = await ledgerStore.lockAccounts(trx, [
                row.debit_account_id,
                row.credit_account_id,
              ]);
              // Under the locks, as a post or void would: resolved meanwhile (by a post, or by
              // another node expiring it) means there is nothing to do.
              const [resolution] = await ledgerStore.findRelatedTransfers(trx, [], [hold.id], []);
              if (resolution !== undefined) return;
              const amount = BigInt(row.amount);
              const inserted = await ledgerStore.insertTransfers(trx, [
                {
                  id: `expire:${hold.id}`.slice(0, 128),
                  kind: 'expire',
                  debit_account_id: row.debit_account_id,
                  credit_account_id: row.credit_account_id,
                  amount: amount.toString(),
                  unit: row.unit,
                  hold_id: hold.id,
                  reverses_id: null,
                  expires_at: null,
                  code: row.code,
                  metadata: {},
                  created_at: now.toISOString(),
                },
              ]);
              if (inserted.length === 0) return;
              const pushes: BalancePush[] = [];
              await ledgerStore.updateAccountSums(
                trx,
                locked.map((account) => {
                  const sums = sumsOf(account);
                  if (account.id === row.debit_account_id) sums.debitsPending -= amount;
                  if (account.id === row.credit_account_id) sums.creditsPending -= amount;
                  const push = balancePush(account, sums, `expire:${hold.id}`.slice(0, 128));
                  if (push !== undefined) pushes.push(push);
                  return {
                    id: account.id,
                    debits_pending: sums.debitsPending.toString(),
                    debits_posted: sums.debitsPosted.toString(),
                    credits_pending: sums.creditsPending.toString(),
                    credits_posted: sums.creditsPosted.toString(),
                  };
                }),
              );
              await pushAfterCommit(trx, pushes);
              expired++;
            },
            {
              settings:
                hold.tenant_id === PLATFORM_BOOK
                  ? ledgerPlatformSettings()
                  : { [TENANT_ID_SETTING]: hold.tenant_id },
            },
          );
        } catch (error) {
          log.error({ err: error, holdId: hold.id }, 'Ledger hold could not be expired');
        }
      }
      return expired;
    },

    /**
     * Reconciliation: recomputes every account's sums from its transfers and checks that every
     * unit of every organization sums to zero. Drift is logged and counted
     * (`socle_ledger_drift_total`); `socle ledger check` exits 1 on it. The result is kept (the
     * latest is {@link lastReconciliation}) in the transaction that read the sums.
     */
    async check(trigger: 'schedule' | 'operator' = 'schedule'): Promise<ReconciliationReport> {
      const checkedAt = clock.now();
      let report: ReconciliationReport | undefined;
      await withOwnerTransaction(db, async (connection) => {
        report = reportOf(checkedAt, trigger, await ledgerStore.findDrift(connection));
        const { accounts, units } = report;
        await ledgerStore.insertReconciliation(connection, {
          checkedAt,
          trigger,
          ok: report.ok,
          drift: { accounts, units },
        });
      });
      const done = report as ReconciliationReport;
      options.reconciled?.(done);
      if (!done.ok) {
        options.driftFound.inc(done.accounts.length + done.units.length);
        log.error({ drift: done }, 'Ledger reconciliation found drift');
      }
      return done;
    },

    /** The latest reconciliation's result (the hourly job's or the operator's), if any ran. */
    async lastReconciliation(): Promise<ReconciliationReport | undefined> {
      const row = await withOwnerTransaction(db, (connection) =>
        ledgerStore.latestReconciliation(connection),
      );
      if (row === undefined) return undefined;
      const drift = (typeof row.drift === 'string' ? JSON.parse(row.drift) : row.drift) as Pick<
        ReconciliationReport,
        'accounts' | 'units'
      >;
      const report = { checkedAt: new Date(row.checked_at), trigger: row.trigger, ok: row.ok, ...drift };
      options.reconciled?.(report);
      return report;
    },
  };
  return service;
}

function reportOf(
  checkedAt: Date,
  trigger: 'schedule' | 'operator',
  drift: Awaited<ReturnType<typeof ledgerStore.findDrift>>,
): ReconciliationReport {
  const sumsText = (row: {
    debits_pending: unknown;
    debits_posted: unknown;
    credits_pending: unknown;
    credits_posted: unknown;
  }) => ({
    debitsPending: String(row.debits_pending),
    debitsPosted: String(row.debits_posted),
    creditsPending: String(row.credits_pending),
    creditsPosted: String(row.credits_posted),
  });
  return {
    checkedAt,
    trigger,
    ok: drift.accounts.length === 0 && drift.units.length === 0,
    accounts: drift.accounts.map((row) => ({
      accountId: row.id,
      orgId: row.tenant_id,
      unit: row.unit,
      stored: sumsText(row),
      computed: sumsText({
        debits_pending: row.computed_debits_pending,
        debits_posted: row.computed_debits_posted,
        credits_pending: row.computed_credits_pending,
        credits_posted: row.computed_credits_posted,
      }),
    })),
    units: drift.units.map((row) => ({
      orgId: row.tenant_id,
      unit: row.unit,
      posted: String(row.posted),
      pending: String(row.pending),
    })),
  };
}

/** The ledger's service API (`socle.servicesOf(ledger)`). */
export type LedgerService = ReturnType<typeof createLedgerService>;

/** A transaction of any module's tables, for `ledger.transfer(trx, …)`. */
// biome-ignore lint/suspicious/noExplicitAny: the caller's transaction is typed with its own tables
export type AnyTransaction = Transaction<any>;
