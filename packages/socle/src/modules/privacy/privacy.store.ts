import { randomUUID } from 'node:crypto';
import { type Database, type PrivacySubject, withOwnerTransaction } from '../../kernel/index.js';

/** An erasure in progress: the email it started with and the modules already erased. */
export interface ErasureRun {
  readonly id: string;
  readonly email: string;
  readonly completed_modules: readonly string[];
}

/** A person's latest erasure: `email` only while it is unfinished (a finished one keeps none). */
export interface LatestErasure {
  readonly id: string;
  readonly email: string | null;
  readonly completed: boolean;
}

/**
 * SQL of `privacy.erasure_runs`, as the owner role: an erasure is about a person across every
 * organization, beneath row-level security.
 */
export function createErasureRunsStore(db: Database) {
  const run = (text: string, values: readonly unknown[]) =>
    withOwnerTransaction(db, (connection) => connection.query(text, [...values]));
  return {
    /** The person's unfinished run (locked), or a new one. */
    startOrResume: (subject: PrivacySubject): Promise<ErasureRun> =>
      withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query<ErasureRun>(
          `select id, email, completed_modules from privacy.erasure_runs
            where user_id = $1 and completed_at is null order by started_at limit 1 for update`,
          [subject.userId],
        );
        if (rows[0] !== undefined) return rows[0];
        const id = randomUUID();
        await connection.query('insert into privacy.erasure_runs (id, user_id, email) values ($1, $2, $3)', [
          id,
          subject.userId,
          subject.email,
        ]);
        return { id, email: subject.email, completed_modules: [] };
      }),
    /** The person's latest erasure run, finished or not, or `undefined` if none. */
    async latest(userId: string): Promise<LatestErasure | undefined> {
      const { rows } = await run(
        `select id, email, completed_at is not null as completed from privacy.erasure_runs
          where user_id = $1 order by completed_at desc nulls first, started_at desc limit 1`,
        [userId],
      );
      return rows[0] as LatestErasure | undefined;
    },
    async recordError(runId: string, message: string): Promise<void> {
      await run('update privacy.erasure_runs set last_error = $2 where id = $1', [runId, message]);
    },
    async recordModuleErased(runId: string, module: string): Promise<void> {
      await run(
        'update privacy.erasure_runs set completed_modules = array_append(completed_modules, $2) where id = $1',
        [runId, module],
      );
    },
    /** Marks the run finished and forgets the email it kept: nothing needs it any more. */
    async finish(runId: string): Promise<void> {
      await run(
        'update privacy.erasure_runs set completed_at = now(), last_error = null, email = null where id = $1',
        [runId],
      );
    },
  };
}
