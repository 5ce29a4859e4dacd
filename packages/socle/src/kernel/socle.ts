import type { AddressInfo, ListenOptions as ListenOptionsOfNode } from 'node:net';
import path from 'node:path';
import { type BlobStore, openBlobStore } from './blobs/index.js';
import { createBus } from './bus/index.js';
import { type Clock, systemClock } from './clock/index.js';
import { type Config, describeConfiguration, resolveModuleSettings } from './config/index.js';
import { createScopeAccess, type ScopeAccess } from './context/index.js';
import {
  applyMigrations,
  createDatabaseOutageLog,
  createLoadShedding,
  type Database,
  loadMigrations,
  type Migration,
  migrationStatus,
  openDatabase,
} from './db/index.js';
import { createNodeReports, registerHealthRoutes } from './health/index.js';
import { createHttpServer, type HttpServer, installReadYourWrites, registerWebClient } from './http/index.js';
import { createLogger, type Logger } from './log/index.js';
import { createMetrics, type Metrics } from './metrics/index.js';
import {
  type ModuleContext,
  type ModuleDefinition,
  type ModulePrivacyHooks,
  moduleErrors,
  orderModules,
  type SetupContext,
} from './modules/index.js';
import { combinePrivacyHooks } from './privacy/index.js';
import { createJobEngine, type JobDefinition, type JobEngine, type JobQueue } from './queue/index.js';
import { createRateLimiter } from './rate-limit/index.js';
import { createRedisConnections } from './redis/index.js';
import { openSecretBox, type SecretBox } from './secrets/index.js';
import { createShardedJobEngine, installShards, shardConfig } from './shards/index.js';
import { createSharedStates } from './shared-state/index.js';
import { SOCLE_VERSION } from './version.js';

export { SOCLE_VERSION } from './version.js';

export interface CreateSocleOptions {
  readonly config: Config;
  /** Built-in modules and apps, in any order: they are sorted by `dependsOn`. */
  // biome-ignore lint/suspicious/noExplicitAny: each module is typed with its own tables
  readonly modules?: readonly ModuleDefinition<any>[];
  readonly log?: Logger;
  readonly clock?: Clock;
  /** Embedded mode only: keep the database in memory instead of on disk (tests). */
  readonly inMemory?: boolean;
  /** Job queues this process works; default `JOBS_QUEUES`. `socle worker` passes its `--queues`. */
  readonly jobQueues?: readonly JobQueue[];
  /** A blob store to use instead of the one `BLOB_URL` names (tests with their own S3 client). */
  readonly blobs?: BlobStore;
}

export interface ListenOptions {
  /**
   * Share the port with other processes listening with this option (SO_REUSEPORT, Linux): the
   * kernel spreads new connections between them. Only the processes of one `socle start
   * --processes N` set it, so a stray second server on the same port is still refused.
   */
  readonly reusePort?: boolean;
}

export interface CloseResult {
  /** False when the shutdown deadline passed and open connections were cut. */
  readonly drained: boolean;
}

/** A running (or ready to listen) Socle server. */
export interface Socle {
  readonly config: Config;
  readonly log: Logger;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly db: Database;
  /** The acting tenant and user of the current request or job. */
  readonly scope: ScopeAccess;
  /** Encrypts secrets stored in the database (SECRET_KEY). */
  readonly secrets: SecretBox;
  /** Where file bytes live (BLOB_URL): a local directory or an S3-compatible store. */
  readonly blobs: BlobStore;
  readonly app: HttpServer;
  readonly mode: 'embedded' | 'postgres';
  readonly modules: readonly ModuleDefinition[];
  readonly migrations: readonly Migration[];
  /** The context modules receive (database, log, clock, …): for CLI commands and tests. */
  readonly context: ModuleContext;
  /** The job engine (enqueue, inspect); `context.jobs` is the same. */
  readonly jobs: JobEngine;
  /**
   * The services a module's `setup` built (its public API): by definition (typed) or by name.
   *
   * @example
   * const realtime = createRealtimeModule();
   * const socle = await createSocle({ config, modules: [...builtIns, realtime] });
   * await socle.servicesOf(realtime).publish({ channel: 'news', event: 'posted', data: {} });
   */
  // biome-ignore lint/suspicious/noExplicitAny: any module's tables
  servicesOf<S>(module: ModuleDefinition<any, S> | string): S;
  /** Starts accepting connections on the configured host and port; resolves to the URL. */
  listen(options?: ListenOptions): Promise<string>;
  /**
   * Graceful stop: readiness turns 503, no new connections, in-flight requests get until the
   * shutdown deadline, then modules stop and the database closes. Idempotent.
   */
  close(): Promise<CloseResult>;
}

