import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.js';
import { createOutageLog, type Logger } from '../log/index.js';
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
  /** Embedded mode only: keep the database in memory instead of `<dataDir>/data` (tests). */
  readonly inMemory?: boolean;
}

/** Opens Postgres when `databaseUrl` is set, otherwise the embedded PGlite database. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const { config, log } = options;
  if (config.databaseUrl !== undefined) {
    return createDatabase(
      createPostgresBackend({
        url: config.databaseUrl,
        poolMax: config.databasePoolMax,
        connectTimeoutMs: config.databaseConnectTimeoutMs,
        statementTimeoutMs: config.databaseStatementTimeoutMs,
        outage: createOutageLog(log, 'Database', 'requests answer 503 db.unavailable'),
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
