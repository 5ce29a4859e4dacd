import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import {
  type DatabaseBackend,
  type LeasedConnection,
  type SettingEntries,
  setConfigStatement,
} from './backend.js';
import { quoteIdentifier } from './quote-literal.js';

/**
 * Transaction-local settings handed from `Database.transaction` to the BEGIN of the transaction
 * it opens, so BEGIN and `set_config` go to the server as one simple-protocol script (one round
 * trip instead of two).
 *
 * Why an AsyncLocalStorage: Kysely's TransactionBuilder passes only its own settings (isolation,
 * access mode) to `Driver.beginTransaction`. A field set on the driver before
 * `kysely.transaction().execute()` would be read after the await on the pool, by which time a
 * concurrent transaction may have overwritten it. The async context, by contrast, belongs to this
 * one call chain, and the only `beginTransaction` in it before the callback runs is Kysely's for
 * this very transaction. The handoff is claimed once: a transaction opened later in the same
 * context (say, inside the work) never inherits these settings. If Kysely ever stopped calling
 * `beginTransaction` in this context, `Database.transaction` finds the handoff unclaimed and sets
 * the values itself with a separate statement, so the settings are applied either way.
 */
export interface SettingsHandoff {
  readonly entries: SettingEntries;
  /** Set by whoever applies the settings: the driver at BEGIN, or the fallback. */
  claimed: boolean;
}

const pendingSettings = new AsyncLocalStorage<SettingsHandoff>();

/**
 * The settings of the transaction being opened in this async context, before its BEGIN claims them:
 * what the shard router reads to lease the session of the tenant the transaction acts for.
 */
export function pendingTransactionSettings(): SettingEntries | undefined {
  const handoff = pendingSettings.getStore();
  return handoff === undefined || handoff.claimed ? undefined : handoff.entries;
}

/** Runs `open`, which opens one Kysely transaction, with `handoff` for that transaction's BEGIN. */
export function withSettingsHandoff<T>(handoff: SettingsHandoff, open: () => Promise<T>): Promise<T> {
  return pendingSettings.run(handoff, open);
}

/**
 * The settings of the current scope (tenant, user) for a statement run outside a transaction;
 * undefined or empty when there are none.
 */
export type ScopeSettingsSource = () => SettingEntries | undefined;

/**
 * Kysely on a Socle backend. Kysely's own PostgresDialect needs a pg Pool; this one runs on
 * either backend, so PGlite and Postgres share one code path (and the same query metrics and
 * prepared statements).
 */
export function createKyselyDialect(
  backend: DatabaseBackend,
  scopeSettings: ScopeSettingsSource,
  options: { readonly refuseTransactions?: boolean; readonly onWrite?: WriteObserver | undefined } = {},
): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () =>
      new BackendDriver(backend, scopeSettings, options.refuseTransactions ?? false, options.onWrite),
    createQueryCompiler: () => new PostgresQueryCompiler(),
    createIntrospector: (db: Kysely<unknown>) => new PostgresIntrospector(db),
  };
}

type OpeningQuery = NonNullable<LeasedConnection['queryOpeningTransaction']>;

/**
 * Told after a transaction commits or a statement that may write succeeds outside one, so the
 * request's later reads and its client's next ones do not go to a replica that has not replayed it.
 */
export type WriteObserver = (shard: string | undefined) => void;

/** A statement outside a transaction that is not a plain `select` may have written (conservative). */
export function mayWrite(sql: string): boolean {
  return !/^\s*select\b/i.test(sql);
}

/** One statement on a leased session, in its own implicit transaction with `settings` when there are any. */
function querySession<Row>(
  leased: LeasedConnection,
  settings: SettingEntries | undefined,
  sql: string,
  parameters: readonly unknown[],
) {
  return settings === undefined || settings.length === 0
    ? leased.query<Row>(sql, parameters)
    : leased.queryInScope<Row>(settings, sql, parameters);
}

/**
 * Runs one statement outside any transaction on a pooled session, with the scope's settings in
 * the same round trip: what Kysely's executor does for such a statement, without its connection
 * provider and promise chain (the hot path of `db.prepare(…).execute()`; see prepared-query.ts).
 */
export function createStatementRunner(
  backend: DatabaseBackend,
  scopeSettings: ScopeSettingsSource,
  onWrite?: WriteObserver,
) {
  return async <Row>(sql: string, parameters: readonly unknown[]): Promise<Row[]> => {
    const leased = await backend.acquire();
    try {
      const { rows } = await querySession<Row>(leased, scopeSettings(), sql, parameters);
      if (onWrite !== undefined && mayWrite(sql)) onWrite(leased.shard);
      return rows;
    } finally {
      // As Kysely's driver does (releaseConnection): the backend discards a session it knows broken.
      leased.release();
    }
  };
}

export type StatementRunner = ReturnType<typeof createStatementRunner>;

/** A transaction opened but not sent yet: its BEGIN and settings go with its first statement. */
interface PendingBegin {
  readonly begin: string;
  readonly settings: SettingEntries;
}

class BackendConnection implements DatabaseConnection {
  /** Between BEGIN and COMMIT/ROLLBACK of a Kysely transaction on this connection. */
  inTransaction = false;
  /**
   * Set by beginTransaction on a session that can open a transaction with its first statement
   * (Postgres): cleared when that statement sends it, or when the transaction ends without any
   * (nothing was sent, so nothing is committed or rolled back).
   */
  pendingBegin: PendingBegin | undefined;

  constructor(
    readonly leased: LeasedConnection,
    private readonly scopeSettings: ScopeSettingsSource,
    private readonly onWrite: WriteObserver | undefined,
  ) {}

