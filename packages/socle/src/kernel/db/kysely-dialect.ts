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
import type { DatabaseBackend, LeasedConnection } from './backend.js';

/**
 * Kysely on a Socle backend. Kysely's own PostgresDialect needs a pg Pool; this one runs on
 * either backend, so PGlite and Postgres share one code path (and the same query metrics and
 * prepared statements).
 */
export function createKyselyDialect(backend: DatabaseBackend): Dialect {
  return {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new BackendDriver(backend),
    createQueryCompiler: () => new PostgresQueryCompiler(),
    createIntrospector: (db: Kysely<unknown>) => new PostgresIntrospector(db),
  };
}

class BackendConnection implements DatabaseConnection {
  constructor(readonly leased: LeasedConnection) {}

  async executeQuery<Row>(compiledQuery: CompiledQuery): Promise<QueryResult<Row>> {
    const result = await this.leased.query<Row>(compiledQuery.sql, compiledQuery.parameters);
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

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

class BackendDriver implements Driver {
  constructor(private readonly backend: DatabaseBackend) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    return new BackendConnection(await this.backend.acquire());
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const modes = [
      settings.isolationLevel ? `isolation level ${settings.isolationLevel}` : '',
      settings.accessMode ?? '',
    ].filter(Boolean);
    const leased = (connection as BackendConnection).leased;
    await leased.execute(`begin${modes.length > 0 ? ` ${modes.join(' ')}` : ''}`);
    leased.setInTransaction(true);
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const leased = (connection as BackendConnection).leased;
    await leased.execute('commit');
    leased.setInTransaction(false);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const leased = (connection as BackendConnection).leased;
    await leased.execute('rollback');
    leased.setInTransaction(false);
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await (connection as BackendConnection).leased.execute(`savepoint ${quoteIdentifier(name)}`);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await (connection as BackendConnection).leased.execute(`rollback to savepoint ${quoteIdentifier(name)}`);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await (connection as BackendConnection).leased.execute(`release savepoint ${quoteIdentifier(name)}`);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as BackendConnection).leased.release();
  }

  async destroy(): Promise<void> {
    // The backend is owned and closed by Database, not by Kysely.
  }
}
