import { quoteIdentifier, quoteLiteral } from './quote-literal.js';
/** Rows and counts of one statement, the same shape on PGlite and on Postgres. */
export interface SqlResult<Row> {
  readonly rows: Row[];
  /** Rows inserted, updated or deleted; undefined for statements that do not count rows. */
  readonly affectedRows: number | undefined;
}

/**
 * One database session, held exclusively until released. The kernel's migration runner, the
 * Kysely driver and health checks sit on this; modules never see it.
 */
export interface SqlConnection {
  /** One statement with `$n` parameters (extended protocol). */
  query<Row = Record<string, unknown>>(
    text: string,
    parameters?: readonly unknown[],
  ): Promise<SqlResult<Row>>;
  /** A script of several statements without parameters (simple protocol), e.g. a migration. */
  execute(script: string): Promise<void>;
  /** Like `execute`, and returns the rows of every statement of the script, in order (the job engine). */
  executeWithRows<Row = Record<string, unknown>>(script: string): Promise<Row[]>;
}

export interface PoolStatistics {
  /** Open connections. */
  readonly total: number;
  readonly idle: number;
  /** Callers queued for a connection. */
  readonly waiting: number;
  readonly max: number;
}

export type Dialect = 'pglite' | 'postgres';

/** Observes every statement; the metrics module times queries through it. */
export type QueryObserver = (durationSeconds: number, outcome: 'ok' | 'error') => void;

/**
 * Observes every lease: how long the caller waited for a session (a busy pool queues callers).
 * The metrics module reports it as `socle_db_pool_wait_seconds`, the wait that statement timings
 * do not show.
 */
export type AcquireObserver = (waitSeconds: number) => void;

/**
 * Who a session acts as. `app`: the application role, which owns nothing, so row-level security
 * applies (once enabled). `owner`: the login role that owns the schemas; migrations only.
 */
export type Privilege = 'app' | 'owner';

/** An embedded or a networked Postgres: the one seam between Socle and where its data lives. */
export interface DatabaseBackend {
  readonly dialect: Dialect;
  /** Where the data is, for humans: a directory or a URL without its password. */
  readonly location: string;
  acquire(privilege?: Privilege): Promise<LeasedConnection>;
  /** From now on, `app` sessions run `SET ROLE <role>`; undefined keeps the login role. */
  setAppRole(role: string | undefined): void;
  /**
   * Embedded only: subscribes to a NOTIFY channel of this in-process database (on Postgres, the
   * job engine holds its own listening connection). Resolves to the unsubscribe function.
   */
  listen?(channel: string, onNotification: (payload: string) => void): Promise<() => Promise<void>>;
  statistics(): PoolStatistics;
  close(): Promise<void>;
  /**
   * Embedded only: runs `work` (a transaction, a `withConnection`) in an async context that
   * remembers the session it leases, so a second lease asked from within it while the first is
   * held fails at once (`db.embedded_session_held`) instead of waiting for itself forever.
   */
  holdingLease?<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Embedded only: the whole data directory as a gzipped tar, taken between transactions (it
   * waits for the session, so no transaction is half in it): a consistent copy while serving.
   */
  snapshot?(): Promise<Uint8Array>;
}

/**
 * Runs `work` on a session of `backend` leased for it, and gives the session back, marked broken
 * when `work` threw (a session in an unknown state is closed, never reused).
 */
export async function withBackendSession<T>(
  backend: DatabaseBackend,
  privilege: Privilege,
  work: (connection: SqlConnection) => Promise<T>,
): Promise<T> {
  const connection = await backend.acquire(privilege);
  let broken = false;
  try {
    return await work(connection);
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    connection.release(broken);
  }
}

/** Transaction-local settings as `[name, value]` pairs, names already validated. */
export type SettingEntries = readonly (readonly [name: string, value: string])[];

/** `select set_config(E'app.tenant_id', E'…', true), …` with literal values, for a simple-protocol script. */
export function setConfigStatement(entries: SettingEntries): string {
  return `select ${entries.map(([name, value]) => `set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, true)`).join(', ')}`;
}

export interface LeasedConnection extends SqlConnection {
  /**
   * One statement, outside any transaction, with `settings` applied by `set_config(…, true)` in
   * the same transaction as the statement and gone after it: row-level security sees them, the
   * next statement on the session does not. On Postgres this is one round trip (see
   * ScopedStatement); on PGlite a short transaction.
   */
  queryInScope<Row>(
    settings: SettingEntries,
    text: string,
    parameters?: readonly unknown[],
  ): Promise<SqlResult<Row>>;
  /**
   * Opens a transaction with its first statement in one round trip: `begin` (BEGIN with its
   * modes), then `settings` applied by `set_config(…, true)` for the whole transaction, then the
   * statement, whose result it returns. Postgres only (see ScopedStatement); without it the
   * driver sends BEGIN and the settings on their own first.
   */
  queryOpeningTransaction?<Row>(
    begin: string,
    settings: SettingEntries,
    text: string,
    parameters?: readonly unknown[],
  ): Promise<SqlResult<Row>>;
  /** Marks the session as in or out of an explicit transaction (changes error recovery). */
  setInTransaction(inTransaction: boolean): void;
  /** Returns the session to the pool; `discard` closes it instead (it may be in a broken state). */
  release(discard?: boolean): void;
  /**
   * With `SHARDS`: the shard this session is of (undefined: the primary). What a write is noted
   * against, so the client's next reads wait for that database's replicas.
   */
  readonly shard?: string | undefined;
}

/**
 * Type parsing shared by both backends so a module sees the same JavaScript values on PGlite and
 * on Postgres: int8 and numeric stay strings (no silent precision loss), date stays `YYYY-MM-DD`
 * (a calendar date has no time zone; node-postgres would shift it to local midnight).
 */
export const TYPE_OIDS = { int8: 20, numeric: 1700, date: 1082 } as const;

/**
 * Puts a session in the role a lease asks for. Sessions remember their role, so this costs one
 * statement the first time a pooled session changes hands between migrations and the app.
 */
export async function switchRole(
  connection: SqlConnection,
  current: string | null,
  wanted: string | null,
): Promise<string | null> {
  if (current === wanted) return current;
  await connection.execute(wanted === null ? 'reset role' : `set role ${quoteIdentifier(wanted)}`);
  return wanted;
}
