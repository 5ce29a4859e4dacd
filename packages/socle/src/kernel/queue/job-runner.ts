import type { Job, JobResult } from 'pg-boss';
import type { ScopeAccess } from '../context/index.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../log/index.js';
import type { JobContext, JobDefinition, JobQueue, RunningJob } from './job-definition.js';
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
  readonly store: () => JobsStore | undefined;
}

/**
 * The timeout of the jobs of one name in one batch: they start together, so one timer serves them
 * all (a timer, an abort controller and a promise per job cost more than the no-op job itself).
 */
interface Deadline {
  readonly controller: AbortController;
  readonly expired: Promise<never>;
  readonly error: Error;
  readonly timer: NodeJS.Timeout;
}

function startDeadline(name: string, timeoutMs: number): Deadline {
  const controller = new AbortController();
  const error = jobErrors.timedOut(name, timeoutMs);
  let expire: (error: Error) => void = () => undefined;
  const expired = new Promise<never>((_, reject) => {
    expire = reject;
  });
  // Raced by every job of the batch; the race reports it, nothing else must.
  expired.catch(() => undefined);
  const timer = setTimeout(() => {
    controller.abort(error);
    expire(error);
  }, timeoutMs);
  return { controller, expired, error, timer };
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
    private readonly deadline: Deadline,
    private readonly runner: JobRunnerOptions,
    queue: JobQueue,
  ) {
    const envelope = fetched.data;
    this.payload = envelope.payload;
    this.db = runner.db;
    this.job = {
      id: fetched.id,
      name: envelope.job,
      attempt: fetched.retryCount + 1,
      idempotencyKey: fetched.id,
      tenantId: envelope.tenantId,
      userId: envelope.userId,
    };
    this.progress = async (value) => {
      this.lastProgress = value;
      await this.runner.store()?.recordProgress(queue, this.fetched.id, value);
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
    this.#signal ??= AbortSignal.any([this.fetched.signal, this.deadline.controller.signal]);
    return this.#signal;
  }

  readonly progress: JobContext<unknown>['progress'];

  readonly firstRun: JobContext<unknown>['firstRun'] = (trx) => claimEffect(trx as never, this.fetched.id);
}

/**
 * Runs the batches pg-boss fetches: each job in its scope, under its timeout, with its own
 * outcome (one failing job does not fail the batch).
 */
export function createJobRunner(options: JobRunnerOptions) {
  const { definitions, scope, metrics, log } = options;

  async function runJob(job: Job<Envelope>, queue: JobQueue, deadlines: Map<string, Deadline>) {
    const envelope = job.data;
    const definition = definitions.get(envelope.job);
    if (definition === undefined) {
      log.error({ job: envelope.job, id: job.id }, 'A job of an unknown name was fetched; failing it');
      metrics.observe(queue, 'failed', 0);
      return {
        id: job.id,
        status: 'deadletter',
        output: { message: `Unknown job ${envelope.job}` },
      } as const;
    }
    let deadline = deadlines.get(envelope.job);
    if (deadline === undefined) {
      deadline = startDeadline(envelope.job, definition.timeoutMs ?? DEFAULT_TIMEOUT_MS);
      deadlines.set(envelope.job, deadline);
    }
    const context = new RunningJobContext(job, deadline, options, queue);
    const started = performance.now();
    try {
      await Promise.race([
        scope.run({ tenantId: envelope.tenantId, userId: envelope.userId }, () =>
          definition.handler(context),
        ),
        deadline.expired,
      ]);
      metrics.observe(queue, 'completed', (performance.now() - started) / 1000);
      return context.lastProgress === undefined
        ? ({ id: job.id, status: 'completed' } as const)
        : ({ id: job.id, status: 'completed', output: { progress: context.lastProgress } } as const);
    } catch (error) {
      metrics.observe(queue, 'failed', (performance.now() - started) / 1000);
      const last = job.retryCount + 1 >= (definition.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
      context.log[last ? 'error' : 'warn'](
        { err: error },
        last ? 'Job failed for good' : 'Job failed; it will be retried',
      );
      const failure = error instanceof Error ? error : new Error(String(error));
      return {
        id: job.id,
        status: 'failed',
        output: {
          message: failure.message,
          ...('code' in failure && typeof failure.code === 'string' ? { code: failure.code } : {}),
        },
      } as const;
    }
  }

  return {
    /** Runs one fetched batch, higher priorities started first; resolves with each job's outcome. */
    async runBatch(jobs: Job<Envelope>[], queue: JobQueue): Promise<JobResult[]> {
      const deadlines = new Map<string, Deadline>();
      const ordered = jobs.length > 1 ? [...jobs].sort(byPriority) : jobs;
      try {
        return await Promise.all(ordered.map((job) => runJob(job, queue, deadlines)));
      } finally {
        for (const deadline of deadlines.values()) clearTimeout(deadline.timer);
      }
    },
  };
}
