import pg from 'pg';

/** A statement as sent by {@link ScopedStatement}: named statements are parsed once per session. */
export interface PipelinedStatement {
  readonly text: string;
  readonly values: readonly unknown[];
  /** Server-side prepared statement name; undefined sends it unnamed. */
  readonly name: string | undefined;
}

/** What a scoped statement produces: the rows and command tag of the second statement. */
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

/** node-postgres' row parser (lib/result.js), exported as `pg.Result` but not typed. */
interface RowParser {
  addFields(fields: readonly WireField[]): void;
  parseRow(values: readonly unknown[]): Record<string, unknown>;
  addCommandComplete(message: { text: string }): void;
  readonly command: string | null;
  readonly rowCount: number | null;
}
const ResultClass = (pg as unknown as { Result: new (rowMode: undefined, types: unknown) => RowParser })
  .Result;
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
 * too). It mirrors node-postgres' own `lib/query.js` (message order, corking, row parsing with
 * `pg.Result`, error on ReadyForQuery for a row that failed to parse). The first statement's
 * DataRow and CommandComplete are skipped; the result is the second statement's.
 */
export class ScopedStatement<Row> {
  readonly #settings: PipelinedStatement;
  readonly #statement: PipelinedStatement;
  readonly #result: RowParser;
  readonly #resolve: (result: ScopedStatementResult<Row>) => void;
  readonly #reject: (error: unknown) => void;
  /** Statements sent for parsing in this round, in order, awaiting their ParseComplete. */
  readonly #parsing: PipelinedStatement[] = [];
  #connection: WireConnection | undefined;
  #settingsDone = false;
  #settled = false;
  #rowError: unknown;
  readonly rows: Row[] = [];
  readonly promise: Promise<ScopedStatementResult<Row>>;

  constructor(settings: PipelinedStatement, statement: PipelinedStatement, types: unknown) {
    this.#settings = settings;
    this.#statement = statement;
    this.#result = new ResultClass(undefined, types);
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
      connection.query(`${this.#settings.text}; ${this.#statement.text}`);
      return null;
    }
    connection.stream.cork?.();
    try {
      // Each statement's Parse (unless its name is parsed already), Bind and Execute in turn (an
      // unnamed Parse replaces the previous unnamed statement), then one Sync.
      this.#parseUnlessParsed(connection, this.#settings);
      connection.bind({ statement: this.#settings.name ?? '', values: this.#settings.values });
      connection.execute({ portal: '' });
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
      connection.describe({ type: 'P', name: '' });
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
    if (this.#settingsDone) this.#result.addFields(message.fields);
  }

  handleDataRow(message: { fields: readonly unknown[] }): void {
    if (!this.#settingsDone || this.#rowError !== undefined) return;
    try {
      this.rows.push(this.#result.parseRow(message.fields) as Row);
    } catch (error) {
      this.#rowError = error;
    }
  }

  handleCommandComplete(message: { text: string }): void {
    if (!this.#settingsDone) {
      this.#settingsDone = true;
      return;
    }
    this.#result.addCommandComplete(message);
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
    this.#resolve({ rows: this.rows, command: this.#result.command, rowCount: this.#result.rowCount });
  }
}
