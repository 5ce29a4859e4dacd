import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { createOutageLog, type Logger, type OutageLog } from '../log/index.js';
import type { QueryObserver } from './backend.js';
import { lockDataDirectory } from './data-dir-lock.js';
import { createDatabase, type Database } from './database.js';
import { createPgliteBackend } from './pglite-backend.js';
import { createPostgresBackend } from './postgres-backend.js';

export interface OpenDatabaseOptions {
  readonly config: Pick<
    Config,
    | 'databaseUrl'
    | 'databasePoolMax'
    | 'databaseConnectTimeoutMs'
    | 'databaseStatementTimeoutMs'
    | 'databasePreparedStatements'
    | 'dataDir'
    | 'baseDir'
  >;
  readonly log: Logger;
  readonly observeQuery?: QueryObserver;
  /** Postgres: connections of this pool; default `databasePoolMax`. */
  readonly poolMax?: number;
  /** Postgres: `application_name` of its sessions (tells the pools apart in pg_stat_activity). */
  readonly applicationName?: string;
  /**
   * Postgres: where an outage is logged (once); several pools of one process share one. Default: a
   * new one; `false`: not logged (the readiness check reports it itself).
   */
  readonly outage?: OutageLog | false;
  /** Embedded mode only: keep the database in memory instead of `<dataDir>/data` (tests). */
  readonly inMemory?: boolean;
}

/** The one line a database outage gets, shared by the pools of a process. */
export function createDatabaseOutageLog(log: Logger): OutageLog {
  return createOutageLog(log, 'Database', 'requests answer 503 db.unavailable and jobs wait');
}

/** Opens Postgres when `databaseUrl` is set, otherwise the embedded PGlite database. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const { config, log } = options;
  if (config.databaseUrl !== undefined) {
    return createDatabase(
      createPostgresBackend({
        url: config.databaseUrl,
        poolMax: options.poolMax ?? config.databasePoolMax,
        connectTimeoutMs: config.databaseConnectTimeoutMs,
        statementTimeoutMs: config.databaseStatementTimeoutMs,
        ...(options.applicationName === undefined ? {} : { applicationName: options.applicationName }),
        ...(options.outage === false ? {} : { outage: options.outage ?? createDatabaseOutageLog(log) }),
        preparedStatements: config.databasePreparedStatements,
        ...(options.observeQuery ? { observeQuery: options.observeQuery } : {}),
        onPoolError: (error) =>
          log.warn({ err: error }, 'An idle database connection failed; it was removed from the pool'),
      }),
    );
  }
  if (options.inMemory) {
    return createDatabase(
      await createPgliteBackend({
        dataDir: undefined,
        ...(options.observeQuery ? { observeQuery: options.observeQuery } : {}),
      }),
    );
  }
  const root = path.resolve(config.baseDir, config.dataDir);
  mkdirSync(root, { recursive: true });
  const unlock = lockDataDirectory(root);
  try {
    const database = createDatabase(
      await createPgliteBackend({
        dataDir: path.join(root, 'data'),
        ...(options.observeQuery ? { observeQuery: options.observeQuery } : {}),
      }),
    );
    const close = database.close;
    return Object.assign(database, {
      close: async () => {
        await close();
        unlock();
      },
    });
  } catch (error) {
    unlock();
    throw error;
  }
}
