import { type Kysely, type Selectable, sql } from 'kysely';
import type { Database, PreparedQuery, SqlConnection } from '../../kernel/index.js';
import type { LedgerTables, SqlBigint } from './ledger.tables.js';

/** The transfers' tenant_id of the platform's book (migration 0007): transfers have no foreign key. */
export const PLATFORM_BOOK = '00000000-0000-0000-0000-000000000000';

/** Any executor: a transaction of the caller or of the service, or a single-statement Kysely. */
// biome-ignore lint/suspicious/noExplicitAny: callers pass transactions typed with their own tables
export type LedgerExecutor = Kysely<any>;

/** An account row with its running sums, as locked for a batch: the table's row type. */
export type AccountRow = Selectable<LedgerTables['ledger.accounts']>;

/** A transfer row (its tenant is the caller's, under RLS: not read). */
export type TransferRow = Omit<Selectable<LedgerTables['ledger.transfers']>, 'tenant_id'>;

/** A transfer to insert (amounts as decimal strings: they travel in one JSON parameter). */
export interface NewTransferRow {
  readonly id: string;
  readonly kind: string;
  readonly debit_account_id: string;
  readonly credit_account_id: string;
  readonly amount: string;
  readonly unit: string;
  readonly hold_id: string | null;
  readonly reverses_id: string | null;
  readonly expires_at: string | null;
  readonly code: string | null;
  readonly metadata: unknown;
  readonly created_at: string;
}

/** New running sums of an account (decimal strings). */
export interface AccountSums {
  readonly id: string;
  readonly debits_pending: string;
  readonly debits_posted: string;
  readonly credits_pending: string;
  readonly credits_posted: string;
}

/** A new account. */
export interface NewAccountRow {
  readonly id: string;
  readonly owner_kind: string;
  readonly owner_user_id: string | null;
  readonly unit: string;
  readonly scale: number;
  readonly code: string | null;
  readonly debits_must_not_exceed_credits: boolean;
  readonly credits_must_not_exceed_debits: boolean;
  readonly metadata: unknown;
  readonly created_at: Date;
}

/** Filter of a transfer listing; keyset pagination on seq, newest first. */
export interface TransferFilter {
  readonly accountId?: string | undefined;
  readonly code?: string | undefined;
  readonly since?: Date | undefined;
  readonly until?: Date | undefined;
  readonly beforeSeq?: bigint | undefined;
  readonly limit: number;
}

/** An account whose stored sums differ from those its transfers give. */
export interface DriftRow {
  id: string;
  tenant_id: string | null;
  unit: string;
  debits_pending: SqlBigint;
  debits_posted: SqlBigint;
  credits_pending: SqlBigint;
  credits_posted: SqlBigint;
  computed_debits_pending: SqlBigint;
  computed_debits_posted: SqlBigint;
  computed_credits_pending: SqlBigint;
  computed_credits_posted: SqlBigint;
}

/** A unit of a tenant whose accounts do not sum to zero. */
export interface UnitImbalanceRow {
  tenant_id: string | null;
  unit: string;
  posted: SqlBigint;
  pending: SqlBigint;
}

const TRANSFER_COLUMNS = sql.raw(
  'id, seq, kind, debit_account_id, credit_account_id, amount, unit, hold_id, reverses_id, expires_at, code, metadata, created_at',
);
const ACCOUNT_COLUMNS = sql.raw(
  `id, tenant_id, owner_kind, owner_user_id, unit, scale, code, debits_must_not_exceed_credits,
   credits_must_not_exceed_debits, debits_pending, debits_posted, credits_pending, credits_posted,
   metadata, created_at`,
);

/**
 * SQL of the ledger. Row-level security scopes every statement to the book of the transaction's
 * settings: its organization (`socle.current_tenant_id()`), or the platform's accounts outside
 * organizations when it carries `app.ledger_platform` (migration 0007's `ledger.in_book`,
 * `ledger.book_id`), which is also the book every insert writes.
 */
