import { randomUUID } from 'node:crypto';
import type { Db, PgBoss } from 'pg-boss';
import type { Config } from '../config/index.js';
import { type RequestScope, type ScopeAccess, scopeOfSettings } from '../context/index.js';
import { type Database, isDatabaseUnavailable, settingsOfExecutor } from '../db/index.js';
import { isUuid } from '../ids/index.js';
import { createOutageLog, type Logger, type OutageLog } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import { embeddedEngineDatabase, transactionExecutor } from './engine-database.js';
import { COMMON_BOSS_OPTIONS, installJobEngine, newBoss } from './engine-install.js';
import {
  collectJobDefinitions,
  JOB_QUEUES,
  type JobDeclaringModule,
  type JobDefinition,
  type JobQueue,
} from './job-definition.js';
import { createJobMetrics, type JobMetrics } from './job-metrics.js';
import { createJobRows, type JobRow } from './job-rows.js';
import { createJobRunner, type Envelope, type JobRunner } from './job-runner.js';
import { registerSchedules } from './job-schedules.js';
import { jobErrors } from './jobs.errors.js';
import type { Jobs } from './jobs.js';
import { createJobsStore, JOBS_SCHEMA, type JobsStore } from './jobs.store.js';

export interface JobEngine extends Jobs {
  /** Every declared job, by `module.jobName`. */
  readonly definitions: ReadonlyMap<string, JobDefinition>;
  /** The engine's Prometheus series (attempts, durations), for another engine of the process to share. */
  readonly metrics: JobMetrics;
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
   * there when it resolves, without polling. Stops after `maxJobs` attempts (default 10,000,
   * postponements included), in case a job keeps enqueueing another.
   *
   * With `advanceMs`, the job clock then moves forward that far, step by step: each job waiting
   * for its time (a delay, a retry's backoff, a postponement) runs when its time comes, and what it
   * schedules from there is due relative to that moment. Jobs are due by the database's clock, which
   * a test's manual clock does not move: this is how a test makes "30 s later" happen for jobs.
   */
  runDueJobs(options?: {
    readonly maxJobs?: number;
    readonly advanceMs?: number;
  }): Promise<{ completed: number; failed: number }>;
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
  readonly modules: readonly JobDeclaringModule[];
  /**
   * Whether this engine registers and fires the cron schedules (default true). A tenant shard's
   * engine does not: a schedule fires once, on the primary's.
   */
  readonly runSchedules?: boolean;
  /**
   * The job metrics of another engine of the process to count into (a shard's engine shares the
   * primary's); queue depth is then that engine's to report.
   */
  readonly sharedMetrics?: JobMetrics;
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
  const jobMetrics = options.sharedMetrics ?? createJobMetrics(metrics.registry);
  const outage = options.outage ?? createOutageLog(log, 'Database (job engine)', 'jobs wait');
  let boss: PgBoss | undefined;
  let store: JobsStore | undefined;
  let runner: JobRunner | undefined;
  let stopping: Promise<void> | undefined;
  let stopMetrics: (() => void) | undefined;
  let workQueues: readonly JobQueue[] = [];
  let running = 0;
  /** The jobs this node is running, by id, with their queue: released if still running at stop. */
  const inFlight = new Map<string, JobQueue>();
  let workersStopping: Promise<void> | undefined;
  const jobRows = createJobRows(definitions);
  /** pg-boss's ids of this node's fetch loops (one per worked queue), woken by `wakeUps`. */
  const workerIds: string[] = [];
  const wakeUps = createDueWakeUps({
    nextDueInMs: () => store?.nextWaitingInMs() ?? Promise.resolve(undefined),
    wake: () => {
      for (const id of workerIds) boss?.notifyWorker(id);
    },
    active: () => workerIds.length > 0 && workersStopping === undefined && stopping === undefined,
    log,
  });

  const isEmbedded = config.databaseUrl === undefined;
  const superviseSeconds = Math.max(1, Math.round(config.jobsSuperviseIntervalMs / 1000));
  // Without a declared job nor the jobs module, the engine stays off: nothing installed or polled.
  const enabled = definitions.size > 0 || options.modules.some((module) => module.name === JOBS_SCHEMA);

  /** Looks up the next waiting job once `trx` commits (or soon, for a transaction `db` does not know). */
  const checkAfterCommit = (trx: object) => {
    try {
      db.afterCommit(trx, async () => wakeUps.check()).catch(() => wakeUps.checkAfterSettlement());
    } catch {
      wakeUps.checkAfterSettlement();
    }
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

  // A job acts for the tenant and user of the transaction that enqueues it (which may name them
  // explicitly, as a webhook crediting an organization does), not merely for the current request.
  const actingFor = (trx: object): RequestScope | undefined => {
    const settings = settingsOfExecutor(trx);
    return settings === undefined ? scope.current() : scopeOfSettings(settings);
  };

  const get = async (id: string, tenantId: string | null) => {
    const { store: jobsStore } = requireStarted();
    if (!isUuid(id)) throw jobErrors.notFound(id);
    const job = await jobsStore.find(id, tenantId);
    if (job === undefined) throw jobErrors.notFound(id);
    return job;
  };

  return {
    definitions,
    metrics: jobMetrics,

    async install() {
      if (enabled) await installJobEngine({ db, config, log });
    },

    async start(queuesToWork) {
      if (!enabled) return;
      workQueues = queuesToWork;
      const engineDb: Db | undefined = isEmbedded ? embeddedEngineDatabase(db, 'app') : undefined;
      const instance = await newBoss({
        ...COMMON_BOSS_OPTIONS,
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
        schedule: workQueues.length > 0 && options.runSchedules !== false,
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
      if (options.sharedMetrics === undefined)
        stopMetrics = jobMetrics.trackDepth(() => startedStore.depth());
    },

    async startWorkers() {
      if (!enabled) return;
      const { boss: instance, runner: batchRunner } = requireStarted();
      if (workQueues.length > 0 && options.runSchedules !== false)
        await registerSchedules(instance, definitions, jobRows);
      const pollingSeconds = Math.max(0.5, config.jobsPollIntervalMs / 1000);
      // With NOTIFY, an idle worker is woken: by the enqueue of a job due now (any node), or at a
      // waiting job's time (wakeUps); its own poll is only the backstop.
      const idlePollingSeconds = Math.max(pollingSeconds, config.jobsIdlePollIntervalMs / 1000);
      for (const queue of workQueues) {
        const workerId = await instance.work<Envelope, unknown, WorkOptionsFor>(
          queue,
          {
            batchSize: config.jobsBatchSize,
            localConcurrency: config.jobsConcurrency,
            perJobResults: true,
            burstWhenBatchFull: true,
            pollingIntervalSeconds: pollingSeconds,
            notifyPollingIntervalSeconds: idlePollingSeconds,
          },
          async (jobs) => {
            running += jobs.length;
            for (const job of jobs) inFlight.set(job.id, queue);
            try {
              const results = await batchRunner.runBatch(jobs, queue);
              // A job failed (a retry left) or postponed will wait for its time: wake for it.
              if (results.some((result) => result.status !== 'completed')) wakeUps.checkAfterSettlement();
              return results;
            } finally {
              running -= jobs.length;
              for (const job of jobs) inFlight.delete(job.id);
            }
          },
        );
        workerIds.push(workerId);
      }
      // Jobs already waiting for their time (left by a node that stopped) are woken for too.
      wakeUps.check();
      if (workQueues.length > 0) log.info({ queues: workQueues }, 'Working job queues');
    },

    stopWorkers(timeoutMs) {
      workersStopping ??= (async () => {
        wakeUps.stop();
        const instance = boss;
        if (instance === undefined) return;
        await Promise.all(workQueues.map((queue) => instance.offWork(queue, { wait: false })));
        const until = performance.now() + timeoutMs;
        while (running > 0 && performance.now() < until)
          await new Promise((resolve) => setTimeout(resolve, 10));
        if (running === 0) return;
        log.warn({ running }, 'Jobs still running at the shutdown deadline; releasing them');
        const byQueue = new Map<JobQueue, string[]>();
        for (const [id, queue] of inFlight) byQueue.set(queue, [...(byQueue.get(queue) ?? []), id]);
        try {
          for (const [queue, ids] of byQueue) await store?.giveBackAttempts(queue, ids);
        } catch (error) {
          // The database may be what stopped: they are released anyway, one attempt spent.
          log.warn({ err: error }, 'Could not give the released jobs their attempt back');
        }
      })();
      return workersStopping;
    },

    stop() {
      stopping ??= (async () => {
        wakeUps.stop();
        stopMetrics?.();
        await boss?.stop({ graceful: false, close: true });
      })();
      return stopping;
    },

    async enqueue(trx, name, payload = {}, enqueueOptions = {}) {
      const definition = definitionOf(name);
      const errors = jobRows.payloadErrors(name, definition, payload, 'payload');
      if (errors !== undefined) throw jobErrors.invalidPayload(name, errors);
      const { boss: instance } = requireStarted();
      const { data, ...sendOptions } = jobRows.jobRow(
        name,
        definition,
        payload,
        enqueueOptions,
        actingFor(trx),
      );
      const created = await instance.send(definition.queue ?? 'default', data as unknown as object, {
        ...sendOptions,
        db: transactionExecutor(trx),
      });
      // Due later: this node's workers are woken at its time (the enqueue's NOTIFY is sent only
      // for a job due now), looked up once the caller's transaction committed.
      if (sendOptions.startAfter !== undefined) checkAfterCommit(trx);
      return { id: created ?? (sendOptions.id as string), created: created !== null };
    },

    async enqueueMany(trx, name, jobs) {
      const definition = definitionOf(name);
      const errors = jobs.flatMap(
        (job, index) =>
          jobRows.payloadErrors(name, definition, job.payload ?? {}, `jobs/${index}/payload`) ?? [],
      );
      if (errors.length > 0) throw jobErrors.invalidPayload(name, errors.slice(0, 10));
      const { boss: instance } = requireStarted();
      if (jobs.length === 0) return [];
      const current = actingFor(trx);
      // Ids are chosen here (a keyed job's from its key) so each job's outcome is known from the
      // ids the insert returns; a key given twice in one call is one job.
      const rows = new Map<string, JobRow>();
      const ids = jobs.map((job) => {
        const row = jobRows.jobRow(name, definition, job.payload ?? {}, job, current);
        const id = row.id ?? randomUUID();
        if (!rows.has(id)) rows.set(id, { ...row, id });
        return id;
      });
      const inserted = await instance.insert(definition.queue ?? 'default', [...rows.values()], {
        db: transactionExecutor(trx),
        returnId: true,
      });
      if ([...rows.values()].some((row) => row.startAfter !== undefined)) checkAfterCommit(trx);
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
      // Attempts run, postponed ones included: they bound the call as the others do.
      let attempts = 0;
      const runDue = async () => {
        for (;;) {
          let fetched = 0;
          for (const queue of JOB_QUEUES) {
            const limit = Math.min(config.jobsBatchSize, maxJobs - attempts);
            if (limit <= 0) return;
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
            attempts += results.length;
            for (const result of results) {
              const attempt = { id: result.id, retryCount: retryCounts.get(result.id) as number };
              // Put back in the queue by postponeJob: not an attempt that completed or failed.
              if ('postponed' in result) continue;
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
          if (fetched === 0) return;
        }
      };
      await runDue();
      // The job clock moves by bringing every waiting job forward, in steps that end at the next
      // job's time: what a job schedules while it runs (a backoff, a postponement) is due from the
      // database's now, which is that moment of the advance. Every step but the last moves at
      // least 1 ms, so the loop ends.
      let left = Math.max(0, runOptions.advanceMs ?? 0);
      while (left > 0 && attempts < maxJobs) {
        const next = await jobsStore.nextWaitingInMs();
        const step = next === undefined ? left : Math.min(left, Math.max(1, next));
        await jobsStore.bringForward(step);
        left -= step;
        await runDue();
        if (next === undefined) break;
      }
      return outcome;
    },

    list: (filter) => requireStarted().store.list(filter),
    counts: (tenantId) => requireStarted().store.counts(tenantId),
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
}

/** When the next waiting job is looked up after a batch that left jobs waiting (see `checkAfterSettlement`). */
const SETTLEMENT_CHECKS_MS = [100, 1000];

/**
 * Wakes this node's job workers when the next job waiting for its time (a delay, a retry's
 * backoff, a postponement) comes due, so an idle worker need not poll for it: `check()` (after an
 * enqueue with a start time, after a batch of this node left jobs waiting, at start) asks the database for the
 * earliest such time and arms one timer for it; a check while one runs is folded into another
 * after it. A timer that fires wakes the workers and checks again.
 */
function createDueWakeUps(options: {
  readonly nextDueInMs: () => Promise<number | undefined>;
  readonly wake: () => void;
  readonly active: () => boolean;
  readonly log: Logger;
}) {
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Number.POSITIVE_INFINITY;
  let checking = false;
  let checkAgain = false;
  let stopped = false;

  const arm = (inMs: number) => {
    const at = performance.now() + inMs;
    if (timer !== undefined && timerAt <= at) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => {
      timer = undefined;
      timerAt = Number.POSITIVE_INFINITY;
      if (stopped || !options.active()) return;
      options.wake();
      check();
    }, inMs);
    timer.unref();
  };

  function check(): void {
    if (stopped || !options.active()) return;
    if (checking) {
      checkAgain = true;
      return;
    }
    checking = true;
    void (async () => {
      try {
        do {
          checkAgain = false;
          const inMs = await options.nextDueInMs();
          if (inMs !== undefined && !stopped) arm(Math.max(0, inMs));
        } while (checkAgain && !stopped);
      } catch (error) {
        // The backstop poll still fetches the job; an outage is logged by the engine's pool.
        options.log.debug({ err: error }, 'Could not look up the next waiting job');
      } finally {
        checking = false;
      }
    })();
  }

  const later: NodeJS.Timeout[] = [];
  return {
    check,
    /**
     * A check once pg-boss has settled the batch just returned (it sets a failed job's retry
     * time after the handler resolves, at a random point of its backoff): soon, and again a
     * second later for a loaded database; past that, the idle poll fetches it.
     */
    checkAfterSettlement() {
      for (const delayMs of SETTLEMENT_CHECKS_MS) {
        const timer = setTimeout(() => {
          later.splice(later.indexOf(timer), 1);
          check();
        }, delayMs);
        timer.unref();
        later.push(timer);
      }
    },
    stop() {
      stopped = true;
      for (const timer of later.splice(0)) clearTimeout(timer);
      clearTimeout(timer);
      timer = undefined;
    },
  };
}

type WorkOptionsFor = {
  batchSize: number;
  localConcurrency: number;
  perJobResults: true;
  burstWhenBatchFull: true;
  pollingIntervalSeconds: number;
  notifyPollingIntervalSeconds: number;
};
