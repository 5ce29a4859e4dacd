import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import { PGlite, types } from '@electric-sql/pglite';
import { btree_gist } from '@electric-sql/pglite/contrib/btree_gist';
import { citext } from '@electric-sql/pglite/contrib/citext';
import { cube } from '@electric-sql/pglite/contrib/cube';
import { earthdistance } from '@electric-sql/pglite/contrib/earthdistance';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { pgcrypto } from '@electric-sql/pglite/contrib/pgcrypto';
import { SocleError } from '../errors/index.js';
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
} from './backend.js';
import { Mutex } from './mutex.js';

export interface PgliteBackendOptions {
  /** Directory of the database files; undefined keeps everything in memory. */
  readonly dataDir: string | undefined;
  /** A gzipped tar of a data directory (`snapshot()`) to fill an empty `dataDir` from. */
  readonly loadDataDir?: Uint8Array;
  readonly observeQuery?: QueryObserver;
  /** Told how long each lease waited for the one session. */
  readonly observeAcquire?: AcquireObserver;
}

const identity = (value: string) => value;

/** Postgres's `shared_buffers` in embedded mode (Postgres's own default: 128MB). */
const EMBEDDED_SHARED_BUFFERS = '32MB';

/**
 * A lease asked for by work running inside a transaction (or `withConnection`) that holds the
 * only session: waiting would never end, since the holder waits for that work.
 */
export const embeddedSessionHeld = () =>
  new SocleError(
    'db.embedded_session_held',
    "A query asked for a second connection while a transaction of the same call holds the embedded database's only session: " +
      'it would wait for itself forever. Run it on the transaction (pass `trx`, not `db.kysely`, to queries, ' +
      '`jobs.enqueue(trx, …)`, `complete(trx)`), or after the transaction ends.',
  );

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
    ...(options.loadDataDir === undefined ? {} : { loadDataDir: new Blob([options.loadDataDir]) }),
    extensions: { btree_gist, citext, cube, earthdistance, pg_trgm, pgcrypto },
    parsers: { [types.INT8]: identity, [types.DATE]: identity },
    // Postgres's default 128 MB of shared buffers is most of an idle embedded server's memory
    // (PGlite touches all of it at start): 32 MB holds a development or small database's working
    // set, and the operating system caches the files below it. See docs/operations.md.
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${EMBEDDED_SHARED_BUFFERS}`],
  });
  const mutex = new Mutex();
  // Which work holds the session: each `holdingLease` call adds its own token to its async
  // context (nested calls keep their callers' tokens); a lease records the innermost token of the
  // context that took it, and a lease asked for in a context holding that token is refused.
  const leaseContext = new AsyncLocalStorage<readonly object[]>();
  let holder: object | undefined;
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
      holder = undefined;
      mutex.unlock();
    },
  };

  return {
    dialect: 'pglite',
    location: options.dataDir ?? 'memory',
    pglite,
    async acquire(privilege: Privilege = 'app') {
      if (closed) throw new Error('The embedded database is closed');
      const tokens = leaseContext.getStore();
      if (holder !== undefined && tokens?.includes(holder)) throw embeddedSessionHeld();
      const observeAcquire = options.observeAcquire;
      const asked = observeAcquire ? performance.now() : 0;
      await mutex.lock();
      observeAcquire?.((performance.now() - asked) / 1000);
      holder = tokens?.at(-1);
      try {
        currentRole = await switchRole(
          connection,
          currentRole,
          privilege === 'owner' ? null : (appRole ?? null),
        );
      } catch (error) {
        holder = undefined;
        mutex.unlock();
        throw error;
      }
      return connection;
    },
    setAppRole(role) {
      appRole = role;
    },
    holdingLease(work) {
      return leaseContext.run([...(leaseContext.getStore() ?? []), {}], work);
    },
    async listen(channel, onNotification) {
      // A notification is delivered while the transaction that sent it commits, in its context:
      // the listener's own work is not part of that transaction and may wait for the session.
      const unsubscribe = await pglite.listen(channel, (payload) =>
        leaseContext.exit(() => onNotification(payload)),
      );
      return async () => {
        if (!closed) await unsubscribe();
      };
    },
    async snapshot() {
      if (closed) throw new Error('The embedded database is closed');
      // Holding the session's lock: whatever it dumps is between two transactions.
      await mutex.lock();
      try {
        const archive = await pglite.dumpDataDir('gzip');
        return new Uint8Array(await archive.arrayBuffer());
      } finally {
        mutex.unlock();
      }
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
