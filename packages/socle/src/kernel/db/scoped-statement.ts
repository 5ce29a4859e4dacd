import pg from 'pg';

/** A statement as sent by {@link ScopedStatement}: named statements are parsed once per session. */
export interface PipelinedStatement {
  readonly text: string;
  readonly values: readonly unknown[];
  /** Server-side prepared statement name; undefined sends it unnamed. */
  readonly name: string | undefined;
}

/** What a scoped statement produces: the rows and command tag of its last statement. */
export interface ScopedStatementResult<Row> {
  readonly rows: Row[];
  readonly command: string | null;
  readonly rowCount: number | null;
}

/**
 * The part of node-postgres' `Connection` (lib/connection.js) a submittable drives. Not in
 * `@types/pg`, hence declared here; `parsedStatements` is the map node-postgres itself keeps of the
 * named statements the session has parsed, which Socle's plain named queries share.
 */
interface WireConnection {
  readonly stream: { cork?: () => void; uncork?: () => void };
  readonly parsedStatements: Record<string, string>;
  parse(message: { text: string; name?: string }): void;
  bind(message: {
    portal?: string;
    statement?: string;
    values?: readonly unknown[];
    valueMapper?: (value: unknown) => unknown;
  }): void;
  describe(message: { type: 'P' | 'S'; name?: string }): void;
  execute(message: { portal?: string; rows?: number }): void;
  sync(): void;
  query(text: string): void;
  sendCopyFail(message: string): void;
  on(event: 'parseComplete', listener: () => void): void;
  removeListener(event: 'parseComplete', listener: () => void): void;
}

interface WireField {
  readonly name: string;
  readonly dataTypeID: number;
  readonly format: string;
}

/** Type parsers by OID, as node-postgres' `types` option gives them. */
export interface TypeParsers {
  getTypeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown;
}

/**
 * The columns of a statement's rows and how each is parsed: built from its RowDescription once
 * and kept per prepared statement, so later executions skip Describe (Postgres then sends no
 * RowDescription, and none is parsed). Mirrors `pg.Result#addFields`/`parseRow` (lib/result.js).
 */
export class RowShape {
  readonly #names: readonly string[];
  readonly #parsers: readonly ((value: string) => unknown)[];
  readonly #binary: readonly boolean[];
  /** Every column set to null, copied per row so all rows share one object layout. */
  readonly #empty: Record<string, unknown>;

