import type { Job, JobResult, PgBoss } from 'pg-boss';
import type { ScopeAccess } from '../context/index.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../log/index.js';
import { transactionExecutor } from './engine-database.js';
import {
  type JobContext,
  type JobDefinition,
  type JobQueue,
  postponementOf,
  type RunningJob,
} from './job-definition.js';
import type { JobMetrics } from './job-metrics.js';
import { jobErrors } from './jobs.errors.js';
import { claimEffect, type JobsStore } from './jobs.store.js';

/** What a job row's `data` holds: the job, its payload and the scope it was enqueued in. */
export interface Envelope {
  readonly job: string;
  readonly payload: unknown;
  readonly tenantId?: string;
  readonly userId?: string;
  /**
   * The priority it was enqueued with, when not 0: a batch is started in priority order without
   * fetching every column of the job rows (the fetch claims by priority but returns in no order).
   */
  readonly priority?: number;
  /** The attempts it was enqueued with, when they override its definition's. */
  readonly maxAttempts?: number;
}

export const DEFAULT_TIMEOUT_MS = 15 * 60 * 1000;
export const DEFAULT_MAX_ATTEMPTS = 3;

export interface JobRunnerOptions {
  readonly definitions: ReadonlyMap<string, JobDefinition>;
  readonly db: Database;
  readonly log: Logger;
  readonly scope: ScopeAccess;
  readonly metrics: JobMetrics;
  /** The store of the started engine (progress is written through it). */
  readonly store: JobsStore;
  /** The started engine: a job settles through the instance that fetched it (`complete(trx)`). */
  readonly engine: PgBoss;
}

/** Runs allowed before a job is dead: its enqueue's, else its definition's. */
const maxAttemptsOf = (envelope: Envelope, definition: JobDefinition) =>
  envelope.maxAttempts ?? definition.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;

/**
 * The timeout of the jobs of one name in one batch: they start together, so one timer serves them
 * all (a timer, an abort controller and a promise race per job cost more than a no-op job).
 */
interface Deadline {
  readonly controller: AbortController;
  readonly timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  /** Indexes (in the batch) of its jobs. */
  readonly jobs: number[];
}

const byPriority = (a: Job<Envelope>, b: Job<Envelope>) => (b.data.priority ?? 0) - (a.data.priority ?? 0);

/**
 * What a handler receives. A class, so the parts most handlers never touch (a child logger, a
 * signal combining the worker's and the timeout's) are made on first use, not for every job.
 * `progress` and `firstRun` are arrow properties: handlers destructure them.
 */
class RunningJobContext implements JobContext<unknown> {
  readonly payload: unknown;
  readonly job: RunningJob;
  readonly db: Database;
  lastProgress: unknown;
  #log: Logger | undefined;
  #signal: AbortSignal | undefined;

  constructor(
    private readonly fetched: Job<Envelope>,
    private readonly timeout: AbortSignal,
    private readonly runner: JobRunnerOptions,
    queue: JobQueue,
    maxAttempts: number,
  ) {
    const envelope = fetched.data;
    this.payload = envelope.payload;
    this.db = runner.db;
    this.job = {
      id: fetched.id,
      name: envelope.job,
      attempt: fetched.retryCount + 1,
      maxAttempts,
      idempotencyKey: fetched.id,
      tenantId: envelope.tenantId,
      userId: envelope.userId,
    };
    this.progress = async (value) => {
      this.lastProgress = value;
      await this.runner.store.recordProgress(queue, this.fetched.id, value);
    };
    const settler = runner.engine;
    this.complete = async (trx) => {
      // Fenced to this attempt ({ id, retryCount }): an attempt whose lease ran out, or that
      // shutdown released, settles nothing. Through the instance that fetched the job, even if
      // the engine is stopping: refusing would roll back the caller's effect with it.
      await settler.complete(
        queue,
        { id: fetched.id, retryCount: fetched.retryCount },
        this.lastProgress === undefined ? null : { progress: this.lastProgress },
        { db: transactionExecutor(trx) },
      );
    };
  }

  get log(): Logger {
    this.#log ??= this.runner.log.child({
      job: this.job.name,
      jobId: this.job.id,
      attempt: this.job.attempt,
    });
    return this.#log;
  }

  get signal(): AbortSignal {
    this.#signal ??= AbortSignal.any([this.fetched.signal, this.timeout]);
    return this.#signal;
  }

  readonly progress: JobContext<unknown>['progress'];

  readonly complete: JobContext<unknown>['complete'];

  readonly firstRun: JobContext<unknown>['firstRun'] = (trx) => claimEffect(trx as never, this.fetched.id);
}

/** `postponed`: the attempt was put back in the queue (`postponeJob`); its settlement is a no-op. */
type Outcome = JobResult & {
  readonly status: 'completed' | 'failed' | 'deadletter';
  readonly postponed?: true;
};

/**
 * Runs the batches pg-boss fetches: each job in its scope, under its timeout, with its own
 * outcome (one failing job does not fail the batch).
 */
