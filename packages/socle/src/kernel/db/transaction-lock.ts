import { sql, type Transaction } from 'kysely';

/**
 * Makes the transaction wait until no other transaction holds `key`, then holds it until the
 * transaction commits or rolls back (a transaction-scoped advisory lock on a 64-bit hash of the
 * key; two keys sharing a hash only wait for each other, never wrongly pass).
 *
 * What it is for: work on one thing (a professional's agenda, an organization's memberships)
 * that two transactions could otherwise interleave into a deadlock or into two checks passing
 * on the same rows. Postgres's exclusion constraints are the sharpest case: two transactions
 * inserting overlapping ranges at the same moment each find the other's uncommitted row and
 * wait for each other, and Postgres kills one after `deadlock_timeout` (a second). The
 * constraint still decides what is allowed; the lock only orders the writers, so they queue
 * instead. Take it first in the transaction, before any row lock, in every transaction that
 * writes the thing, so the lock order is the same everywhere.
 *
 * Keys are namespaced by the caller (`'cryptocare.agenda:' + professionalId`). No effect on
 * PGlite beyond the call (one session runs one transaction at a time).
 *
 * @example
 * await db.transaction(async (trx) => {
 *   await lockUntilTransactionEnds(trx, `quiz.room:${roomId}`);
 *   // …read, check, write…
 * });
 */
export async function lockUntilTransactionEnds<Tables>(trx: Transaction<Tables>, key: string): Promise<void> {
  // Outside a transaction the lock would be released as soon as the statement ends.
  if (!trx.isTransaction)
    throw new TypeError(
      'lockUntilTransactionEnds needs a transaction: outside one the lock ends with its statement',
    );
  await sql`select pg_advisory_xact_lock(hashtextextended(${key}, 0))`.execute(trx);
}