export const ledgerStore = {
  async insertAccount(
    executor: LedgerExecutor,
    account: NewAccountRow,
    /** An account outside organizations already opened for its owner, unit and code: no row. */
    options: { readonly skipExisting?: boolean } = {},
  ): Promise<AccountRow | undefined> {
    // In the transaction's book (migration 0007): its organization, or none (null) when it acts
    // for the platform. No row when it is in no book: the caller answers ledger.tenant_required.
    const { rows } = await sql<AccountRow>`
      insert into ledger.accounts (id, tenant_id, owner_kind, owner_user_id, unit, scale, code,
                                   debits_must_not_exceed_credits, credits_must_not_exceed_debits,
                                   metadata, created_at)
      select ${account.id}::uuid, case when ledger.acts_for_platform() then null else socle.current_tenant_id() end,
             ${account.owner_kind}, ${account.owner_user_id}::uuid,
             ${account.unit}, ${account.scale}, ${account.code}, ${account.debits_must_not_exceed_credits},
             ${account.credits_must_not_exceed_debits}, ${JSON.stringify(account.metadata)}::jsonb,
             ${account.created_at.toISOString()}::timestamptz
       where ledger.acts_for_platform() or socle.current_tenant_id() is not null
      ${options.skipExisting === true ? sql`on conflict do nothing` : sql``}
      returning ${ACCOUNT_COLUMNS}`.execute(executor);
    return rows[0];
  },

  /**
   * The account outside organizations of `owner` (a person, or the platform's own when null) in
   * `unit` with `code`, if opened (migration 0007's unique indexes make it one).
   */
  async findPlatformAccount(
    executor: LedgerExecutor,
    owner: string | null,
    unit: string,
    code: string | null,
  ): Promise<AccountRow | undefined> {
    const { rows } = await sql<AccountRow>`
      select ${ACCOUNT_COLUMNS} from ledger.accounts
       where tenant_id is null and unit = ${unit} and coalesce(code, '') = ${code ?? ''}
         and ${owner === null ? sql`owner_kind = 'system'` : sql`owner_kind = 'user' and owner_user_id = ${owner}::uuid`}`.execute(
      executor,
    );
    return rows[0];
  },

  /** Whether the transaction works in the platform's book (`app.ledger_platform`). */
  async actsForPlatform(executor: LedgerExecutor): Promise<boolean> {
    const { rows } = await sql<{ platform: boolean }>`select ledger.acts_for_platform() as platform`.execute(
      executor,
    );
    return rows[0]?.platform === true;
  },

  /**
   * Sets `app.ledger_platform` for the rest of the caller's transaction (`on`, or what it was
   * before: `previous`); returns what it was.
   */
  async setPlatform(executor: LedgerExecutor, value: string): Promise<string> {
    const { rows } = await sql<{ previous: string | null }>`
      select current_setting('app.ledger_platform', true) as previous`.execute(executor);
    await sql`select set_config('app.ledger_platform', ${value}, true)`.execute(executor);
    return rows[0]?.previous ?? '';
  },

  /** Whether the transaction acts as `userId` (its `app.user_id`). */
  async actsAs(executor: LedgerExecutor, userId: string): Promise<boolean> {
    const { rows } = await sql<{ acting: boolean }>`
      select coalesce(socle.current_user_id() = ${userId}::uuid, false) as acting`.execute(executor);
    return rows[0]?.acting === true;
  },

  async findAccount(executor: LedgerExecutor, id: string): Promise<AccountRow | undefined> {
    const { rows } = await sql<AccountRow>`
      select ${ACCOUNT_COLUMNS} from ledger.accounts where id = ${id}::uuid`.execute(executor);
    return rows[0];
  },

  async listAccounts(
    executor: LedgerExecutor,
    filter: { ownerUserId?: string | undefined; limit: number; after?: string | undefined },
  ): Promise<AccountRow[]> {
    const { rows } = await sql<AccountRow>`
      select ${ACCOUNT_COLUMNS} from ledger.accounts
       where (ledger.in_book(tenant_id) or (tenant_id is null and socle.current_tenant_id() is null))
         and (${filter.ownerUserId ?? null}::uuid is null or owner_user_id = ${filter.ownerUserId ?? null}::uuid)
         and (${filter.after ?? null}::uuid is null or id > ${filter.after ?? null}::uuid)
       order by id limit ${filter.limit}`.execute(executor);
    return rows;
  },

  /**
   * Locks the accounts of a batch, FOR NO KEY UPDATE, in ascending id order: every batch takes its
   * locks in the same global order, so two batches touching the same accounts wait for each other
   * instead of deadlocking. NO KEY UPDATE (not FOR UPDATE) because the balance update that follows
   * changes no key; it also leaves FOR KEY SHARE free. Lock first, then read and insert: research
   * measured insert-then-lock at a sixth of the throughput and FOR UPDATE with deadlocks.
   */
  async lockAccounts(executor: LedgerExecutor, ids: readonly string[]): Promise<AccountRow[]> {
    const { rows } = await sql<AccountRow>`
      select ${ACCOUNT_COLUMNS} from ledger.accounts
       where id = any(${sortedArrayLiteral(ids)}::uuid[]) and ledger.in_book(tenant_id)
       order by id
         for no key update`.execute(executor);
    return rows;
  },

  async findTransfers(executor: LedgerExecutor, ids: readonly string[]): Promise<TransferRow[]> {
    if (ids.length === 0) return [];
    const { rows } = await sql<TransferRow>`
      select ${TRANSFER_COLUMNS} from ledger.transfers
       where tenant_id = ledger.book_id() and id = any(${arrayLiteral(ids)}::text[])`.execute(executor);
    return rows;
  },

  /**
   * What a batch needs to know of earlier transfers, in one statement, read under the account
   * locks (so nothing touching these accounts changes meanwhile): transfers with the batch's ids
   * (replays), resolutions of the holds it posts or voids, reversals of what it reverses.
   */
  async findRelatedTransfers(
    executor: LedgerExecutor,
    ids: readonly string[],
    holdIds: readonly string[],
    reversedIds: readonly string[],
  ): Promise<TransferRow[]> {
    const { rows } = await sql<TransferRow>`
      select ${TRANSFER_COLUMNS} from ledger.transfers
       where tenant_id = ledger.book_id()
         and (id = any(${arrayLiteral(ids)}::text[])
              or hold_id = any(${arrayLiteral(holdIds)}::text[])
              or reverses_id = any(${arrayLiteral(reversedIds)}::text[]))`.execute(executor);
    return rows;
  },

  /**
   * Inserts a batch's new transfers; returns the ids inserted. An id missing from the answer was
   * committed by a concurrent request between the read and this insert (ON CONFLICT DO NOTHING
   * then waits for it and skips the row): the caller rolls back and retries.
   */
  async insertTransfers(
    executor: LedgerExecutor,
    transfers: readonly NewTransferRow[],
  ): Promise<{ id: string; seq: SqlBigint }[]> {
    const { rows } = await sql<{ id: string; seq: SqlBigint }>`
      insert into ledger.transfers (tenant_id, id, kind, debit_account_id, credit_account_id, amount, unit,
                                    hold_id, reverses_id, expires_at, code, metadata, created_at)
      select ledger.book_id(), id, kind, debit_account_id, credit_account_id, amount, unit,
             hold_id, reverses_id, expires_at, code, coalesce(metadata, '{}'), created_at
        from jsonb_to_recordset(${JSON.stringify(transfers)}::jsonb) as t(
          id text, kind text, debit_account_id uuid, credit_account_id uuid, amount bigint, unit text,
          hold_id text, reverses_id text, expires_at timestamptz, code text, metadata jsonb,
          created_at timestamptz)
      on conflict do nothing
      returning id, seq`.execute(executor);
    return rows;
  },

  async updateAccountSums(executor: LedgerExecutor, sums: readonly AccountSums[]): Promise<void> {
    if (sums.length === 0) return;
    await sql`
      update ledger.accounts a
         set debits_pending = s.debits_pending, debits_posted = s.debits_posted,
             credits_pending = s.credits_pending, credits_posted = s.credits_posted
        from jsonb_to_recordset(${JSON.stringify(sums)}::jsonb) as s(
          id uuid, debits_pending bigint, debits_posted bigint, credits_pending bigint, credits_posted bigint)
       where a.id = s.id`.execute(executor);
  },

  async listTransfers(executor: LedgerExecutor, filter: TransferFilter): Promise<TransferRow[]> {
    const { accountId, code, since, until, beforeSeq } = filter;
    // An account's history is the union of its debit and credit index ranges.
    const accountCondition =
      accountId === undefined
        ? sql`true`
        : sql`(debit_account_id = ${accountId}::uuid or credit_account_id = ${accountId}::uuid)`;
    const { rows } = await sql<TransferRow>`
      select ${TRANSFER_COLUMNS} from ledger.transfers
       where tenant_id = ledger.book_id()
         and ${accountCondition}
         and ${code === undefined ? sql`true` : sql`code = ${code}`}
         and ${since === undefined ? sql`true` : sql`created_at >= ${since.toISOString()}::timestamptz`}
         and ${until === undefined ? sql`true` : sql`created_at < ${until.toISOString()}::timestamptz`}
         and ${beforeSeq === undefined ? sql`true` : sql`seq < ${beforeSeq.toString()}::bigint`}
       order by seq desc
       limit ${filter.limit}`.execute(executor);
    return rows;
  },

  /**
   * The acting person's own accounts outside organizations (`app.user_id`), by unit, code and id.
   * Row-level security (migration 0007's `accounts_book`) is what keeps them to that person's; the
   * owner named here lets the query use the person's unique index instead of every platform account.
   */
  async listOwnPlatformAccounts(executor: LedgerExecutor, limit: number): Promise<AccountRow[]> {
    const { rows } = await sql<AccountRow>`
      select ${ACCOUNT_COLUMNS} from ledger.accounts
       where tenant_id is null and owner_kind = 'user' and owner_user_id = socle.current_user_id()
       order by unit, code nulls first, id
       limit ${limit}`.execute(executor);
    return rows;
  },

  /**
   * Transfers of the platform's book touching any of `accountIds`, newest first, before `beforeSeq`
   * (row-level security also keeps a person's request to the transfers touching their own). Each
   * account's debit and credit index ranges are read newest first, at most `limit` rows each, so a
   * page costs the same on a wallet with ten transfers or a million.
   */
  async listPlatformTransfersOf(
    executor: LedgerExecutor,
    accountIds: readonly string[],
    beforeSeq: bigint | undefined,
    limit: number,
  ): Promise<TransferRow[]> {
    if (accountIds.length === 0) return [];
    const before = beforeSeq === undefined ? sql`true` : sql`seq < ${beforeSeq.toString()}::bigint`;
    // A transfer between two of the accounts comes from both ranges: one row per seq.
    const { rows } = await sql<TransferRow>`
      select distinct on (t.seq) t.*
        from unnest(${sortedArrayLiteral(accountIds)}::uuid[]) as a (id)
        cross join lateral (
          (select ${TRANSFER_COLUMNS} from ledger.transfers
            where debit_account_id = a.id and tenant_id = ${PLATFORM_BOOK}::uuid and ${before}
            order by seq desc limit ${limit})
          union all
          (select ${TRANSFER_COLUMNS} from ledger.transfers
            where credit_account_id = a.id and tenant_id = ${PLATFORM_BOOK}::uuid and ${before}
            order by seq desc limit ${limit})
        ) t
       order by t.seq desc
       limit ${limit}`.execute(executor);
    return rows;
  },

  /** Holds of every tenant past their expiry and not resolved (owner session: crosses tenants). */
  async findExpiredHolds(
    connection: SqlConnection,
    now: Date,
    limit: number,
  ): Promise<{ tenant_id: string; id: string }[]> {
    const { rows } = await connection.query<{ tenant_id: string; id: string }>(
      `select h.tenant_id, h.id from ledger.transfers h
        where h.kind = 'hold' and h.expires_at <= $1
          and not exists (select 1 from ledger.transfers r where r.tenant_id = h.tenant_id and r.hold_id = h.id)
        order by h.expires_at limit $2`,
      [now.toISOString(), limit],
    );
    return rows;
  },

  /** Keeps a reconciliation's result (owner session: the table spans every organization). */
  async insertReconciliation(
    connection: SqlConnection,
    row: { checkedAt: Date; trigger: 'schedule' | 'operator'; ok: boolean; drift: unknown },
  ): Promise<void> {
    await connection.query(
      'insert into ledger.reconciliations (checked_at, trigger, ok, drift) values ($1, $2, $3, $4)',
      [row.checkedAt.toISOString(), row.trigger, row.ok, JSON.stringify(row.drift)],
    );
  },

  /** The latest reconciliation's result, if any ran. */
  async latestReconciliation(connection: SqlConnection) {
    const { rows } = await connection.query<{
      checked_at: Date | string;
      trigger: 'schedule' | 'operator';
      ok: boolean;
      drift: unknown;
    }>(
      'select checked_at, trigger, ok, drift from ledger.reconciliations order by checked_at desc, id desc limit 1',
    );
    return rows[0];
  },

  /**
   * Reconciliation, over every tenant (owner session): accounts whose stored sums differ from
   * what their transfers give, and units of a tenant whose accounts do not sum to zero.
   */
  async findDrift(connection: SqlConnection): Promise<{ accounts: DriftRow[]; units: UnitImbalanceRow[] }> {
    const accounts = await connection.query<DriftRow>(
      `with unresolved as (
         select h.debit_account_id, h.credit_account_id, h.amount from ledger.transfers h
          where h.kind = 'hold'
            and not exists (select 1 from ledger.transfers r where r.tenant_id = h.tenant_id and r.hold_id = h.id)
       ), effects (account_id, debits_pending, debits_posted, credits_pending, credits_posted) as (
         select debit_account_id, 0::numeric, amount::numeric, 0::numeric, 0::numeric
           from ledger.transfers where kind in ('transfer', 'post')
         union all
         select credit_account_id, 0, 0, 0, amount from ledger.transfers where kind in ('transfer', 'post')
         union all
         select debit_account_id, amount, 0, 0, 0 from unresolved
         union all
         select credit_account_id, 0, 0, amount, 0 from unresolved
       ), sums as (
         select account_id, sum(debits_pending) as debits_pending, sum(debits_posted) as debits_posted,
                sum(credits_pending) as credits_pending, sum(credits_posted) as credits_posted
           from effects group by account_id
       )
       select a.id, a.tenant_id, a.unit, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted,
              coalesce(s.debits_pending, 0)::text as computed_debits_pending,
              coalesce(s.debits_posted, 0)::text as computed_debits_posted,
              coalesce(s.credits_pending, 0)::text as computed_credits_pending,
              coalesce(s.credits_posted, 0)::text as computed_credits_posted
         from ledger.accounts a
         left join sums s on s.account_id = a.id
        where a.debits_pending <> coalesce(s.debits_pending, 0)
           or a.debits_posted <> coalesce(s.debits_posted, 0)
           or a.credits_pending <> coalesce(s.credits_pending, 0)
           or a.credits_posted <> coalesce(s.credits_posted, 0)
        order by a.tenant_id, a.id`,
    );
    const units = await connection.query<UnitImbalanceRow>(
      `select tenant_id, unit,
              sum(credits_posted::numeric - debits_posted::numeric)::text as posted,
              sum(credits_pending::numeric - debits_pending::numeric)::text as pending
         from ledger.accounts
        group by tenant_id, unit
       having sum(credits_posted::numeric - debits_posted::numeric) <> 0
           or sum(credits_pending::numeric - debits_pending::numeric) <> 0
        order by tenant_id, unit`,
    );
    return { accounts: accounts.rows, units: units.rows };
  },

  /** GDPR export: a person's accounts in every tenant and their transfers (owner session). */
  async exportOwner(connection: SqlConnection, userId: string) {
    const accounts = await connection.query(
      `select id, tenant_id as "orgId", owner_kind as "ownerKind", unit, scale, code, debits_pending::text as "debitsPending",
              debits_posted::text as "debitsPosted", credits_pending::text as "creditsPending",
              credits_posted::text as "creditsPosted", metadata, created_at as "createdAt"
         from ledger.accounts where owner_user_id = $1 order by created_at, id`,
      [userId],
    );
    const transfers = await connection.query(
      `select nullif(t.tenant_id, '${PLATFORM_BOOK}') as "orgId", t.id, t.kind, t.debit_account_id as "debitAccountId",
              t.credit_account_id as "creditAccountId", t.amount::text as amount, t.unit, t.hold_id as "holdId",
              t.reverses_id as "reversesId", t.code, t.metadata, t.created_at as "createdAt"
         from ledger.transfers t
        where t.debit_account_id in (select id from ledger.accounts where owner_user_id = $1)
           or t.credit_account_id in (select id from ledger.accounts where owner_user_id = $1)
        order by t.seq`,
      [userId],
    );
    return { accounts: accounts.rows, transfers: transfers.rows };
  },

  /**
   * GDPR erasure: the person's accounts stop naming them and lose their metadata, as do the
   * transfers touching them; ids, units and amounts stay, so every unit still sums to zero.
   */
  async eraseOwner(connection: SqlConnection, userId: string): Promise<void> {
    await connection.query(
      `update ledger.transfers set metadata = '{}'
        where metadata <> '{}'
          and (debit_account_id in (select id from ledger.accounts where owner_user_id = $1)
               or credit_account_id in (select id from ledger.accounts where owner_user_id = $1))`,
      [userId],
    );
    await connection.query(
      `update ledger.accounts set owner_kind = 'erased', owner_user_id = null, metadata = '{}'
        where owner_user_id = $1`,
      [userId],
    );
  },
};

