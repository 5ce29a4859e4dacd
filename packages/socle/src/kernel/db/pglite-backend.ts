import { mkdirSync } from 'node:fs';
import { PGlite, types } from '@electric-sql/pglite';
import { btree_gist } from '@electric-sql/pglite/contrib/btree_gist';
import { citext } from '@electric-sql/pglite/contrib/citext';
import { cube } from '@electric-sql/pglite/contrib/cube';
import { earthdistance } from '@electric-sql/pglite/contrib/earthdistance';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto';
import {
  type DatabaseBackend,
  type LeasedConnection,
  type Privilege,
  type QueryObserver,
  type SettingEntries,
  type SqlResult,
  setConfigStatement,
  switchRole,
} from './backend.js';
import { Mutex } from './mutex.js';

export interface PgliteBackendOptions {
  /** Directory of the database files; undefined keeps everything in memory. */
  readonly dataDir: string | undefined;
  readonly observeQuery?: QueryObserver;
}

const identity = (value: string) => value;

/** Postgres's `shared_buffers` in embedded mode (Postgres's own default: 128MB). */
const EMBEDDED_SHARED_BUFFERS = '32MB';

/**
 * Embedded Postgres (PGlite, Postgres 18 compiled to WASM) in this process. One session, shared
 * through a FIFO mutex: a leased connection owns PGlite until released.
 */
export async function createPgliteBackend(
  options: PgliteBackendOptions,
): Promise<DatabaseBackend & { pglite: PGlite }> {
  if (options.dataDir !== undefined) mkdirSync(options.dataDir, { recursive: true });
  const pglite = await PGlite.create({
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    extensions: { btree_gist, citext, cube, earthdistance, pg_trgm, pgcrypto },
    parsers: { [types.INT8]: identity, [types.DATE]: identity },
    // Postgres's default 128 MB of shared buffers is most of an idle embedded server's memory
    // (PGlite touches all of it at start): 32 MB holds a development or small database's working
    // set, and the operating system caches the files below it. See docs/operations.md.
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${EMBEDDED_SHARED_BUFFERS}`],
  });
  const mutex = new Mutex();
  const observe = options.observeQuery;
  let closed = false;
  let appRole: string | undefined;
  let currentRole: string | null = null;

  async function timed<T>(run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await run();
      observe?.((performance.now() - started) / 1000, 'ok');
      return result;
    } catch (error) {
      observe?.((performance.now() - started) / 1000, 'error');
      throw error;
    }
  }

  const connection: LeasedConnection = {
    async query<Row>(text: string, parameters: readonly unknown[] = []): Promise<SqlResult<Row>> {
      const result = await timed(() => pglite.query<Row>(text, parameters as unknown[]));
      return { rows: result.rows, affectedRows: result.affectedRows };
    },
    // In-process, round trips cost little: a short transaction under the lease (the mutex) gives
    // the semantics of Postgres' pipelined pair: settings visible to the statement, then gone,
    // and nothing left behind if the statement fails.
    async queryInScope<Row>(
      settings: SettingEntries,
      text: string,
      parameters: readonly unknown[] = [],
    ): Promise<SqlResult<Row>> {
      const result = await timed(async () => {
        try {
          await pglite.exec(`begin; ${setConfigStatement(settings)}`);
          const rows = await pglite.query<Row>(text, parameters as unknown[]);
          await pglite.exec('commit');
          return rows;
        } catch (error) {
          await pglite.exec('rollback');
          throw error;
        }
      });
      return { rows: result.rows, affectedRows: result.affectedRows };
    },
    async execute(script: string): Promise<void> {
      await timed(() => pglite.exec(script));
    },
    async executeWithRows<Row>(script: string): Promise<Row[]> {
      const results = await timed(() => pglite.exec(script));
      return results.flatMap((result) => result.rows as Row[]);
    },
    setInTransaction() {},
    release() {
      mutex.unlock();
    },
  };

  return {
    dialect: 'pglite',
    location: options.dataDir ?? 'memory',
    pglite,
    async acquire(privilege: Privilege = 'app') {
      if (closed) throw new Error('The embedded database is closed');
      await mutex.lock();
      try {
        currentRole = await switchRole(
          connection,
          currentRole,
          privilege === 'owner' ? null : (appRole ?? null),
        );
      } catch (error) {
        mutex.unlock();
        throw error;
      }
      return connection;
    },
    setAppRole(role) {
      appRole = role;
    },
    async listen(channel, onNotification) {
      const unsubscribe = await pglite.listen(channel, onNotification);
      return async () => {
        if (!closed) await unsubscribe();
      };
    },
    statistics: () => ({ total: 1, idle: mutex.locked ? 0 : 1, waiting: mutex.waiting, max: 1 }),
    async close() {
      if (closed) return;
      closed = true;
      // Wait for the current holder so a transaction is not cut in half.
      await mutex.lock();
      await pglite.close();
    },
  };
}
