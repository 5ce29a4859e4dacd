import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../clock/index.js';
import type { Config } from '../config/index.js';
import { createOutageLog, type Logger, type OutageLog } from '../log/index.js';
import type { AcquireObserver, DatabaseBackend, QueryObserver } from './backend.js';
import { lockDataDirectory } from './data-dir-lock.js';
import { createDatabase, type Database } from './database.js';
import type { LoadShedding } from './load-shedding.js';
import { createPgliteBackend } from './pglite-backend.js';
import { createPostgresBackend, redactUrl } from './postgres-backend.js';
import {
  createReadRouter,
  createReplicaInstruments,
  type ReadRouter,
  type ReadRoutingMetrics,
  type Replica,
  type ReplicaInstruments,
} from './read-routing.js';
import { createShardRouter, PRIMARY_SHARD, type ShardRouter } from './shard-routing.js';

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
  > &
    Partial<
      Pick<
        Config,
        | 'databaseReplicaUrls'
        | 'databaseReplicaMaxLagMs'
        | 'databaseReplicaCheckIntervalMs'
        | 'shards'
        | 'shardsDirectoryCacheMs'
      >
    >;
  readonly log: Logger;
  readonly observeQuery?: QueryObserver;
  /** Postgres: called each time a transaction that lost to a concurrent one runs again. */
  readonly onConflictRetry?: () => void;
  /** Told how long each lease waited for a session of this pool (its replicas' and shards' too). */
  readonly observeAcquire?: AcquireObserver;
  /**
   * The request pool's load shedding: a request's first lease is refused while this pool (its
   * replicas', its shards') queue is full. Other pools (background, readiness) queue.
   */
  readonly loadShedding?: LoadShedding;
  /** Postgres: connections of this pool; default `databasePoolMax`. */
  readonly poolMax?: number;
  /** Postgres: `application_name` of its sessions (tells the pools apart in pg_stat_activity). */
  readonly applicationName?: string;
  /**
   * Postgres: where an outage is logged (once); several pools of one process share one. Default: a
   * new one; `false`: not logged (the readiness check reports it itself).
   */
  readonly outage?: OutageLog | false;
  /**
   * Embedded mode only: fill an empty `<dataDir>/data` from this gzipped tar of a data directory
   * (what `Database.snapshot` returns) before opening it (`socle restore`).
   */
  readonly loadDataDir?: Uint8Array;
  /** Embedded mode only: keep the database in memory instead of `<dataDir>/data` (tests). */
  readonly inMemory?: boolean;
  /**
   * Postgres: open a pool per `databaseReplicaUrls` and send `db.replica` reads there (the request
   * pool only; background work and readiness use the primary).
   */
  readonly routeReads?: { readonly clock: Clock; readonly metrics?: ReadRoutingMetrics };
  /**
   * Postgres with `SHARDS`: open a pool per shard and run each statement acting for a tenant on
   * that tenant's shard (the request and background pools; readiness and migrations use the primary).
   */
  readonly routeTenants?: {
    readonly clock: Clock;
    /** Counts a failure on a shard (see ShardRouterOptions.onError). */
    readonly onShardError?: (shard: string) => void;
  };
}

/** The backend with the pool's load shedding, when it has one. */
const guarded = <Backend extends DatabaseBackend>(options: OpenDatabaseOptions, backend: Backend) =>
  options.loadShedding === undefined ? backend : options.loadShedding.guard(backend);

/**
 * A Postgres pool of this node sized and bounded like every other (primary, shard, replica), with
 * the pool's load shedding; `logFields` say which pool in the log line of an idle connection's failure.
 */
function openPostgresPool(
  options: OpenDatabaseOptions,
  pool: {
    readonly url: string;
    readonly applicationName: string | undefined;
    readonly outage: OutageLog | undefined;
    readonly logFields: Record<string, string>;
    readonly idleFailure: string;
  },
): DatabaseBackend {
  const { config, log } = options;
  return guarded(
    options,
    createPostgresBackend({
      url: pool.url,
      poolMax: options.poolMax ?? config.databasePoolMax,
      connectTimeoutMs: config.databaseConnectTimeoutMs,
      statementTimeoutMs: config.databaseStatementTimeoutMs,
      ...(pool.applicationName === undefined ? {} : { applicationName: pool.applicationName }),
      ...(pool.outage === undefined ? {} : { outage: pool.outage }),
      preparedStatements: config.databasePreparedStatements,
      ...(options.observeQuery ? { observeQuery: options.observeQuery } : {}),
      ...(options.observeAcquire ? { observeAcquire: options.observeAcquire } : {}),
      onPoolError: (error) => log.warn({ err: error, ...pool.logFields }, pool.idleFailure),
    }),
  );
}

/** `host:port/database` of a replica URL: its name in logs and metrics. */
function replicaName(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || parsed.searchParams.get('host') || 'localhost'}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return redactUrl(url);
  }
}

/**
 * A pool per replica URL and the router that sends `db.replica` reads of `database` (`primary`,
 * or a shard's name) to them, each replica's position read once before the first read is routed
 * (one that does not answer stays out).
 */
