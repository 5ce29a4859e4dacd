import { createHash, randomUUID } from 'node:crypto';
import type { ConstructorOptions, Db, PgBoss, SendOptions } from 'pg-boss';
import { Compile, type Validator } from 'typebox/compile';
import type { Config } from '../config/index.js';
import type { RequestScope, ScopeAccess } from '../context/index.js';
import { type Database, isDatabaseUnavailable } from '../db/index.js';
import { quoteIdentifier } from '../db/quote-literal.js';
import type { FieldError } from '../errors/index.js';
import { isUuid } from '../ids/index.js';
import { createOutageLog, type Logger, type OutageLog } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import type { ModuleDefinition } from '../modules/index.js';
import { embeddedEngineDatabase, transactionExecutor } from './engine-database.js';
import { JOB_QUEUES, type JobBackoff, type JobDefinition, type JobQueue } from './job-definition.js';
import { createJobMetrics } from './job-metrics.js';
import {
  createJobRunner,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_TIMEOUT_MS,
  type Envelope,
  type JobRunner,
} from './job-runner.js';
import { jobErrors } from './jobs.errors.js';
import {
  createJobsStore,
  EFFECTS_TABLE_SQL,
  JOBS_SCHEMA,
  type JobListFilter,
  type JobRecord,
  type JobsStore,
} from './jobs.store.js';

/** Options of one enqueue. */
export interface EnqueueOptions {
  /**
   * De-duplication key: while a job enqueued with the same name, tenant and key is kept (queued, running,
   * or finished within retention), enqueueing again does nothing and returns the same id.
   */
  readonly key?: string;
  /** Run no earlier than this many milliseconds from now. */
  readonly delayMs?: number;
  /** Run no earlier than this time. */
  readonly startAfter?: Date;
  /** Overrides the job's declared priority (higher first). */
  readonly priority?: number;
  /** Overrides the job's declared `maxAttempts` (a setting read at start, for instance). */
  readonly maxAttempts?: number;
}

/** One job of {@link Jobs.enqueueMany}: its payload (default `{}`) and its own options. */
export interface JobToEnqueue extends EnqueueOptions {
  readonly payload?: unknown;
}

/** Where a job went: its id, and false when a job with the same key already existed. */
export interface Enqueued {
  readonly id: string;
  readonly created: boolean;
}

/** A transaction (or `db.kysely`) of the caller: the job commits or rolls back with it. */
export type JobExecutor = { executeQuery: unknown };

/**
 * Jobs as modules use them: enqueue in a transaction, and inspect or steer them (admin API).
 * `tenantId` on the admin functions: a tenant's view (only its jobs), or null for operators.
 */
export interface Jobs {
  /**
   * Enqueues `name` (`module.jobName`) inside the caller's transaction: no job without its row,
   * no row without its job. The payload is checked against the job's schema here. The tenant and
   * user of the current scope travel with the job; its handler runs in that scope.
   *
   * @example
   * await db.transaction(async (trx) => {
   *   const recording = await insertRecording(trx, upload);
   *   await jobs.enqueue(trx, 'crm.transcribe', { recordingId: recording.id }, { key: recording.id });
   * });
   */
  enqueue(trx: JobExecutor, name: string, payload?: unknown, options?: EnqueueOptions): Promise<Enqueued>;
  /**
   * Enqueues many jobs of one name in one statement, inside the caller's transaction: what to use
   * for a batch (a thousand jobs cost about as much as a few single enqueues). Every payload is
   * checked first; one bad payload throws `jobs.invalid_payload` (fields named `jobs/<index>/payload…`)
   * and nothing is written. Resolves with each job's id in the order given; `created` is false for a
   * job whose key was already taken (or given earlier in the same call).
   *
   * @example
   * await jobs.enqueueMany(trx, 'crm.transcribe', recordings.map((r) => ({ payload: { recordingId: r.id }, key: r.id })));
   */
  enqueueMany(trx: JobExecutor, name: string, jobs: readonly JobToEnqueue[]): Promise<Enqueued[]>;
  list(filter: JobListFilter): Promise<JobRecord[]>;
  get(id: string, tenantId: string | null): Promise<JobRecord>;
  /** Runs a failed (dead) or cancelled job again. */
  retry(id: string, tenantId: string | null): Promise<JobRecord>;
  /** Cancels a queued or running job (a running handler sees its signal aborted). */
  cancel(id: string, tenantId: string | null): Promise<JobRecord>;
}

