import { sql, type Transaction } from 'kysely';
import type { Db } from 'pg-boss';
import type { JobState } from './job-definition.js';

/** The schema pg-boss's tables live in, owned by the `jobs` module. */
export const JOBS_SCHEMA = 'jobs';

export { JOB_STATES, type JobState } from './job-definition.js';

/** One job as the admin API and the CLI show it. */
export interface JobRecord {
  readonly id: string;
  /** `module.jobName`. */
  readonly name: string;
  readonly queue: string;
  readonly state: JobState;
  readonly priority: number;
  /** Runs so far (started attempts). */
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly tenantId: string | null;
  readonly payload: unknown;
  /** The last stored progress, the failure of the last attempt, or nothing. */
  readonly progress: unknown;
  readonly error: unknown;
  readonly createdAt: string;
  readonly startAfter: string;
  readonly startedAt: string | null;
  readonly completedAt: string | null;
}

/**
 * How many jobs of a queue are in each unfinished state, and failed (dead) ones, with the
 * creation time of the oldest one waiting: what the console shows live.
 */
export interface JobQueueCounts {
  readonly queue: string;
  readonly created: number;
  readonly retry: number;
  readonly active: number;
  readonly failed: number;
  /** Creation time of the oldest created or retry job; null when none waits. */
  readonly oldestWaitingAt: string | null;
}

export interface JobListFilter {
  /** Only this tenant's jobs; null lists every tenant's and global jobs (operators). */
  readonly tenantId: string | null;
  readonly state?: string | undefined;
  readonly queue?: string | undefined;
  readonly limit: number;
  /** Continue after this job: the list is in creation order (ties by id), newest last. */
  readonly after?: string | undefined;
}

const COLUMNS = `
  id::text as id, data->>'job' as name, name as queue, state::text as state, priority,
  (case when started_on is null then retry_count else retry_count + 1 end)::int as attempts,
  (retry_limit + 1)::int as "maxAttempts", data->>'tenantId' as "tenantId", data->'payload' as payload,
  case when state = 'failed' then null else output->'progress' end as progress,
  case when state = 'failed' then output else null end as error,
  to_char(created_on at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "createdAt",
  to_char(start_after at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "startAfter",
  to_char(started_on at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "startedAt",
  to_char(completed_on at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "completedAt"`;

/**
 * SQL of the engine around pg-boss: listing and reading jobs (filtered by tenant: the tables
 * have no row-level security, so this filter is the isolation), progress, and the effects ledger.
 */
