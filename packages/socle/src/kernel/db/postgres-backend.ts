import { createHash } from 'node:crypto';
import pg from 'pg';
import type { OutageLog } from '../log/index.js';
import {
  type AcquireObserver,
  type DatabaseBackend,
  type LeasedConnection,
  type Privilege,
  type QueryObserver,
  type SettingEntries,
  type SqlResult,
  setConfigStatement,
  switchRole,
  TYPE_OIDS,
} from './backend.js';
import { databaseErrors, isDatabaseUnavailable } from './database-errors.js';
import {
  type PipelinedStatement,
  type RowShapes,
  ScopedStatement,
  type TypeParsers,
} from './scoped-statement.js';

export interface PostgresBackendOptions {
  readonly url: string;
  readonly poolMax: number;
  /** Longest wait for a connection: a new one to connect, or a busy pool to free one. */
  readonly connectTimeoutMs: number;
  /**
   * `statement_timeout` of every session. The client itself gives up `QUERY_TIMEOUT_MARGIN_MS`
   * later: a frozen server enforces nothing.
   */
  readonly statementTimeoutMs?: number;
  /** Told when a connect or statement fails because the server is unreachable, and when it answers again. */
  readonly outage?: OutageLog;
  readonly preparedStatements: boolean;
  readonly applicationName?: string;
  readonly observeQuery?: QueryObserver;
  /** Told how long each lease waited for a pooled connection (a new one connecting, or a busy pool). */
  readonly observeAcquire?: AcquireObserver;
  readonly onPoolError?: (error: Error) => void;
}

/**
 * How much longer than `statement_timeout` the client waits for an answer before it gives up on
 * the session: the server cancels a slow statement itself, so only an unresponsive server
 * (frozen, partitioned) reaches this.
 */
const QUERY_TIMEOUT_MARGIN_MS = 1000;
/** node-postgres reads `query_timeout` per query too; its typings list it on the client only. */
type TimedQueryConfig = pg.QueryConfig & { query_timeout?: number | undefined };

/** A session left idle inside a transaction (its owner hung) is ended by the server after this. */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;

/** Beyond this many named statements on one session, further statements run unnamed. */
const MAX_PREPARED_PER_CONNECTION = 256;
/** SQLSTATE 0A000 with this message: a prepared statement's result type changed after DDL. */
const CACHED_PLAN_CHANGED = /cached plan must not change result type/;

const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `socle_${createHash('sha1').update(text).digest('base64url').slice(0, 20)}`;
    if (statementNames.size > 10_000) statementNames.clear();
    statementNames.set(text, name);
  }
  return name;
}

/** `select set_config($1, $2, true), set_config($3, $4, true)…` for `count` settings, built once per count. */
const settingsStatements: string[] = [];
function settingsStatementText(count: number): string {
  let text = settingsStatements[count];
  if (text === undefined) {
    const calls = Array.from(
      { length: count },
      (_, index) => `set_config($${2 * index + 1}, $${2 * index + 2}, true)`,
    );
    text = `select ${calls.join(', ')}`;
    settingsStatements[count] = text;
  }
  return text;
}

const typeParsers: TypeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === TYPE_OIDS.date) return (value: string) => value;
    return pg.types.getTypeParser(oid, format);
  },
};

/** Rows and affected-row count of a pg result, as `SqlResult` reports them. */
function sqlResultOf<Row>(result: {
  rows: Row[];
  command: string | null;
  rowCount: number | null;
}): SqlResult<Row> {
  return {
    rows: result.rows,
    affectedRows: result.command === 'SELECT' ? undefined : (result.rowCount ?? undefined),
  };
}

/** Redacts the password of a connection URL for logs and banners. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(unparseable)';
  }
}

/**
 * One pooled pg client as Socle leases it. Kept per client (not rebuilt per lease) because the
 * acquire path runs once per query: no closures, no allocation.
 */
class PostgresSession implements LeasedConnection {
  /** Names of statements this session has prepared on the server. */
  readonly #prepared = new Set<string>();
  /** Result columns of the statements prepared through `queryInScope`, so they are described once. */
  readonly #shapes: RowShapes = new Map();
  #inTransaction = false;
  #released = true;
  /** Set when the server's prepared statements went stale; the session is closed on release. */
  #stale = false;

  constructor(
    readonly client: pg.PoolClient,
    private readonly options: PostgresBackendOptions,
  ) {
    // The pool listens for errors only on its idle clients. A leased one whose server session
    // ends (pg_terminate_backend, a restart, a failover) gets the server's farewell or the
    // socket's end as an 'error' event when no statement of it is running, and again when the
    // socket closes after a statement failed: without this listener, an uncaught exception. The
    // statement that fails (or the next one) reports the outage; the session is closed on release.
    client.on('error', () => {
      this.#stale = true;
    });
  }

  /** The role this session is in; null is the login role. */
  role: string | null = null;
  /**
   * How long the client waits for an answer before it gives up on the session (node-postgres
   * `query_timeout`); undefined for owner sessions, whose migrations may run long on purpose.
   */
  #readTimeoutMs: number | undefined;