export interface JobEngine extends Jobs {
  /** Every declared job, by `module.jobName`. */
  readonly definitions: ReadonlyMap<string, JobDefinition>;
  /** Installs or upgrades the engine's tables as the owner role and grants the app role. */
  install(): Promise<void>;
  /** Connects as the app role; `queues` will be worked in this process (none: enqueue only). */
  start(queues: readonly JobQueue[]): Promise<void>;
  /** Registers cron schedules and starts fetching jobs of the queues given to `start`. */
  startWorkers(): Promise<void>;
  /**
   * Stops taking jobs and waits up to `timeoutMs` for the running ones to finish. Enqueueing
   * still works (requests still draining may enqueue).
   */
  stopWorkers(timeoutMs: number): Promise<void>;
  /**
   * Disconnects. Jobs still running are released: failed with their retries left, so another
   * worker runs them again. Idempotent.
   */
  stop(): Promise<void>;
  /**
   * Runs in this process, now, every job that is due, queue after queue, until none is left
   * (retries without backoff are due at once and run too; a retry with a backoff waits for it);
   * resolves to how many attempts completed and failed. For tests and one-off commands: in a
   * process that works no queue (`JOBS_QUEUES=`) nothing else runs jobs, so every outcome is
   * there when it resolves, without polling. Stops after `maxJobs` attempts (default 10,000), in
   * case a job keeps enqueueing another.
   */
  runDueJobs(options?: { readonly maxJobs?: number }): Promise<{ completed: number; failed: number }>;
}

export interface JobEngineOptions {
  readonly db: Database;
  /**
   * The database job handlers get (`JobContext.db`): on Postgres a pool of its own
   * (`DATABASE_BACKGROUND_POOL_MAX`), so handlers holding connections (a slow webhook receiver)
   * cannot starve requests or readiness. Default: `db`.
   */
  readonly backgroundDb?: Database;
  /** Where a database outage seen by the engine's own pool is logged; the process's, to log it once. */
  readonly outage?: OutageLog;
  readonly config: Config;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly scope: ScopeAccess;
  readonly modules: readonly ModuleDefinition[];
}

const DEFAULT_BACKOFF: JobBackoff = { initialDelayMs: 1000 };
/** Finished and dead jobs are kept this long (listable, retryable), then deleted by maintenance. */
const KEEP_FINISHED_SECONDS = 30 * 24 * 3600;
/** Session advisory lock held while installing the engine on Postgres: "sjob" in ASCII. */
const INSTALL_LOCK_KEY = 0x736a6f62;
const JOB_NAME = /^[a-z][a-z0-9_]*\.[a-zA-Z][a-zA-Z0-9_]*$/;
/** A declared or per-enqueue `maxAttempts`: a whole number of runs, at least one. */
const isAttemptCount = (value: number) => Number.isInteger(value) && value >= 1;