export function createJobRunner(options: JobRunnerOptions) {
  const { definitions, scope, metrics, log } = options;

  const failure = (context: RunningJobContext, error: unknown) => {
    const last = context.job.attempt >= context.job.maxAttempts;
    context.log[last ? 'error' : 'warn'](
      { err: error },
      last ? 'Job failed for good' : 'Job failed; it will be retried',
    );
    const cause = error instanceof Error ? error : new Error(String(error));
    return {
      id: context.job.id,
      status: 'failed',
      output: {
        message: cause.message,
        ...('code' in cause && typeof cause.code === 'string' ? { code: cause.code } : {}),
      },
    } as const;
  };

  /** Puts the job back for the delay its error asked (see `postponeJob`), or fails it when it could not. */
  const postpone = (
    context: RunningJobContext,
    job: Job<Envelope>,
    queue: JobQueue,
    error: unknown,
    delayMs: number,
  ) => {
    const cause = error instanceof Error ? error : new Error(String(error));
    const output = {
      message: cause.message,
      postponedMs: delayMs,
      ...('code' in cause && typeof cause.code === 'string' ? { code: cause.code } : {}),
    };
    return options.store.postpone(queue, job.id, job.retryCount, delayMs, output).then(
      (postponed): Outcome => {
        if (!postponed) return failure(context, error);
        context.log.info({ err: error, delayMs }, 'Job postponed; its attempts are untouched');
        return { id: job.id, status: 'failed', output, postponed: true };
      },
      (): Outcome => failure(context, error),
    );
  };

  return {
    /**
     * Runs one fetched batch, higher priorities started first; resolves with each job's outcome
     * once every job has finished or passed its timeout (a handler that ignores its signal keeps
     * running, but its attempt has failed).
     */
    runBatch(jobs: Job<Envelope>[], queue: JobQueue): Promise<JobResult[]> {
      const ordered = jobs.length > 1 ? [...jobs].sort(byPriority) : jobs;
      const outcomes: (Outcome | undefined)[] = new Array(ordered.length);
      const contexts: (RunningJobContext | undefined)[] = new Array(ordered.length);
      const deadlines = new Map<string, Deadline>();
      let left = ordered.length;
      let completed = 0;
      let failed = 0;
      const started = performance.now();
      return new Promise<JobResult[]>((resolve) => {
        const settle = (index: number, outcome: Outcome) => {
          if (outcomes[index] !== undefined) return;
          outcomes[index] = outcome;
          if (outcome.status === 'completed') completed += 1;
          else if (outcome.postponed !== true) failed += 1;
          metrics.observeDuration(queue, (performance.now() - started) / 1000);
          left -= 1;
          if (left > 0) return;
          for (const deadline of deadlines.values()) clearTimeout(deadline.timer);
          metrics.count(queue, completed, failed);
          resolve(outcomes as Outcome[]);
        };
        ordered.forEach((job, index) => {
          const envelope = job.data;
          const definition = definitions.get(envelope.job);
          if (definition === undefined) {
            log.error({ job: envelope.job, id: job.id }, 'A job of an unknown name was fetched; failing it');
            settle(index, {
              id: job.id,
              status: 'deadletter',
              output: { message: `Unknown job ${envelope.job}` },
            });
            return;
          }
          let deadline = deadlines.get(envelope.job);
          if (deadline === undefined) {
            deadline = {
              controller: new AbortController(),
              timeoutMs: definition.timeoutMs ?? DEFAULT_TIMEOUT_MS,
              timer: undefined,
              jobs: [],
            };
            deadlines.set(envelope.job, deadline);
          }
          deadline.jobs.push(index);
          const context = new RunningJobContext(
            job,
            deadline.controller.signal,
            options,
            queue,
            maxAttemptsOf(envelope, definition),
          );
          contexts[index] = context;
          let running: Promise<void>;
          try {
            // A handler declared without `async` may return nothing: still a job that finished.
            running = Promise.resolve(
              // The kernel hands the engine handlers already bound to their module's services.
              scope.run({ tenantId: envelope.tenantId, userId: envelope.userId }, () =>
                definition.handler(context, undefined),
              ),
            );
          } catch (error) {
            running = Promise.reject(error);
          }
          running.then(
            () =>
              settle(
                index,
                context.lastProgress === undefined
                  ? { id: job.id, status: 'completed' }
                  : { id: job.id, status: 'completed', output: { progress: context.lastProgress } },
              ),
            (error: unknown) => {
              const delayMs = postponementOf(error);
              if (delayMs === undefined) settle(index, failure(context, error));
              else
                void postpone(context, job, queue, error, delayMs).then((outcome) => settle(index, outcome));
            },
          );
        });
        // Armed once every handler has started, for the jobs still running.
        for (const [name, deadline] of deadlines) {
          if (deadline.jobs.every((index) => outcomes[index] !== undefined)) continue;
          deadline.timer = setTimeout(() => {
            const error = jobErrors.timedOut(name, deadline.timeoutMs);
            deadline.controller.abort(error);
            for (const index of deadline.jobs)
              if (outcomes[index] === undefined)
                settle(index, failure(contexts[index] as RunningJobContext, error));
          }, deadline.timeoutMs);
        }
      });
    },
  };
}

export type JobRunner = ReturnType<typeof createJobRunner>;