export function createJobsStore(engineDb: Db, queues: readonly string[]) {
  return {
    async list(filter: JobListFilter): Promise<JobRecord[]> {
      const { rows } = await engineDb.executeSql(
        `select ${COLUMNS} from ${JOBS_SCHEMA}.job
          where name = any($1::text[])
            and ($2::text is null or data->>'tenantId' = $2)
            and ($3::text is null or state::text = $3)
            and ($4::uuid is null or (created_on, id) > (
              select created_on, id from ${JOBS_SCHEMA}.job where id = $4::uuid and name = any($1::text[])))
          order by created_on, id limit $5`,
        [
          filter.queue === undefined ? queues : [filter.queue],
          filter.tenantId,
          filter.state ?? null,
          filter.after ?? null,
          filter.limit,
        ],
      );
      return rows as JobRecord[];
    },

    /** Counts of every queue (zeros included), of one tenant's jobs or (null) of all. */
    async counts(tenantId: string | null): Promise<JobQueueCounts[]> {
      // Finished states (completed, cancelled) are left out: they grow for 30 days and nobody
      // watches them live; failed ones are what an operator acts on.
      const { rows } = await engineDb.executeSql(
        `select name as queue,
                count(*) filter (where state = 'created')::int as created,
                count(*) filter (where state = 'retry')::int as retry,
                count(*) filter (where state = 'active')::int as active,
                count(*) filter (where state = 'failed')::int as failed,
                to_char(min(created_on) filter (where state in ('created', 'retry')) at time zone 'UTC',
                        'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "oldestWaitingAt"
           from ${JOBS_SCHEMA}.job
          where name = any($1::text[]) and state in ('created', 'retry', 'active', 'failed')
            and ($2::text is null or data->>'tenantId' = $2)
          group by name`,
        [queues, tenantId],
      );
      const found = rows as JobQueueCounts[];
      return queues.map(
        (queue) =>
          found.find((row) => row.queue === queue) ?? {
            queue,
            created: 0,
            retry: 0,
            active: 0,
            failed: 0,
            oldestWaitingAt: null,
          },
      );
    },

    async find(id: string, tenantId: string | null): Promise<JobRecord | undefined> {
      const { rows } = await engineDb.executeSql(
        `select ${COLUMNS} from ${JOBS_SCHEMA}.job
          where name = any($1::text[]) and id = $2::uuid and ($3::text is null or data->>'tenantId' = $3)`,
        [queues, id, tenantId],
      );
      return rows[0] as JobRecord | undefined;
    },

    async recordProgress(queue: string, id: string, progress: unknown): Promise<void> {
      await engineDb.executeSql(
        `update ${JOBS_SCHEMA}.job set output = jsonb_build_object('progress', $3::jsonb)
          where name = $1 and id = $2::uuid and state = 'active'`,
        [queue, id, JSON.stringify(progress)],
      );
    },

    /**
     * Leaves the active job no retry, so that failing it makes it dead at once: what pg-boss does
     * for a batch handler's `deadletter` result, done here for jobs settled one by one (runDueJobs).
     */
    async exhaustRetries(queue: string, id: string): Promise<void> {
      await engineDb.executeSql(
        `update ${JOBS_SCHEMA}.job set retry_limit = retry_count
          where name = $1 and id = $2::uuid and state = 'active'`,
        [queue, id],
      );
    },

    /**
     * Gives the active jobs `ids` one more attempt: they are about to be released at shutdown,
     * and a release is the node's doing, not the job's, so it must not use up an attempt (a job
     * allowed one, such as a cron job, would otherwise be dead). pg-boss's release then fails them
     * into a retry under a new attempt number, which fences off the released attempt's settlement.
     */
    async giveBackAttempts(queue: string, ids: readonly string[]): Promise<void> {
      await engineDb.executeSql(
        `update ${JOBS_SCHEMA}.job set retry_limit = retry_limit + 1
          where name = $1 and id = any($2::uuid[]) and state = 'active'`,
        [queue, ids],
      );
    },

    /**
     * Puts the running attempt `retryCount` of job `id` back in the queue, due in `delayMs`, with
     * its attempts untouched: the job is no longer active, so the engine's (fenced) settlement of
     * this attempt that follows changes nothing. `started_on` is cleared: pg-boss counts an attempt
     * when it fetches a job that has started. False when the attempt was no longer active.
     */
    async postpone(queue: string, id: string, retryCount: number, delayMs: number, output: unknown) {
      const { rows } = await engineDb.executeSql(
        `update ${JOBS_SCHEMA}.job
            set state = 'created', started_on = null,
                start_after = ${JOBS_SCHEMA}.job_now() + $4::int * interval '1 millisecond',
                output = $5::jsonb
          where name = $1 and id = $2::uuid and state = 'active' and retry_count = $3
          returning id`,
        [queue, id, retryCount, delayMs, JSON.stringify(output)],
      );
      return rows.length > 0;
    },

    /** Milliseconds until the next job waiting for its time is due; undefined when none waits. */
    async nextWaitingInMs(): Promise<number | undefined> {
      const { rows } = await engineDb.executeSql(
        `select ceil(extract(epoch from min(start_after) - ${JOBS_SCHEMA}.job_now()) * 1000)::float8 as "waitMs"
           from ${JOBS_SCHEMA}.job
          where name = any($1::text[]) and state in ('created', 'retry') and start_after > ${JOBS_SCHEMA}.job_now()`,
        [queues],
      );
      const waitMs = (rows[0] as { waitMs: number | null } | undefined)?.waitMs;
      return waitMs === null || waitMs === undefined ? undefined : waitMs;
    },

    /**
     * Moves every job waiting for its time `ms` earlier: the job clock of `runDueJobs({ advanceMs })`.
     * Jobs already due are left as they are.
     */
    async bringForward(ms: number): Promise<void> {
      await engineDb.executeSql(
        `update ${JOBS_SCHEMA}.job set start_after = start_after - $2::float8 * interval '1 millisecond'
          where name = any($1::text[]) and state in ('created', 'retry') and start_after > ${JOBS_SCHEMA}.job_now()`,
        [queues, ms],
      );
    },

    /** Depth (ready to run) and the age of the oldest ready job, per queue. */
    async depth(): Promise<{ queue: string; ready: number; oldestSeconds: number }[]> {
      const { rows } = await engineDb.executeSql(
        `select name as queue, count(*)::int as ready,
                coalesce(extract(epoch from now() - min(start_after)), 0)::float8 as "oldestSeconds"
           from ${JOBS_SCHEMA}.job
          where name = any($1::text[]) and state in ('created', 'retry') and start_after <= now()
          group by name`,
        [queues],
      );
      return rows as { queue: string; ready: number; oldestSeconds: number }[];
    },
  };
}

export type JobsStore = ReturnType<typeof createJobsStore>;

/**
 * Records in the caller's transaction that the effect keyed `key` is applied; false when it
 * already was (a previous attempt committed it).
 */
export async function claimEffect(trx: Transaction<unknown>, key: string): Promise<boolean> {
  const result = await sql<{ key: string }>`
    insert into jobs.effects (key) values (${key}) on conflict do nothing returning key`.execute(trx);
  return result.rows.length === 1;
}

/** Created by the engine's install step, beside pg-boss's tables. */
export const EFFECTS_TABLE_SQL = `
  create table if not exists ${JOBS_SCHEMA}.effects (
    key text primary key,
    applied_at timestamptz not null default now()
  );`;