/** A person's account changed by `ledger.post_transfer`: its owner and new sums (decimal strings). */
export interface OwnerSums {
  readonly userId: string;
  readonly accountId: string;
  readonly unit: string;
  readonly scale: number;
  readonly code: string | null;
  readonly debitsPending: string;
  readonly debitsPosted: string;
  readonly creditsPending: string;
  readonly creditsPosted: string;
}

/**
 * What `ledger.post_transfer` answers: `outcome`; on 'replay' the original transfer; on 'ok' only
 * what the caller did not send (`seq`, `unit`, `metadata` as stored; the other columns null) and
 * the new sums of the accounts a person owns (null when neither is).
 */
export type PostTransferResult = TransferRow & { outcome: string; pushes: OwnerSums[] | null };

/** The parameters of `ledger.post_transfer`. */
export type PostTransferParams = Pick<
  NewTransferRow,
  'id' | 'debit_account_id' | 'credit_account_id' | 'amount' | 'code' | 'created_at'
> & { readonly metadata: string };

/**
 * One posted transfer in one statement (migration 0004): lock, rules, insert, sums, replay check.
 * Prepared once (a named statement: Postgres parses it once per session): the ledger's hot path.
 */
export function preparePostTransfer(
  db: Database<LedgerTables>,
): PreparedQuery<PostTransferParams, PostTransferResult> {
  return db.prepare((kysely, p: PostTransferParams) => ({
    compile: () =>
      sql<PostTransferResult>`
        select * from ledger.post_transfer(${p.id}, ${p.debit_account_id}::uuid, ${p.credit_account_id}::uuid,
          ${p.amount}::bigint, ${p.code}, ${p.metadata}::jsonb, ${p.created_at}::timestamptz)`.compile(
        kysely,
      ),
  }));
}

