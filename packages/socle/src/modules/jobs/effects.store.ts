import { sql } from 'kysely';
import type { Database } from '../../kernel/index.js';

/** Deletes effect markers older than `days`: their jobs are deleted by then and cannot run again. */
export async function purgeEffectsOlderThan(db: Database, days: number): Promise<number> {
  const result =
    await sql`delete from jobs.effects where applied_at < now() - make_interval(days => ${days})`.execute(
      db.kysely,
    );
  return Number(result.numAffectedRows ?? 0);
}