/** The retry, lease and retention options of a job definition's rows. */
function sendOptionsFor(definition: JobDefinition): SendOptions {
  const backoff = definition.backoff ?? DEFAULT_BACKOFF;
  const timeoutSeconds = Math.ceil((definition.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000);
  return {
    priority: definition.priority ?? 0,
    retryLimit: (definition.maxAttempts ?? DEFAULT_MAX_ATTEMPTS) - 1,
    ...(backoff === false
      ? { retryDelay: 0, retryBackoff: false }
      : {
          retryDelay: Math.max(1, Math.round(backoff.initialDelayMs / 1000)),
          retryBackoff: true,
          ...(backoff.maxDelayMs === undefined
            ? {}
            : { retryDelayMax: Math.max(1, Math.round(backoff.maxDelayMs / 1000)) }),
        }),
    // The lease: a job whose worker died becomes runnable again this long after it started.
    expireInSeconds: timeoutSeconds + 1,
    deleteAfterSeconds: KEEP_FINISHED_SECONDS,
  };
}

/** Every job of every module, keyed `module.jobName`; checks each declaration. */
export function collectJobDefinitions(modules: readonly ModuleDefinition[]): Map<string, JobDefinition> {
  const definitions = new Map<string, JobDefinition>();
  for (const module of modules) {
    for (const [jobName, definition] of Object.entries(module.jobs ?? {})) {
      const name = `${module.name}.${jobName}`;
      if (!JOB_NAME.test(name)) throw jobErrors.invalidDefinition(name, 'names are letters, digits and _');
      if (definition.queue !== undefined && !JOB_QUEUES.includes(definition.queue))
        throw jobErrors.invalidDefinition(name, `queue must be one of ${JOB_QUEUES.join(', ')}`);
      if (definition.timeoutMs !== undefined && !(definition.timeoutMs >= 1000))
        throw jobErrors.invalidDefinition(name, 'timeoutMs must be at least 1000');
      if (definition.maxAttempts !== undefined && !isAttemptCount(definition.maxAttempts))
        throw jobErrors.invalidDefinition(name, 'maxAttempts must be an integer ≥ 1');
      definitions.set(name, definition as JobDefinition);
    }
  }
  return definitions;
}

/**
 * The job engine: pg-boss 12 on the server's database (PGlite in process, or Postgres with its
 * own small pool and a LISTEN connection), wrapped so modules never see it.
 *
 * Queues are pg-boss queues (`high`, `default`, `low`); a job's row carries its name, payload and
 * tenant. Each worked queue has `JOBS_CONCURRENCY` fetch loops that claim up to
 * `JOBS_BATCH_SIZE` jobs per round trip and run them concurrently, settling each on its own
 * (measured: fetching one job per round trip caps a queue at ~40 jobs/s on Postgres; batches with
 * `burstWhenBatchFull` drain a backlog without waiting for the poll interval, and NOTIFY wakes an
 * idle worker in milliseconds instead of at its next poll).
 */
export function createJobEngine(options: JobEngineOptions): JobEngine {
  const { db, config, log, metrics, scope } = options;
  const definitions = collectJobDefinitions(options.modules);
  const jobMetrics = createJobMetrics(metrics.registry);
  const outage = options.outage ?? createOutageLog(log, 'Database (job engine)', 'jobs wait');
  let boss: PgBoss | undefined;
  let store: JobsStore | undefined;
  let runner: JobRunner | undefined;
  let stopping: Promise<void> | undefined;
  let stopMetrics: (() => void) | undefined;
  let workQueues: readonly JobQueue[] = [];
  let running = 0;
  let workersStopping: Promise<void> | undefined;
  const validators = new Map<string, Validator | null>();
  const sendOptions = new Map(
    [...definitions].map(([name, definition]) => [name, Object.freeze(sendOptionsFor(definition))]),
  );

  const isEmbedded = config.databaseUrl === undefined;
  const superviseSeconds = Math.max(1, Math.round(config.jobsSuperviseIntervalMs / 1000));
  const common = {
    schema: JOBS_SCHEMA,
    openTelemetry: { enabled: false },
  } as const;

  // Loaded on first use: a process without jobs (most CLI commands) never pays for the import.
  const newBoss = async (bossOptions: ConstructorOptions): Promise<PgBoss> => {
    const { PgBoss: Boss } = await import('pg-boss');
    return new Boss(bossOptions);
  };
  // Without a declared job nor the jobs module, the engine stays off: nothing installed or polled.
  const enabled = definitions.size > 0 || options.modules.some((module) => module.name === JOBS_SCHEMA);

  const ownerBoss = () =>
    newBoss({
      ...common,
      ...(isEmbedded
        ? { db: embeddedEngineDatabase(db, 'owner'), backend: 'pglite' as const }
        : { connectionString: config.databaseUrl, max: 2, application_name: 'socle-jobs-install' }),
      migrate: true,
      supervise: false,
      schedule: false,
      registerInstance: false,
    });

  /**
   * What is wrong with a payload (fields named `<prefix>/…`), or undefined when it matches the
   * job's schema, compiled on the job's first enqueue.
   */
  const payloadErrors = (
    name: string,
    definition: JobDefinition,
    payload: unknown,
    prefix: string,
  ): FieldError[] | undefined => {
    let validator = validators.get(name);
    if (validator === undefined) {
      validator = definition.schema === undefined ? null : Compile(definition.schema);
      validators.set(name, validator);
    }
    if (validator === null) {
      return payload === null || typeof payload !== 'object' || Array.isArray(payload)
        ? [{ field: prefix, message: 'must be a JSON object' }]
        : undefined;
    }
    if (validator.Check(payload)) return undefined;
    return validator
      .Errors(payload)
      .slice(0, 10)
      .map((error) => ({ field: `${prefix}${error.instancePath}`, message: error.message }));
  };

  /**
   * The row of one job as pg-boss inserts it: the envelope (payload, the scope's tenant and user,
   * the priority) and the send options of its definition.
   */
  const jobRow = (
    name: string,
    definition: JobDefinition,
    payload: unknown,
    options: EnqueueOptions,
    current: RequestScope | undefined,
  ) => {
    const priority = options.priority ?? definition.priority ?? 0;
    const { maxAttempts } = options;
    if (maxAttempts !== undefined && !isAttemptCount(maxAttempts))
      throw jobErrors.invalidOptions(name, [{ field: 'maxAttempts', message: 'must be an integer ≥ 1' }]);
    const envelope: Envelope = {
      job: name,
      payload,
      ...(current?.tenantId === undefined ? {} : { tenantId: current.tenantId }),
      ...(current?.userId === undefined ? {} : { userId: current.userId }),
      ...(priority === 0 ? {} : { priority }),
      // Travels with the job (like the priority) so its handler knows its last attempt without
      // fetching the row's metadata.
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
    };
    // Keys are per tenant: another tenant's key never collides with (nor reveals) this one's job.
    const id =
      options.key === undefined ? undefined : keyedJobId(name, `${current?.tenantId ?? ''}:${options.key}`);
    const startAfter =
      options.startAfter ?? (options.delayMs === undefined ? undefined : options.delayMs / 1000);
    return {
      ...(sendOptions.get(name) as SendOptions),
      ...(maxAttempts === undefined ? {} : { retryLimit: maxAttempts - 1 }),
      data: envelope,
      priority,
      ...(id === undefined ? {} : { id }),
      ...(startAfter === undefined ? {} : { startAfter }),
    };
  };

  const definitionOf = (name: string) => {
    const definition = definitions.get(name);
    if (definition === undefined) throw jobErrors.unknownJob(name);
    return definition;
  };

  const requireStarted = () => {
    if (boss === undefined || store === undefined || runner === undefined || stopping !== undefined)
      throw jobErrors.engineNotStarted();
    return { boss, store, runner };
  };

  const get = async (id: string, tenantId: string | null) => {
    const { store: jobsStore } = requireStarted();
    if (!isUuid(id)) throw jobErrors.notFound(id);
    const job = await jobsStore.find(id, tenantId);
    if (job === undefined) throw jobErrors.notFound(id);
    return job;
  };

  /** pg-boss's tables and queues, the effects table, and the app role's grants, as the owner. */
  async function installEngine() {
    const installer = await ownerBoss();
    installer.on('error', (error) => log.warn({ err: error }, 'Job engine installer reported an error'));
    await installer.start();
    try {
      for (const queue of JOB_QUEUES) {
        if ((await installer.getQueue(queue)) === null) await installer.createQueue(queue, { notify: true });
      }
      const role = quoteIdentifier(config.databaseAppRole);
      const grants = `
        ${EFFECTS_TABLE_SQL}
        grant usage on schema ${JOBS_SCHEMA} to ${role};
        grant select, insert, update, delete on all tables in schema ${JOBS_SCHEMA} to ${role};
        grant usage, select on all sequences in schema ${JOBS_SCHEMA} to ${role};
        grant execute on all functions in schema ${JOBS_SCHEMA} to ${role};
        alter default privileges in schema ${JOBS_SCHEMA} grant select, insert, update, delete on tables to ${role};`;
      await installer.getDb().executeSql(grants);
    } finally {
      await installer.stop({ graceful: false, close: true });
    }
  }

  return {
    definitions,

    async install() {
      if (!enabled) return;
      // In process there is one session (and the installer takes it): nothing else can race.
      if (isEmbedded) return installEngine();
      // Nodes starting together on Postgres install one at a time: CREATE TABLE IF NOT EXISTS and
      // GRANT are not safe concurrently (a fleet's second worker failed its start on
      // pg_type_typname_nsp_index). The lock is held on a server session while the installer's own
      // pool does the work.
      await db.withConnection(async (connection) => {
        await connection.query('select pg_advisory_lock($1)', [INSTALL_LOCK_KEY]);
        try {
          await installEngine();
        } finally {
          await connection.query('select pg_advisory_unlock($1)', [INSTALL_LOCK_KEY]).catch(() => undefined);
        }
      }, 'owner');
    },

    async start(queuesToWork) {
      if (!enabled) return;
      workQueues = queuesToWork;
      const engineDb: Db | undefined = isEmbedded ? embeddedEngineDatabase(db, 'app') : undefined;
      const instance = await newBoss({
        ...common,
        ...(engineDb === undefined
          ? {
              connectionString: config.databaseUrl,
              max: config.jobsPoolMax,
              application_name: 'socle-jobs',
              connectionTimeoutMillis: config.databaseConnectTimeoutMs,
              // The engine's sessions act as the application role, like every other app session,
              // and are bounded like them.
              options: `-c role=${config.databaseAppRole} -c statement_timeout=${config.databaseStatementTimeoutMs}`,
            }
          : { db: engineDb, backend: 'pglite' as const }),
        useListenNotify: true,
        migrate: false,
        supervise: workQueues.length > 0,
        schedule: workQueues.length > 0,
        superviseIntervalSeconds: superviseSeconds,
        monitorIntervalSeconds: superviseSeconds,
        cronMonitorIntervalSeconds: Math.min(45, superviseSeconds),
        cronWorkerIntervalSeconds: Math.min(45, superviseSeconds),
        reindex: false,
        monitorVacuum: false,
        registerInstance: false,
      });
      // The engine polls even while the database is down: one line per outage, not per poll.
      instance.on('error', (error) => {
        if (isDatabaseUnavailable(error)) outage.down(error);
        else log.error({ err: error }, 'Job engine error');
      });
      instance.on('warning', (warning) =>
        log.warn({ data: warning.data }, `Job engine warning: ${warning.message}`),
      );
      await instance.start();
      // start() caches the queues (installed before), so an enqueue inside a transaction needs no
      // other session (on PGlite that session is the one the transaction holds).
      boss = instance;
      const startedStore = createJobsStore(engineDb ?? instance.getDb(), JOB_QUEUES);
      store = startedStore;
      runner = createJobRunner({
        definitions,
        db: options.backgroundDb ?? db,
        log,
        scope,
        metrics: jobMetrics,
        store: startedStore,
        engine: instance,
      });
      stopMetrics = jobMetrics.trackDepth(() => startedStore.depth());
    },

    async startWorkers() {
      if (!enabled) return;
      const { boss: instance, runner: batchRunner } = requireStarted();
      if (workQueues.length > 0) await registerSchedules(instance);
      const pollingSeconds = Math.max(0.5, config.jobsPollIntervalMs / 1000);
      for (const queue of workQueues) {
        await instance.work<Envelope, unknown, WorkOptionsFor>(
          queue,
          {
            batchSize: config.jobsBatchSize,
            localConcurrency: config.jobsConcurrency,
            perJobResults: true,
            burstWhenBatchFull: true,
            pollingIntervalSeconds: pollingSeconds,
            notifyPollingIntervalSeconds: pollingSeconds,
          },
          async (jobs) => {
            running += jobs.length;
            try {
              return await batchRunner.runBatch(jobs, queue);
            } finally {
              running -= jobs.length;
            }
          },
        );
      }
      if (workQueues.length > 0) log.info({ queues: workQueues }, 'Working job queues');
    },

    stopWorkers(timeoutMs) {
      workersStopping ??= (async () => {
        const instance = boss;
        if (instance === undefined) return;
        await Promise.all(workQueues.map((queue) => instance.offWork(queue, { wait: false })));
        const until = performance.now() + timeoutMs;
        while (running > 0 && performance.now() < until)
          await new Promise((resolve) => setTimeout(resolve, 10));
        if (running > 0) log.warn({ running }, 'Jobs still running at the shutdown deadline; releasing them');
      })();
      return workersStopping;
    },

    stop() {
      stopping ??= (async () => {
        stopMetrics?.();
        await boss?.stop({ graceful: false, close: true });
      })();
      return stopping;
    },

    async enqueue(trx, name, payload = {}, enqueueOptions = {}) {
      const definition = definitionOf(name);
      const errors = payloadErrors(name, definition, payload, 'payload');
      if (errors !== undefined) throw jobErrors.invalidPayload(name, errors);
      const { boss: instance } = requireStarted();
      const { data, ...sendOptions } = jobRow(name, definition, payload, enqueueOptions, scope.current());
      const created = await instance.send(definition.queue ?? 'default', data as unknown as object, {
        ...sendOptions,
        db: transactionExecutor(trx),
      });
      return { id: created ?? (sendOptions.id as string), created: created !== null };
    },

    async enqueueMany(trx, name, jobs) {
      const definition = definitionOf(name);
      const errors = jobs.flatMap(
        (job, index) => payloadErrors(name, definition, job.payload ?? {}, `jobs/${index}/payload`) ?? [],
      );
      if (errors.length > 0) throw jobErrors.invalidPayload(name, errors.slice(0, 10));
      const { boss: instance } = requireStarted();
      if (jobs.length === 0) return [];
      const current = scope.current();
      // Ids are chosen here (a keyed job's from its key) so each job's outcome is known from the
      // ids the insert returns; a key given twice in one call is one job.
      const rows = new Map<string, ReturnType<typeof jobRow>>();
      const ids = jobs.map((job) => {
        const row = jobRow(name, definition, job.payload ?? {}, job, current);
        const id = row.id ?? randomUUID();
        if (!rows.has(id)) rows.set(id, { ...row, id });
        return id;
      });
      const inserted = await instance.insert(definition.queue ?? 'default', [...rows.values()], {
        db: transactionExecutor(trx),
        returnId: true,
      });
      const created = new Set(inserted ?? []);
      return ids.map((id) => ({
        id,
        created: created.delete(id),
      }));
    },

    async runDueJobs(runOptions = {}) {
      const maxJobs = runOptions.maxJobs ?? 10_000;
      const outcome = { completed: 0, failed: 0 };
      if (!enabled) return outcome;
      const { boss: instance, store: jobsStore, runner: batchRunner } = requireStarted();
      for (;;) {
        let fetched = 0;
        for (const queue of JOB_QUEUES) {
          const limit = Math.min(config.jobsBatchSize, maxJobs - outcome.completed - outcome.failed);
          if (limit <= 0) return outcome;
          const batch = await instance.fetch<Envelope>(queue, { batchSize: limit });
          fetched += batch.length;
          if (batch.length === 0) continue;
          // fetch() hands out jobs without the signal work() gives them (aborted when shutdown
          // releases a job); nothing releases these, so theirs is never aborted.
          const unreleased = new AbortController().signal;
          const retryCounts = new Map(batch.map((job) => [job.id, job.retryCount]));
          const results = await batchRunner.runBatch(
            batch.map((job) => Object.assign(job, { signal: unreleased })),
            queue,
          );
          for (const result of results) {
            const attempt = { id: result.id, retryCount: retryCounts.get(result.id) as number };
            if (result.status === 'completed') {
              await instance.complete(queue, attempt, result.output ?? null);
              outcome.completed++;
            } else {
              // A job of an unknown name is dead at once, as the workers' batch settlement makes it.
              if (result.status === 'deadletter') await jobsStore.exhaustRetries(queue, result.id);
              await instance.fail(queue, attempt, result.output ?? null);
              outcome.failed++;
            }
          }
        }
        if (fetched === 0) return outcome;
      }
    },

    list: (filter) => requireStarted().store.list(filter),
    get,

    async retry(id, tenantId) {
      const job = await get(id, tenantId);
      if (job.state !== 'failed' && job.state !== 'cancelled') throw jobErrors.notRetryable(id, job.state);
      const { boss: instance } = requireStarted();
      if (job.state === 'cancelled') await instance.resume(job.queue, id);
      else await instance.retry(job.queue, id);
      return get(id, tenantId);
    },

    async cancel(id, tenantId) {
      const job = await get(id, tenantId);
      if (!['created', 'retry', 'active'].includes(job.state)) throw jobErrors.notCancellable(id, job.state);
      await requireStarted().boss.cancel(job.queue, id);
      return get(id, tenantId);
    },
  };

  /** Cron jobs: one pg-boss schedule per declared `cron`; schedules no module declares any more go. */
  async function registerSchedules(instance: PgBoss) {
    const wanted = new Set<string>();
    for (const [name, definition] of definitions) {
      if (definition.cron === undefined) continue;
      const queue = definition.queue ?? 'default';
      wanted.add(`${queue}/${name}`);
      // An occurrence is an enqueue with an empty payload, outside any scope.
      const { data, ...sendOptions } = jobRow(name, definition, {}, {}, undefined);
      await instance.schedule(queue, definition.cron, data, { ...sendOptions, key: name, tz: 'UTC' });
    }
    for (const schedule of await instance.getSchedules()) {
      if (!wanted.has(`${schedule.name}/${schedule.key}`))
        await instance.unschedule(schedule.name, schedule.key);
    }
  }
}

type WorkOptionsFor = {
  batchSize: number;
  localConcurrency: number;
  perJobResults: true;
  burstWhenBatchFull: true;
  pollingIntervalSeconds: number;
  notifyPollingIntervalSeconds: number;
};

/**
 * The id of a keyed job: a name-based UUID (RFC 9562 version 5) of name and key, so a second
 * enqueue with the same key hits pg-boss's primary key and inserts nothing. By hand because it
 * is ten lines of hashing, not worth a dependency.
 */
export function keyedJobId(name: string, key: string): string {
  const bytes = createHash('sha1').update(`socle-job:${name}:${key}`).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
