import type { Transaction } from 'kysely';
import type { Static, TSchema } from 'typebox';
import type { Database } from '../db/index.js';
import type { Logger } from '../log/index.js';
import { jobErrors } from './jobs.errors.js';

/** The named queues, most urgent first. A worker process picks which it works (`--queues`). */
export const JOB_QUEUES = ['high', 'default', 'low'] as const;
export type JobQueue = (typeof JOB_QUEUES)[number];

/**
 * The states of a job: created and retry are queued (retry: after a failed attempt), active is
 * running, failed is dead after its last attempt.
 */
export const JOB_STATES = ['created', 'retry', 'active', 'completed', 'cancelled', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

/** Exponential backoff between attempts: `initialDelayMs · 2^(attempt-1)`, with jitter, capped. */
export interface JobBackoff {
  readonly initialDelayMs: number;
  readonly maxDelayMs?: number;
}

/** The job a handler is running, as the engine knows it. */
export interface RunningJob {
  readonly id: string;
  /** `module.jobName`. */
  readonly name: string;
  /** 1 on the first run, 2 on the first retry, … */
  readonly attempt: number;
  /** Runs allowed before the job is dead: `attempt === maxAttempts` is the last one. */
  readonly maxAttempts: number;
  /**
   * Stable across every attempt of this job (its id): store it with the effect, in the same
   * transaction, and a retry after a crash finds the effect already there. See `firstRun`.
   */
  readonly idempotencyKey: string;
  readonly tenantId: string | undefined;
  readonly userId: string | undefined;
}

const POSTPONE = Symbol.for('socle.job.postponeMs');

/** The shortest postponement: a job comes back no sooner than this, so nothing fetches it before its attempt settles. */
export const MIN_POSTPONE_MS = 1000;

/**
 * Marks `error` as "not now": a job handler that throws it is run again after `delayMs` (at least
 * one second) **without spending an attempt**. For a dependency known to be down for a while (an
 * outbound provider whose circuit breaker is open, a rate limit with its exact wait): burning
 * attempts against it would kill jobs that would succeed later. The error itself stays what it
 * was (an HTTP route that throws it still answers its own status). Returns `error`.
 *
 * @example
 * throw postponeJob(new SocleError('crm.provider_down', 'Whisper is down', { status: 503 }), 30_000);
 */
export function postponeJob<E extends Error>(error: E, delayMs: number): E {
  Object.defineProperty(error, POSTPONE, { value: Math.max(MIN_POSTPONE_MS, Math.ceil(delayMs)) });
  return error;
}

/** The delay `postponeJob` set on `error`, if any. */
export function postponementOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const delay = (error as { [POSTPONE]?: unknown })[POSTPONE];
  return typeof delay === 'number' ? delay : undefined;
}

/** What a handler receives. */
export interface JobContext<Payload> {
  readonly payload: Payload;
  readonly job: RunningJob;
  /** The server's database; transactions opened here carry the job's tenant (RLS applies). */
  readonly db: Database;
  readonly log: Logger;
  /** Aborted at the job's timeout and when the worker shuts down past its deadline. */
  readonly signal: AbortSignal;
  /** Stores the job's progress (a number, or any JSON object), readable through the admin API. */
  progress(value: number | Readonly<Record<string, unknown>>): Promise<void>;
  /**
   * Records, inside `trx`, that this job's effect is applied; false when an earlier attempt already
   * committed it. Call it first in the transaction that applies the effect: the effect then
   * commits exactly once, even when a worker dies after the commit and the job runs again.
   *
   * @example
   * await db.transaction(async (trx) => {
   *   if (!(await firstRun(trx))) return;
   *   await trx.insertInto('billing.charges').values(charge).execute();
   * });
   */
  firstRun(trx: Transaction<unknown> | Transaction<never>): Promise<boolean>;
  /**
   * Marks this job completed inside `trx`, so its effect and its completion commit together: a
   * worker that dies after that commit leaves nothing to run again. Return right after the
   * transaction; the engine's own completion then finds the job settled and does nothing. Does
   * nothing either if this attempt lost its lease (timed out, released at shutdown): the attempt
   * that replaced it decides.
   *
   * @example
   * await db.transaction(async (trx) => {
   *   await markDelivered(trx, payload.id);
   *   await complete(trx);
   * });
   */
  complete<Tables>(trx: Transaction<Tables>): Promise<void>;
}

/**
 * A job a module declares in `defineModule({ jobs })`. Payloads are validated against `schema`
 * when enqueued, so a bad payload fails at the call site instead of poisoning the queue.
 */
export interface JobDefinition<Payload = unknown, Services = unknown> {
  /** Runs one attempt; `services` are the declaring module's (what its `setup` returned). */
  handler(context: JobContext<Payload>, services: Services): Promise<void>;
  /** TypeBox schema of the payload; omitted means any JSON object. */
  readonly schema?: TSchema;
  /** Default `default`. */
  readonly queue?: JobQueue;
  /** Higher runs first within its queue; default 0. */
  readonly priority?: number;
  /** Runs before the job is dead (kept in state `failed`, listable, retryable); default 3. */
  readonly maxAttempts?: number;
  /** Default `{ initialDelayMs: 1000 }`; false retries at once. */
  readonly backoff?: JobBackoff | false;
  /**
   * How long one attempt may run; default 15 minutes. Also the lease: a job whose worker died is
   * run again by another worker once this has passed.
   */
  readonly timeoutMs?: number;
  /** A cron expression (UTC): the engine enqueues the job on that schedule, with an empty payload. */
  readonly cron?: string;
}

/**
 * Declares a job with its payload type inferred from the schema.
 *
 * @example
 * jobs: {
 *   transcribe: defineJob({
 *     schema: Type.Object({ recordingId: Type.String({ format: 'uuid' }) }),
 *     queue: 'high',
 *     async handler({ payload, db, firstRun }) { … },
 *   }),
 * }
 */
export function defineJob<Schema extends TSchema, Services = unknown>(
  definition: JobDefinition<Static<Schema>, Services> & { readonly schema: Schema },
): JobDefinition<Static<Schema>, Services>;
export function defineJob<Payload, Services = unknown>(
  definition: JobDefinition<Payload, Services>,
): JobDefinition<Payload, Services>;
export function defineJob<Payload, Services>(
  definition: JobDefinition<Payload, Services>,
): JobDefinition<Payload, Services> {
  return Object.freeze({ ...definition });
}

/** What the engine reads of a module: its name and the jobs it declares. */
export interface JobDeclaringModule {
  readonly name: string;
  // biome-ignore lint/suspicious/noExplicitAny: each job is typed with its own payload
  readonly jobs?: Readonly<Record<string, JobDefinition<any>>>;
}

const JOB_NAME = /^[a-z][a-z0-9_]*\.[a-zA-Z][a-zA-Z0-9_]*$/;

/** A declared or per-enqueue `maxAttempts`: a whole number of runs, at least one. */
export const isAttemptCount = (value: number) => Number.isInteger(value) && value >= 1;

/** Every job of every module, keyed `module.jobName`; checks each declaration. */
export function collectJobDefinitions(modules: readonly JobDeclaringModule[]): Map<string, JobDefinition> {
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