  async lease(wanted: string | null, privilege: Privilege): Promise<this> {
    this.#released = false;
    this.#readTimeoutMs =
      privilege === 'owner' || this.options.statementTimeoutMs === undefined
        ? undefined
        : this.options.statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS;
    if (this.role !== wanted) {
      try {
        this.role = await switchRole(this, this.role, wanted);
      } catch (error) {
        this.release(true);
        throw error;
      }
    }
    return this;
  }

  /** Sends through `send`, reporting its duration and outcome to the query observer. */
  async #observed<Result>(send: () => Promise<Result>): Promise<Result> {
    const observe = this.options.observeQuery;
    const started = observe ? performance.now() : 0;
    try {
      const result = await send();
      observe?.((performance.now() - started) / 1000, 'ok');
      this.options.outage?.up();
      return result;
    } catch (error) {
      observe?.((performance.now() - started) / 1000, 'error');
      if (isDatabaseUnavailable(error)) {
        // The session is lost or still busy with a statement it gave up on: never reuse it.
        this.#stale = true;
        this.options.outage?.down(error);
        throw databaseErrors.unavailable(error);
      }
      throw error;
    }
  }

  async #run<Row>(
    text: string,
    parameters: readonly unknown[],
    name: string | undefined,
  ): Promise<SqlResult<Row>> {
    const config: TimedQueryConfig =
      name === undefined
        ? { text, values: parameters as unknown[], query_timeout: this.#readTimeoutMs }
        : { name, text, values: parameters as unknown[], query_timeout: this.#readTimeoutMs };
    const result = await this.#observed(() => this.client.query<Row & pg.QueryResultRow>(config));
    if (name !== undefined) this.#prepared.add(name);
    return sqlResultOf(result);
  }

  /**
   * `begin` (when given), the `settings`, then the statement, in one round trip (see
   * ScopedStatement): without `begin` in the implicit transaction the Sync ends; with it, in the
   * transaction it opens.
   */
  async #runScoped<Row>(
    settings: SettingEntries,
    text: string,
    parameters: readonly unknown[],
    named: boolean,
    begin?: string,
  ): Promise<SqlResult<Row>> {
    const prefix: PipelinedStatement[] =
      begin === undefined ? [] : [{ text: begin, values: [], name: undefined }];
    let name: string | undefined;
    let settingsName: string | undefined;
    if (parameters.length === 0) {
      // Sent as one simple-protocol Query of the statements (see ScopedStatement).
      if (settings.length > 0)
        prefix.push({ text: setConfigStatement(settings), values: [], name: undefined });
    } else if (settings.length > 0) {
      const values: string[] = [];
      for (const [setting, value] of settings) values.push(setting, value);
      const settingsText = settingsStatementText(settings.length);
      settingsName = named ? this.#statementNameFor(settingsText, values) : undefined;
      prefix.push({ text: settingsText, values, name: settingsName });
    }
    if (parameters.length > 0) name = named ? this.#statementNameFor(text, parameters) : undefined;
    const statement = new ScopedStatement<Row>(
      prefix,
      { text, values: parameters, name },
      typeParsers,
      this.#shapes,
    );
    const submitted = statement as unknown as pg.Submittable & { query_timeout?: number };
    if (this.#readTimeoutMs !== undefined) submitted.query_timeout = this.#readTimeoutMs;
    const result = await this.#observed(() => {
      this.client.query(submitted);
      return statement.promise;
    });
    if (name !== undefined) this.#prepared.add(name);
    if (settingsName !== undefined) this.#prepared.add(settingsName);
    return sqlResultOf(result);
  }

  async queryInScope<Row>(
    settings: SettingEntries,
    text: string,
    parameters: readonly unknown[] = [],
  ): Promise<SqlResult<Row>> {
    if (this.#inTransaction) throw new Error('queryInScope runs outside a transaction only');
    try {
      return await this.#runScoped<Row>(settings, text, parameters, true);
    } catch (error) {
      // As in `query`: a statement prepared before DDL changed its table fails; the implicit
      // transaction of the pair rolled back, so nothing ran, and it is retried unnamed.
      if (error instanceof Error && CACHED_PLAN_CHANGED.test(error.message)) {
        this.#stale = true;
        return this.#runScoped<Row>(settings, text, parameters, false);
      }
      throw error;
    }
  }

  /**
   * Opens a transaction with its first statement: `begin`, `settings` by `set_config(…, true)`
   * and the statement in one round trip (see ScopedStatement), one fewer than BEGIN on its own.
   * The caller marked the session in a transaction first: whatever fails, the session is in an
   * (aborted) transaction or lost, and is rolled back or discarded as after any statement of one.
   */
  async queryOpeningTransaction<Row>(
    begin: string,
    settings: SettingEntries,
    text: string,
    parameters: readonly unknown[] = [],
  ): Promise<SqlResult<Row>> {
    try {
      return await this.#runScoped<Row>(settings, text, parameters, true, begin);
    } catch (error) {
      // As in `query` inside a transaction: the statement is not retried (the transaction is aborted).
      if (error instanceof Error && CACHED_PLAN_CHANGED.test(error.message)) this.#stale = true;
      throw error;
    }
  }

  #statementNameFor(text: string, parameters: readonly unknown[]): string | undefined {
    if (!this.options.preparedStatements || this.#stale || parameters.length === 0) return undefined;
    const name = statementName(text);
    return this.#prepared.size < MAX_PREPARED_PER_CONNECTION || this.#prepared.has(name) ? name : undefined;
  }

  async query<Row>(text: string, parameters: readonly unknown[] = []): Promise<SqlResult<Row>> {
    try {
      return await this.#run<Row>(text, parameters, this.#statementNameFor(text, parameters));
    } catch (error) {
      // After DDL changed a table's columns, a statement prepared before fails. The session
      // is closed on release (node-postgres caches statement names too, so it cannot simply
      // re-prepare); outside a transaction nothing ran yet, so the statement is retried unnamed.
      if (error instanceof Error && CACHED_PLAN_CHANGED.test(error.message)) {
        this.#stale = true;
        if (!this.#inTransaction) return this.#run<Row>(text, parameters, undefined);
      }
      throw error;
    }
  }

  async execute(script: string): Promise<void> {
    await this.#run(script, [], undefined);
  }

  async executeWithRows<Row>(script: string): Promise<Row[]> {
    // Without parameters node-postgres uses the simple protocol: one result per statement.
    const config: TimedQueryConfig = { text: script, query_timeout: this.#readTimeoutMs };
    const result = (await this.#observed(() => this.client.query(config))) as unknown as
      | pg.QueryResult
      | pg.QueryResult[];
    return (Array.isArray(result) ? result : [result]).flatMap((each) => (each.rows ?? []) as Row[]);
  }

  setInTransaction(value: boolean): void {
    this.#inTransaction = value;
  }

  release(discard = false): void {
    if (this.#released) return;
    this.#released = true;
    // A session released mid-transaction (its owner crashed) cannot be reused safely.
    const destroy = discard || this.#stale || this.#inTransaction;
    this.#inTransaction = false;
    this.client.release(destroy ? true : undefined);
  }
}

/**
 * A node-postgres pool. Statements with parameters are sent as named prepared statements (the
 * name is a hash of the SQL text), which Postgres parses and plans once per connection: measured
 * here 15.4k vs 11k req/s for a primary-key select.
 */
export function createPostgresBackend(options: PostgresBackendOptions): DatabaseBackend & { pool: pg.Pool } {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax,
    connectionTimeoutMillis: options.connectTimeoutMs,
    ...(options.statementTimeoutMs === undefined
      ? {}
      : {
          statement_timeout: options.statementTimeoutMs,
          idle_in_transaction_session_timeout: Math.max(
            IDLE_IN_TRANSACTION_TIMEOUT_MS,
            options.statementTimeoutMs,
          ),
        }),
    idleTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'socle',
    // JIT off for every session: Socle's statements are short OLTP ones, and JIT compiles any
    // whose estimated cost passes jit_above_cost, which a function's default row estimates (a
    // security-definer SQL function over generate_series) reach easily: measured here 1.5–3.5 s of
    // compilation per call of CryptoCare's free_slots against 1.6 ms without. An `options`
    // parameter in DATABASE_URL replaces this (node-postgres lets the URL win).
    options: '-c jit=off',
    types: typeParsers,
  });
  // An idle client whose server went away emits here; without a listener the process would crash.
  pool.on('error', (error) => {
    if (isDatabaseUnavailable(error)) options.outage?.down(error);
    else options.onPoolError?.(error);
  });
  const sessions = new WeakMap<pg.PoolClient, PostgresSession>();
  let appRole: string | undefined;

  return {
    dialect: 'postgres',
    location: redactUrl(options.url),
    pool,
    async acquire(privilege: Privilege = 'app') {
      let client: pg.PoolClient;
      const observeAcquire = options.observeAcquire;
      const asked = observeAcquire ? performance.now() : 0;
      try {
        client = await pool.connect();
        observeAcquire?.((performance.now() - asked) / 1000);
      } catch (error) {
        if (!isDatabaseUnavailable(error)) throw error;
        options.outage?.down(error);
        throw databaseErrors.unavailable(error);
      }
      let session = sessions.get(client);
      if (session === undefined) {
        session = new PostgresSession(client, options);
        sessions.set(client, session);
      }
      return session.lease(privilege === 'owner' ? null : (appRole ?? null), privilege);
    },
    setAppRole(role) {
      appRole = role;
    },
    statistics: () => ({
      total: pool.totalCount,
      idle: pool.idleCount,
      waiting: pool.waitingCount,
      max: options.poolMax,
    }),
    close: () => pool.end(),
  };
}