/** Every migration of the given modules, in dependency order. */
export function collectMigrations(modules: readonly ModuleDefinition[]): Migration[] {
  return orderModules(modules).flatMap((module) =>
    module.migrations === undefined ? [] : loadMigrations(module.name, module.name, module.migrations),
  );
}

/**
 * Assembles Socle: database (PGlite or Postgres), migrations, HTTP server, modules. Call
 * `listen()` to serve; `app.inject()` works without it.
 *
 * @example
 * const socle = await createSocle({ config: loadConfig({ env: process.env }), modules: [quiz] });
 * console.log(await socle.listen());
 */
export async function createSocle(options: CreateSocleOptions): Promise<Socle> {
  const { config } = options;
  const log = options.log ?? createLogger(config);
  const clock = options.clock ?? systemClock;
  const metrics = createMetrics();
  const modules = orderModules(options.modules ?? []);
  // Every module's settings, from the sources loadConfig read: all bad values reported at once,
  // before anything is opened.
  const moduleSettings = resolveModuleSettings(config, modules);
  const settingsOf = (module: ModuleDefinition | undefined) =>
    module === undefined ? {} : (moduleSettings[module.name] ?? {});
  const migrations = collectMigrations(modules);
  const secrets = openSecretBox({
    secretKey: config.secretKey,
    previousSecretKeys: config.previousSecretKeys,
    mode: config.databaseUrl === undefined ? 'embedded' : 'postgres',
    dataDir: path.resolve(config.baseDir, config.dataDir),
    ...(options.inMemory === undefined ? {} : { inMemory: options.inMemory }),
  });

  const databaseOutage = createDatabaseOutageLog(log);
  const shardFailures = metrics.counter({
    name: 'socle_db_shard_errors_total',
    help: 'Failures on each tenant shard: sessions that could not be opened, statements that failed',
    labelNames: ['shard'],
  });
  for (const shard of config.shards) shardFailures.inc({ shard: shard.name }, 0);
  const routeTenants = { clock, onShardError: (shard: string) => shardFailures.inc({ shard }) };
  const conflictRetries = metrics.counter({
    name: 'socle_db_transaction_retries_total',
    help: 'Transactions run again after Postgres rolled them back for a concurrent one (deadlock, serialization failure)',
  });
  const onConflictRetry = () => conflictRetries.inc();
  const requestsShed = metrics.counter({
    name: 'socle_db_requests_shed_total',
    help: 'Requests answered 503 db.overloaded at once because the request pool already had DATABASE_POOL_QUEUE_MAX callers queued (load shedding)',
  });
  const loadShedding = createLoadShedding({
    maxQueue: config.databasePoolQueueMax,
    onShed: () => requestsShed.inc(),
  });
  const db = await openDatabase({
    loadShedding,
    config,
    log,
    observeQuery: metrics.observeQuery,
    onConflictRetry,
    observeAcquire: (waitSeconds) => metrics.observePoolWait('request', waitSeconds),
    outage: databaseOutage,
    routeReads: { clock, metrics },
    routeTenants,
    ...(options.inMemory === undefined ? {} : { inMemory: options.inMemory }),
  });
  metrics.trackPool(() => db.statistics());
  // On Postgres, job handlers (webhooks, mail) get a pool of their own and readiness one session of
  // its own: neither can queue behind the other nor behind requests. Embedded has one session.
  const postgres = config.databaseUrl !== undefined;
  const backgroundDb = postgres
    ? await openDatabase({
        config,
        log,
        poolMax: config.databaseBackgroundPoolMax,
        applicationName: 'socle-background',
        onConflictRetry,
        observeAcquire: (waitSeconds) => metrics.observePoolWait('background', waitSeconds),
        outage: databaseOutage,
        routeTenants,
      })
    : db;
  const readinessDb = postgres
    ? await openDatabase({ config, log, poolMax: 1, applicationName: 'socle-readiness', outage: false })
    : db;
  // With SHARDS, readiness holds a session of each shard too (its outage is reported there).
  const readinessShards = await Promise.all(
    config.shards.map(async (shard) => ({
      name: shard.name,
      db: await openDatabase({
        config: shardConfig(config, shard.url),
        log,
        poolMax: 1,
        applicationName: 'socle-readiness',
        outage: false,
      }),
    })),
  );
  metrics.gauge({
    name: 'socle_db_shard_pool_connections',
    help: 'Connections of each tenant shard’s pools (request and background) by state (total, idle, waiting callers, max)',
    labelNames: ['shard', 'state'],
    collect(set) {
      const sums = new Map<string, { total: number; idle: number; waiting: number; max: number }>();
      for (const database of postgres ? [db, backgroundDb] : [])
        for (const { shard, statistics } of database.shardStatistics()) {
          const sum = sums.get(shard) ?? { total: 0, idle: 0, waiting: 0, max: 0 };
          sum.total += statistics.total;
          sum.idle += statistics.idle;
          sum.waiting += statistics.waiting;
          sum.max += statistics.max;
          sums.set(shard, sum);
        }
      for (const [shard, sum] of sums)
        for (const [state, value] of Object.entries(sum)) set({ shard, state }, value);
    },
  });
  const extraDatabases = postgres
    ? [backgroundDb, readinessDb, ...readinessShards.map((shard) => shard.db)]
    : [];
  const scope = createScopeAccess();
  // Every Redis connection of the process comes from here: bounded, namespaced, its outage logged once.
  const redis =
    config.redisUrl === undefined
      ? undefined
      : createRedisConnections({
          url: config.redisUrl,
          namespace: config.redisNamespace,
          commandTimeoutMs: config.redisCommandTimeoutMs,
          log,
        });
  const rateLimiter = createRateLimiter({ redis, clock, log });
  const bus = createBus({ redis, log });
  const sharedState = createSharedStates({ redis, clock, log });
  // Each node's summary on the bus, so any node shows the operator the whole fleet's health. Real
  // time whatever clock the modules get: rates are per real second.
  const nodeReports = createNodeReports({ bus, metrics, clock: systemClock, log });
  const blobs =
    options.blobs ??
    openBlobStore({ blobUrl: config.blobUrl, dataDir: path.resolve(config.baseDir, config.dataDir) });
  db.setTransactionContextProvider(scope.transactionSettings);
  backgroundDb.setTransactionContextProvider(scope.transactionSettings);

  let draining = false;
  /** Readiness fails from the stop signal on; requests are refused only once `draining`. */
  let stopping = false;
  const running = { count: 0 };
  let app: HttpServer | undefined;
  // What each module's setup returned, filled in dependency order: the one place services live.
  const services = new Map<string, unknown>();
  // biome-ignore lint/suspicious/noExplicitAny: any module's tables
  const servicesOf = <S>(module: ModuleDefinition<any, S> | string): S => {
    const name = typeof module === 'string' ? module : module.name;
    if (!services.has(name)) throw moduleErrors.notSetUp(name);
    return services.get(name) as S;
  };
  // Each handler gets its module's services; workers start after every module is set up.
  const jobModules = modules.map((module) => bindJobServices(module, () => servicesOf(module.name)));
  const primaryJobs = createJobEngine({
    db,
    backgroundDb,
    outage: databaseOutage,
    config,
    log,
    metrics,
    scope,
    modules: jobModules,
  });
  // With SHARDS, each shard has its own job tables and engine (see createShardedJobEngine).
  const jobs =
    config.shards.length === 0
      ? primaryJobs
      : createShardedJobEngine(
          primaryJobs,
          new Map(
            config.shards.map((shard) => [
              shard.name,
              createJobEngine({
                db,
                backgroundDb,
                config: shardConfig(config, shard.url),
                log,
                metrics,
                scope,
                modules: jobModules,
                runSchedules: false,
                sharedMetrics: primaryJobs.metrics,
              }),
            ]),
          ),
          (tenantId) => db.shardOf(tenantId),
        );
  // Modules whose tables stay on the primary with SHARDS get a database that never routes by tenant.
  const dbOf = (module: ModuleDefinition | undefined) =>
    module?.placement === 'primary' ? db.onPrimary() : db;
  let privacyHooks: readonly ModulePrivacyHooks[] | undefined;
  const setupContext: Omit<SetupContext, 'settings'> = {
    db,
    log,
    clock,
    config,
    metrics,
    scope,
    secrets,
    rateLimiter,
    modules,
    jobs,
    bus,
    sharedState,
    redis,
    blobs,
    servicesOf,
    configuration: () => describeConfiguration(config, modules, moduleSettings),
    fleetHealth: () => nodeReports.nodes(),
    privacyHooks() {
      privacyHooks ??= modules.flatMap((module) => {
        const build = module.privacy;
        if (build === undefined) return [];
        // A tenant module's rows about a person are wherever their organizations live: with
        // SHARDS its hooks are built once per database and run on each (combinePrivacyHooks).
        const databases = module.placement === 'primary' ? [] : db.everyDatabase();
        const hooks =
          databases.length <= 1
            ? build(contextOf(module))
            : combinePrivacyHooks(databases.map((database) => build({ ...contextOf(module), db: database })));
        return [{ module: module.name, hooks }];
      });
      return privacyHooks;
    },
  };
  const contextOf = (module?: ModuleDefinition): ModuleContext => ({
    ...setupContext,
    db: dbOf(module),
    settings: settingsOf(module),
    services: module === undefined ? undefined : services.get(module.name),
  });
  try {
    if (config.migrateOnStart) {
      await applyMigrations(db, migrations, log, { appRole: config.databaseAppRole });
      await jobs.install();
      await installShards({
        config,
        log,
        primary: db,
        migrations,
        modules,
        installJobs: (shardDb, ownConfig) =>
          createJobEngine({
            db: shardDb,
            config: ownConfig,
            log,
            metrics,
            scope,
            modules: jobModules,
            sharedMetrics: primaryJobs.metrics,
          }).install(),
      });
    } else {
      const pending = (await migrationStatus(db, migrations)).filter((status) => status.state !== 'applied');
      if (pending.length > 0)
        log.warn(
          { pending: pending.length },
          'Migrations are pending; run `socle migrate`. Not ready until then.',
        );
    }
    // From here on, everything modules do runs as the application role: RLS applies.
    for (const database of [db, ...extraDatabases]) database.enableAppRole(config.databaseAppRole);
    app = await createHttpServer({
      config,
      log,
      metrics,
      version: SOCLE_VERSION,
      isDraining: () => draining,
      running,
      loadShedding,
    });
    registerHealthRoutes(app, {
      db: readinessDb,
      migrations,
      metrics,
      redis,
      shards: readinessShards,
      isDraining: () => stopping || draining,
    });
    if (db.hasReplicas) installReadYourWrites(app, db, log);
    for (const module of modules)
      services.set(
        module.name,
        await module.setup?.({ ...setupContext, db: dbOf(module), settings: settingsOf(module) }),
      );
    for (const module of modules) await module.configureHttp?.(app, contextOf(module));
    for (const module of modules) {
      const routes = module.routes;
      if (routes) {
        await app.register(async (scope) => {
          await routes.call(module, scope as HttpServer, contextOf(module));
        });
      }
      if (module.web) await registerWebClient(app, module.name, module.web);
    }
    await jobs.start(options.jobQueues ?? (config.jobsQueues as JobQueue[]));
    for (const module of modules) await module.onStart?.(contextOf(module));
    await jobs.startWorkers();
    await nodeReports.start();
    await app.ready();
    // Organizations deleted while their shard could not be reached (or the node stopped in between).
    if (config.shards.length > 0)
      void db.purgeDeletedTenants().then(
        (done) => {
          if (done.length > 0)
            log.info({ organizations: done }, 'Deleted organizations purged from their shards');
        },
        (error: unknown) =>
          log.warn({ err: error }, 'Deleted organizations could not be purged from their shards yet'),
      );
  } catch (error) {
    await jobs.stop().catch(() => undefined);
    await app?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    for (const database of extraDatabases) await database.close().catch(() => undefined);
    await sharedState.close();
    await rateLimiter.close().catch(() => undefined);
    await nodeReports.stop();
    await bus.close().catch(() => undefined);
    await blobs.close().catch(() => undefined);
    await redis?.close().catch(() => undefined);
    throw error;
  }
  const server = app;

  let closing: Promise<CloseResult> | undefined;
  const close = async (): Promise<CloseResult> => {
    stopping = true;
    if (config.shutdownDrainDelayMs > 0) {
      // The load balancer sees /readyz fail and stops sending new requests here; until then they
      // are served as usual. Closing the listener sooner would reset connections still queued in
      // its backlog, which the balancer cannot safely retry for a non-idempotent request.
      log.info({ delayMs: config.shutdownDrainDelayMs }, 'Draining: readiness fails, still serving');
      await new Promise((resolve) => setTimeout(resolve, config.shutdownDrainDelayMs));
    }
    draining = true;
    const started = performance.now();
    // Workers stop taking jobs at once; running ones share the deadline with requests.
    const workersStopped = jobs.stopWorkers(config.shutdownTimeoutMs);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), config.shutdownTimeoutMs);
    });
    const closed = server.close().then(() => 'closed' as const);
    // Fastify closes only the connections idle when close() starts; a keep-alive connection whose
    // request finishes later would hold the drain until the deadline. Sweep idle ones meanwhile
    // (new requests on them are answered 503 with Connection: close by the HTTP layer).
    const sweep = setInterval(() => server.server.closeIdleConnections(), 50);
    closed.finally(() => clearInterval(sweep));
    const outcome = await Promise.race([closed, deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      log.warn(
        { deadlineMs: config.shutdownTimeoutMs },
        'Shutdown deadline passed; closing open connections',
      );
      server.server.closeAllConnections();
      await closed;
    }
    // Clients that hung up let the server close while their handlers still run: give those the
    // rest of the deadline before modules stop and the database closes.
    const waitUntil = started + config.shutdownTimeoutMs;
    while (running.count > 0 && performance.now() < waitUntil)
      await new Promise((resolve) => setTimeout(resolve, 10));
    const handlersDone = running.count <= 0;
    if (!handlersDone)
      log.warn({ running: running.count }, 'Requests still running at the shutdown deadline');
    await workersStopped;
    try {
      await jobs.stop();
    } catch (error) {
      log.error({ err: error }, 'Job engine failed to stop cleanly');
    }
    for (const module of [...modules].reverse()) {
      try {
        await module.onStop?.(contextOf(module));
      } catch (error) {
        log.error({ err: error, module: module.name }, 'Module failed to stop cleanly');
      }
    }
    // What modules left open (their onStop usually closed it), while Redis is still connected.
    await sharedState.close();
    await db.close();
    for (const database of extraDatabases) await database.close();
    await nodeReports.stop();
    await rateLimiter.close();
    await bus.close();
    await blobs.close();
    await redis?.close();
    return { drained: outcome === 'closed' && handlersDone };
  };

  return {
    config,
    log,
    clock,
    metrics,
    db,
    scope,
    secrets,
    blobs,
    app: server,
    mode: db.dialect === 'pglite' ? 'embedded' : 'postgres',
    modules,
    migrations,
    context: contextOf(),
    jobs,
    servicesOf,
    async listen(listenOptions = {}) {
      // Fastify hands its options to Node's `server.listen()` as they are; its typings do not list
      // `reusePort` (Node ≥ 22.12 on Linux), Node's do.
      const netOptions: ListenOptionsOfNode = {
        port: config.port,
        host: config.host,
        reusePort: listenOptions.reusePort === true,
      };
      // Fastify logs "Server listening at …" once per interface; the CLI's banner is the one line
      // that says where Socle listens. server.log is Fastify's own child logger: raising its level
      // for the call leaves every other log as it is.
      const level = server.log.level;
      server.log.level = 'warn';
      try {
        await server.listen(netOptions);
      } finally {
        server.log.level = level;
      }
      const address = server.server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`;
    },
    close() {
      closing ??= close();
      return closing;
    },
  };
}

/** The module with each job handler given the module's services as its second argument. */
function bindJobServices(module: ModuleDefinition, servicesOfModule: () => unknown): ModuleDefinition {
  if (module.jobs === undefined) return module;
  const bound: Record<string, JobDefinition> = {};
  for (const [name, definition] of Object.entries(module.jobs)) {
    bound[name] = { ...definition, handler: (context) => definition.handler(context, servicesOfModule()) };
  }
  return { ...module, jobs: bound };
}
