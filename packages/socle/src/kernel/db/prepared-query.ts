import type { Compilable, CompiledQuery, Kysely, QueryExecutorProvider } from 'kysely';
import type { StatementRunner } from './kysely-dialect.js';

/** Stands in for a named parameter while the query is compiled once. */
class Placeholder {
  constructor(readonly name: string) {}
}

/** A query compiled once and executed with new parameter values each time. */
export interface PreparedQuery<Params, Row> {
  /** The SQL sent to the database (`$1`, `$2`… for the parameters). */
  readonly sql: string;
  execute(params: Params, executor?: QueryExecutorProvider): Promise<Row[]>;
  executeTakeFirst(params: Params, executor?: QueryExecutorProvider): Promise<Row | undefined>;
}

/**
 * Compiles a Kysely query once, with named placeholders where the values go, and binds values per
 * call. Building and compiling a Kysely query costs ~12 µs per call on this machine; binding costs
 * well under 1 µs, and the SQL text is the same string every time, so Postgres runs it as the same
 * named prepared statement. Use it on hot paths; use the query builder everywhere else.
 *
 * The builder runs once, so it must not branch on parameter values, and a parameter stands for one
 * value (for a list, write `= any(${params.ids})` rather than `in`).
 */
export function prepareQuery<Tables, Params extends Record<string, unknown>, Row>(
  kysely: Kysely<Tables>,
  build: (db: Kysely<Tables>, params: Params) => Compilable<Row>,
  runStatement: StatementRunner,
): PreparedQuery<Params, Row> {
  const placeholders = new Proxy({} as Params, {
    get: (_target, key) => (typeof key === 'string' ? new Placeholder(key) : undefined),
  });
  const compiled: CompiledQuery<Row> = build(kysely, placeholders).compile();
  const slots = compiled.parameters.map((value) => (value instanceof Placeholder ? value.name : undefined));

  const bind = (params: Params): CompiledQuery<Row> => {
    const parameters = compiled.parameters.map((constant, index) => {
      const name = slots[index];
      if (name === undefined) return constant;
      const value = params[name];
      if (value === undefined) throw new TypeError(`Prepared query parameter "${name}" is missing`);
      return value;
    });
    return { query: compiled.query, queryId: compiled.queryId, sql: compiled.sql, parameters };
  };

  // Without an executor the statement runs on its own, outside any transaction: straight to the
  // backend (same session handling and scope settings as Kysely's driver, fewer promise hops).
  // With one (a transaction), through Kysely, which owns that transaction's connection.
  const run = async (params: Params, executor: QueryExecutorProvider | undefined): Promise<Row[]> => {
    const query = bind(params);
    if (executor === undefined) return runStatement<Row>(query.sql, query.parameters);
    return (await executor.getExecutor().executeQuery(query)).rows;
  };
  return {
    sql: compiled.sql,
    execute: (params, executor) => run(params, executor),
    async executeTakeFirst(params, executor) {
      return (await run(params, executor))[0];
    },
  };
}