  async executeQuery<Row>(compiledQuery: CompiledQuery): Promise<QueryResult<Row>> {
    // Inside a transaction the settings came with BEGIN. Outside one, each statement carries the
    // scope's settings in its own implicit transaction (one round trip on Postgres), so a single
    // statement of a request is confined to its tenant without opening a transaction.
    const pending = this.pendingBegin;
    if (pending !== undefined) {
      // The transaction's first statement: BEGIN and its settings go with it, in one round trip.
      this.pendingBegin = undefined;
      const result = await (this.leased.queryOpeningTransaction as OpeningQuery)<Row>(
        pending.begin,
        pending.settings,
        compiledQuery.sql,
        compiledQuery.parameters,
      );
      return {
        rows: result.rows,
        ...(result.affectedRows === undefined ? {} : { numAffectedRows: BigInt(result.affectedRows) }),
      };
    }
    const result = await querySession<Row>(
      this.leased,
      this.inTransaction ? undefined : this.scopeSettings(),
      compiledQuery.sql,
      compiledQuery.parameters,
    );
    if (this.onWrite !== undefined && !this.inTransaction && mayWrite(compiledQuery.sql))
      this.onWrite(this.leased.shard);
    return {
      rows: result.rows,
      ...(result.affectedRows === undefined ? {} : { numAffectedRows: BigInt(result.affectedRows) }),
    };
  }

  // biome-ignore lint/correctness/useYield: streaming is refused before any row is produced
  async *streamQuery<Row>(): AsyncIterableIterator<QueryResult<Row>> {
    throw new Error('Socle does not support streaming queries; page with keyset pagination instead');
  }
}

class BackendDriver implements Driver {
  constructor(
    private readonly backend: DatabaseBackend,
    private readonly scopeSettings: ScopeSettingsSource,
    /** `db.withSettings()`: its settings reach single statements only, never a BEGIN. */
    private readonly refuseTransactions: boolean,
    private readonly onWrite: WriteObserver | undefined,
  ) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new BackendConnection(await this.backend.acquire(), this.scopeSettings, this.onWrite);
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    if (this.refuseTransactions)
      throw new TypeError(
        'db.withSettings() runs single statements; open a transaction with db.transaction(work, { settings })',
      );
    const modes = [
      settings.isolationLevel ? `isolation level ${settings.isolationLevel}` : '',
      settings.accessMode ?? '',
    ].filter(Boolean);
    let script = `begin${modes.length > 0 ? ` ${modes.join(' ')}` : ''}`;
    const handoff = pendingSettings.getStore();
    let claimedHere = false;
    if (handoff !== undefined && !handoff.claimed) {
      handoff.claimed = true;
      claimedHere = true;
      if (handoff.entries.length > 0) script += `; ${setConfigStatement(handoff.entries)}`;
    }
    const leased = (connection as BackendConnection).leased;
    (connection as BackendConnection).inTransaction = true;
    if (leased.queryOpeningTransaction !== undefined) {
      // Sent with the transaction's first statement (one round trip fewer per transaction). The
      // session is marked now: released before that statement ends (its owner crashed), it is
      // discarded, never pooled mid-transaction.
      (connection as BackendConnection).pendingBegin = {
        begin: modes.length > 0 ? `begin ${modes.join(' ')}` : 'begin',
        settings: claimedHere && handoff !== undefined ? handoff.entries : [],
      };
      leased.setInTransaction(true);
      return;
    }
    // Marked first: if the script fails after its BEGIN (the set_config part, or the connection
    // drops), the session is in an (aborted) transaction. Kysely does not roll back a transaction
    // whose BEGIN threw, so roll back here; if even that fails, the session stays marked and is
    // discarded on release instead of going back to the pool mid-transaction.
    leased.setInTransaction(true);
    try {
      await leased.execute(script);
    } catch (error) {
      try {
        await leased.execute('rollback');
        leased.setInTransaction(false);
      } catch {
        // Discarded on release (see above).
      }
      throw error;
    }
  }

  /** Sends a transaction's pending BEGIN and settings on their own (before a savepoint). */
  async #sendPendingBegin(connection: BackendConnection): Promise<void> {
    const pending = connection.pendingBegin;
    if (pending === undefined) return;
    connection.pendingBegin = undefined;
    await connection.leased.execute(
      pending.settings.length > 0
        ? `${pending.begin}; ${setConfigStatement(pending.settings)}`
        : pending.begin,
    );
  }

  /** Ends a transaction that never sent its BEGIN (no statement ran): nothing to send. */
  #endUnsent(connection: BackendConnection): boolean {
    if (connection.pendingBegin === undefined) return false;
    connection.pendingBegin = undefined;
    connection.leased.setInTransaction(false);
    connection.inTransaction = false;
    return true;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.#endUnsent(connection as BackendConnection)) return;
    const leased = (connection as BackendConnection).leased;
    await leased.execute('commit');
    leased.setInTransaction(false);
    (connection as BackendConnection).inTransaction = false;
    this.onWrite?.(leased.shard);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.#endUnsent(connection as BackendConnection)) return;
    const leased = (connection as BackendConnection).leased;
    await leased.execute('rollback');
    leased.setInTransaction(false);
    (connection as BackendConnection).inTransaction = false;
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await this.#sendPendingBegin(connection as BackendConnection);
    await (connection as BackendConnection).leased.execute(`savepoint ${quoteIdentifier(name)}`);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await this.#sendPendingBegin(connection as BackendConnection);
    await (connection as BackendConnection).leased.execute(`rollback to savepoint ${quoteIdentifier(name)}`);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await this.#sendPendingBegin(connection as BackendConnection);
    await (connection as BackendConnection).leased.execute(`release savepoint ${quoteIdentifier(name)}`);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as BackendConnection).leased.release();
  }

  async destroy(): Promise<void> {
    // The backend is owned and closed by Database, not by Kysely.
  }
}