async function openReadRouter(
  options: OpenDatabaseOptions,
  database: string,
  primary: DatabaseBackend,
  urls: readonly string[],
  routing: NonNullable<OpenDatabaseOptions['routeReads']>,
  instruments: ReplicaInstruments | undefined,
): Promise<{ router: ReadRouter; replicas: Replica[] }> {
  const { config, log } = options;
  const replicas = urls.map((url) => {
    const name = replicaName(url);
    const backend = openPostgresPool(options, {
      url,
      applicationName: `${options.applicationName ?? 'socle'}-replica`,
      outage: createOutageLog(log, `Read replica ${name}`, 'its reads go to the primary'),
      logFields: { replica: name },
      idleFailure: 'An idle replica connection failed; it was removed from the pool',
    });
    return { name, backend };
  });
  const router = createReadRouter({
    database,
    primary,
    replicas,
    maxLagMs: config.databaseReplicaMaxLagMs ?? 5000,
    checkIntervalMs: config.databaseReplicaCheckIntervalMs ?? 1000,
    clock: routing.clock,
    log,
    ...(instruments === undefined ? {} : { instruments }),
  });
  await router.check();
  return { router, replicas };
}

/**
 * A pool per `SHARDS` entry (sized and bounded like the primary's), the read router of each shard
 * with replicas (when this pool routes reads), and the router between them.
 */
async function openShards(
  options: OpenDatabaseOptions,
  primary: DatabaseBackend,
  routing: NonNullable<OpenDatabaseOptions['routeTenants']>,
  instruments: () => ReplicaInstruments | undefined,
): Promise<ShardRouter> {
  const { config, log } = options;
  const shards = new Map<string, DatabaseBackend>();
  const readRouters = new Map<string, ReadRouter>();
  const replicaBackends: DatabaseBackend[] = [];
  for (const shard of config.shards ?? []) {
    const backend = openPostgresPool(options, {
      url: shard.url,
      applicationName: `${options.applicationName ?? 'socle'}-shard-${shard.name}`,
      outage: createOutageLog(log, `Shard ${shard.name}`, 'requests of its tenants answer 503'),
      logFields: { shard: shard.name },
      idleFailure: 'An idle shard connection failed; it was removed from the pool',
    });
    shards.set(shard.name, backend);
    if (options.routeReads !== undefined && (shard.replicaUrls ?? []).length > 0) {
      const { router, replicas } = await openReadRouter(
        options,
        shard.name,
        backend,
        shard.replicaUrls ?? [],
        options.routeReads,
        instruments(),
      );
      readRouters.set(shard.name, router);
      replicaBackends.push(...replicas.map((replica) => replica.backend));
    }
  }
  return createShardRouter({
    primary,
    shards,
    readRouters,
    replicaBackends,
    cacheMs: config.shardsDirectoryCacheMs ?? 1000,
    clock: routing.clock,
    ...(routing.onShardError === undefined ? {} : { onError: routing.onShardError }),
  });
}

/** The one line a database outage gets, shared by the pools of a process. */
export function createDatabaseOutageLog(log: Logger): OutageLog {
  return createOutageLog(log, 'Database', 'requests answer 503 db.unavailable and jobs wait');
}

/** Opens Postgres when `databaseUrl` is set, otherwise the embedded PGlite database. */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const { config, log } = options;
  const replicaUrls = options.routeReads === undefined ? [] : (config.databaseReplicaUrls ?? []);
  if (config.databaseUrl === undefined && replicaUrls.length > 0)
    throw new TypeError('DATABASE_REPLICA_URLS needs DATABASE_URL: the embedded database has no replicas');
  if (config.databaseUrl === undefined && (config.shards ?? []).length > 0)
    throw new TypeError('SHARDS needs DATABASE_URL (the directory): the embedded database has no shards');
  if (config.databaseUrl !== undefined) {
    const primary = openPostgresPool(options, {
      url: config.databaseUrl,
      applicationName: options.applicationName,
      outage: options.outage === false ? undefined : (options.outage ?? createDatabaseOutageLog(log)),
      logFields: {},
      idleFailure: 'An idle database connection failed; it was removed from the pool',
    });
    // The replica metrics are registered once, by the first router that needs them.
    let instruments: ReplicaInstruments | undefined;
    const instrumentsOnce = () => {
      const metrics = options.routeReads?.metrics;
      if (metrics !== undefined) instruments ??= createReplicaInstruments(metrics);
      return instruments;
    };
    const shardRouter =
      options.routeTenants === undefined || (config.shards ?? []).length === 0
        ? undefined
        : await openShards(options, primary, options.routeTenants, instrumentsOnce);
    const sharded = {
      ...(shardRouter === undefined ? {} : { shardRouter }),
      ...(options.onConflictRetry === undefined ? {} : { onConflictRetry: options.onConflictRetry }),
    };
    if (replicaUrls.length === 0 || options.routeReads === undefined) return createDatabase(primary, sharded);
    const { router: readRouter, replicas } = await openReadRouter(
      options,
      PRIMARY_SHARD,
      primary,
      replicaUrls,
      options.routeReads,
      instrumentsOnce(),
    );
    return createDatabase(primary, {
      readRouter,
      replicaBackends: replicas.map((replica) => replica.backend),
      ...sharded,
    });
  }
  if (options.inMemory) {
    return createDatabase(
      guarded(
        options,
        await createPgliteBackend({
          dataDir: undefined,
          ...(options.observeQuery ? { observeQuery: options.observeQuery } : {}),
          ...(options.observeAcquire ? { observeAcquire: options.observeAcquire } : {}),
        }),
      ),
    );
  }
  const root = path.resolve(config.baseDir, config.dataDir);
  mkdirSync(root, { recursive: true });
  const unlock = lockDataDirectory(root);
  try {
    const database = createDatabase(
      guarded(
        options,
        await createPgliteBackend({
          dataDir: path.join(root, 'data'),
          ...(options.loadDataDir === undefined ? {} : { loadDataDir: options.loadDataDir }),
          ...(options.observeQuery ? { observeQuery: options.observeQuery } : {}),
          ...(options.observeAcquire ? { observeAcquire: options.observeAcquire } : {}),
        }),
      ),
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