/** What `ledger.post_transfers` answers: one {@link PostTransferResult} per transfer, by `ordinal` (from 1). */
export type PostTransfersResult = PostTransferResult & { ordinal: number };

/** The parameters of `ledger.post_transfers`: Postgres array literals, one element per transfer. */
export interface PostTransfersParams extends Record<string, unknown> {
  readonly ids: string;
  readonly debitAccountIds: string;
  readonly creditAccountIds: string;
  readonly amounts: string;
  readonly codes: string;
  readonly metadata: string;
  readonly createdAt: string;
}

/** The parameters of `ledger.post_transfers` for `transfers`, as array literals both drivers send alike. */
export function postTransfersParams(transfers: readonly PostTransferParams[]): PostTransfersParams {
  const column = (pick: (transfer: PostTransferParams) => string | null) => arrayLiteral(transfers.map(pick));
  return {
    ids: column((t) => t.id),
    debitAccountIds: column((t) => t.debit_account_id),
    creditAccountIds: column((t) => t.credit_account_id),
    amounts: column((t) => t.amount),
    codes: column((t) => t.code ?? null),
    metadata: column((t) => t.metadata),
    createdAt: column((t) => t.created_at),
  };
}

/**
 * Several posted transfers in one statement (migration 0006), each decided on its own as
 * `ledger.post_transfer` decides it: what concurrent single transfers are coalesced into.
 */
export function preparePostTransfers(
  db: Database<LedgerTables>,
): PreparedQuery<PostTransfersParams, PostTransfersResult> {
  return db.prepare((kysely, p: PostTransfersParams) => ({
    compile: () =>
      sql<PostTransfersResult>`
        select * from ledger.post_transfers(${p.ids}::text[], ${p.debitAccountIds}::uuid[],
          ${p.creditAccountIds}::uuid[], ${p.amounts}::bigint[], ${p.codes}::text[], ${p.metadata}::jsonb[],
          ${p.createdAt}::timestamptz[])`.compile(kysely),
  }));
}

/**
 * A Postgres array literal of text values, quoted, with null elements as NULL: for
 * `= any($1::text[])` and `ledger.post_transfers`'s columns, sent alike by both drivers.
 */
function arrayLiteral(values: readonly (string | null)[]): string {
  return `{${values.map((value) => (value === null ? 'NULL' : `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`)).join(',')}}`;
}

function sortedArrayLiteral(values: readonly string[]): string {
  return arrayLiteral([...values].sort());
}
