import type { JobListFilter, JobQueueCounts, JobRecord } from './jobs.store.js';

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
   * user the transaction acts for travel with the job (its settings: the current request's, or
   * those it names with `tenantSettings`, as a webhook crediting an organization does); its
   * handler runs in that scope.
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
  /**
   * Per queue: created, retry, active and failed jobs, and when the oldest waiting one was created,
   * of one tenant (its admins' view) or, with null, of every tenant and global jobs (operators).
   */
  counts(tenantId: string | null): Promise<JobQueueCounts[]>;
  get(id: string, tenantId: string | null): Promise<JobRecord>;
  /** Runs a failed (dead) or cancelled job again. */
  retry(id: string, tenantId: string | null): Promise<JobRecord>;
  /** Cancels a queued or running job (a running handler sees its signal aborted). */
  cancel(id: string, tenantId: string | null): Promise<JobRecord>;
}