  constructor(fields: readonly WireField[], types: TypeParsers) {
    this.#names = fields.map((field) => field.name);
    this.#binary = fields.map((field) => field.format === 'binary');
    this.#parsers = fields.map((field) =>
      types.getTypeParser(field.dataTypeID, field.format === 'binary' ? 'binary' : 'text'),
    );
    this.#empty = Object.fromEntries(this.#names.map((name) => [name, null]));
  }

  parseRow(values: readonly unknown[]): Record<string, unknown> {
    const row = { ...this.#empty };
    for (let index = 0; index < this.#names.length; index++) {
      const raw = values[index];
      if (raw === null || raw === undefined) continue;
      const name = this.#names[index] as string;
      const parse = this.#parsers[index] as (value: string) => unknown;
      row[name] = parse((this.#binary[index] ? Buffer.from(raw as string) : raw) as string);
    }
    return row;
  }
}

/** A statement with no result columns (INSERT without RETURNING, …): Describe answered NoData. */
const NO_COLUMNS: readonly WireField[] = [];

/** node-postgres' reading of a command tag (lib/result.js): `SELECT 3`, `INSERT 0 1`, `CREATE TABLE`. */
const COMMAND_TAG = /^([A-Za-z]+)(?: (\d+))?(?: (\d+))?/;

/**
 * Known row shapes of one session's prepared statements, by statement name. It lives as long as
 * the session and its prepared statements: nothing is removed from either, a session is closed.
 */
export type RowShapes = Map<string, RowShape>;

/** node-postgres' mapping of JavaScript values to wire values (the one its own queries use). */
const { prepareValue } = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils;

/**
 * Runs `settings` (a `select set_config(…, true)`) and then `statement` in ONE round trip and ONE
 * implicit transaction: Bind/Execute of both, then a single Sync. Postgres runs every message up
 * to a Sync in one implicit transaction (protocol "Extended Query": "the implicit transaction
 * block ... is closed by Sync"), so the settings are visible to the statement's row-level-security
 * policies and vanish at Sync, with no BEGIN/COMMIT round trips. Without parameters the pair goes
 * as one simple-protocol Query of two statements, which Postgres also runs as one implicit
 * transaction. If either fails, Postgres skips to Sync and rolls the implicit transaction back:
 * nothing of it remains, and the error is reported like any node-postgres query error.
 *
 * Hand-written as a node-postgres `Submittable` because no Node Postgres client pipelines two
 * statements before one Sync (node-postgres sends a Sync after every query, its pipeline mode
 * too). It mirrors node-postgres' own `lib/query.js` (message order, corking, row parsing as
 * `pg.Result` does, error on ReadyForQuery for a row that failed to parse). The first statement's
 * DataRow and CommandComplete are skipped; the result is the second statement's. Unlike
 * node-postgres, a named statement is described once per session: its {@link RowShape} is kept in
 * `shapes`, and later executions send no Describe. A statement whose result columns changed after
 * DDL fails with "cached plan must not change result type" whether described or not, and the
 * session then drops its statements (see `PostgresSession`).
 *
 * The same pipeline opens a transaction with its first statement: BEGIN, the settings, then the
 * statement, before one Sync. A BEGIN executed in a pipeline turns its implicit transaction into
 * a transaction block that the Sync does not end (it stays open for the next statements); if any
 * of the three fails, Postgres skips to Sync and the block is left aborted, for the caller's
 * ROLLBACK, as when a statement fails in a transaction opened by its own round trip.
 */
export class ScopedStatement<Row> {
  /**
   * What runs before the statement, its results skipped: the settings, or (a transaction's first
   * statement, see `PostgresSession.queryOpeningTransaction`) BEGIN and then the settings.
   */
  readonly #prefix: readonly PipelinedStatement[];
  readonly #statement: PipelinedStatement;
  readonly #types: TypeParsers;
  readonly #shapes: RowShapes;
  /** The statement's row shape: known before sending, or built from its RowDescription. */
  #shape: RowShape | undefined;
  /** Whether this round asked for the statement's description. */
  #describing = false;
  #command: string | null = null;
  #rowCount: number | null = null;
  readonly #resolve: (result: ScopedStatementResult<Row>) => void;
  readonly #reject: (error: unknown) => void;
  /** Statements sent for parsing in this round, in order, awaiting their ParseComplete. */
  readonly #parsing: PipelinedStatement[] = [];
  #connection: WireConnection | undefined;
  /** Statements of the prefix whose CommandComplete has not come yet. */
  #prefixLeft: number;
  #settled = false;
  #rowError: unknown;
  readonly rows: Row[] = [];
  readonly promise: Promise<ScopedStatementResult<Row>>;

  constructor(
    prefix: PipelinedStatement | readonly PipelinedStatement[],
    statement: PipelinedStatement,
    types: TypeParsers,
    shapes: RowShapes,
  ) {
    this.#prefix = Array.isArray(prefix) ? prefix : [prefix as PipelinedStatement];
    this.#prefixLeft = this.#prefix.length;
    this.#statement = statement;
    this.#types = types;
    this.#shapes = shapes;
    this.#shape = statement.name === undefined ? undefined : shapes.get(statement.name);
    let resolve!: (result: ScopedStatementResult<Row>) => void;
    let reject!: (error: unknown) => void;
    this.promise = new Promise((onResolve, onReject) => {
      resolve = onResolve;
      reject = onReject;
    });
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** Called by node-postgres when this query's turn on the session comes. */
  submit(connection: WireConnection): Error | null {
    this.#connection = connection;
    if (this.#statement.values.length === 0) {
      // The prefix's statements have no values here either (their texts carry them as literals).
      connection.query(`${this.#prefix.map((each) => each.text).join('; ')}; ${this.#statement.text}`);
      return null;
    }
    connection.stream.cork?.();
    try {
      // Each statement's Parse (unless its name is parsed already), Bind and Execute in turn (an
      // unnamed Parse replaces the previous unnamed statement), then one Sync.
      for (const each of this.#prefix) {
        this.#parseUnlessParsed(connection, each);
        connection.bind({ statement: each.name ?? '', values: each.values });
        connection.execute({ portal: '' });
      }
      this.#parseUnlessParsed(connection, this.#statement);
      if (this.#parsing.length > 0) connection.on('parseComplete', this.#onParseComplete);
      try {
        connection.bind({
          statement: this.#statement.name ?? '',
          values: this.#statement.values,
          valueMapper: prepareValue,
        });
      } catch (error) {
        // A value that cannot be serialized: nothing of the statement was written. The Sync
        // ends the settings' implicit transaction; the error is reported once it is answered.
        this.#rowError = error;
        connection.sync();
        return null;
      }
      if (this.#shape === undefined) {
        this.#describing = true;
        connection.describe({ type: 'P', name: '' });
      }
      connection.execute({ portal: '' });
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  #parseUnlessParsed(connection: WireConnection, statement: PipelinedStatement): void {
    if (statement.name !== undefined && connection.parsedStatements[statement.name] !== undefined) return;
    connection.parse(
      statement.name === undefined
        ? { text: statement.text }
        : { text: statement.text, name: statement.name },
    );
    this.#parsing.push(statement);
  }

  /**
   * A ParseComplete of this round: the oldest statement sent for parsing is now parsed on the
   * server (replies come in order). A named one is recorded where node-postgres records its own
   * (node-postgres only does so for a query with a `name`, which this one has not, as it holds
   * two), so later plain queries of that name skip Parse. If a Parse fails, no ParseComplete
   * comes for it and the name stays unrecorded, so the next use parses it again.
   */
  readonly #onParseComplete = (): void => {
    const parsed = this.#parsing.shift();
    if (parsed?.name !== undefined && this.#connection !== undefined)
      this.#connection.parsedStatements[parsed.name] = parsed.text;
  };

  #stopListening(): void {
    if (this.#connection !== undefined)
      this.#connection.removeListener('parseComplete', this.#onParseComplete);
  }

  handleRowDescription(message: { fields: readonly WireField[] }): void {
    // Only the statement's portal is described; in a simple-protocol pair the settings' row
    // description comes before its CommandComplete and is skipped.
    if (this.#prefixLeft === 0) this.#describe(message.fields);
  }

  #describe(fields: readonly WireField[]): void {
    this.#shape = new RowShape(fields, this.#types);
    if (this.#statement.name !== undefined) this.#shapes.set(this.#statement.name, this.#shape);
  }

  handleDataRow(message: { fields: readonly unknown[] }): void {
    if (this.#prefixLeft > 0 || this.#rowError !== undefined) return;
    try {
      this.rows.push((this.#shape as RowShape).parseRow(message.fields) as Row);
    } catch (error) {
      this.#rowError = error;
    }
  }

  handleCommandComplete(message: { text: string }): void {
    if (this.#prefixLeft > 0) {
      this.#prefixLeft--;
      return;
    }
    // Described, and no RowDescription came: the statement has no result columns (NoData).
    if (this.#describing && this.#shape === undefined) this.#describe(NO_COLUMNS);
    const tag = COMMAND_TAG.exec(message.text);
    if (tag !== null) {
      this.#command = tag[1] as string;
      const count = tag[3] ?? tag[2];
      if (count !== undefined) this.#rowCount = Number.parseInt(count, 10);
    }
  }

  handleEmptyQuery(): void {}

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: WireConnection): void {
    connection.sendCopyFail('No source stream defined');
  }

  handleCopyData(): void {}

  handleError(error: unknown): void {
    this.#stopListening();
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(this.#rowError ?? error);
  }

  handleReadyForQuery(): void {
    this.#stopListening();
    if (this.#settled) return;
    this.#settled = true;
    if (this.#rowError !== undefined) {
      this.#reject(this.#rowError);
      return;
    }
    this.#resolve({ rows: this.rows, command: this.#command, rowCount: this.#rowCount });
  }
}
