import { type Kysely, sql } from 'kysely';
import type { Database } from '../../kernel/db/index.js';
import type { MailTables } from './mail.tables.js';

type Executor = Kysely<MailTables>;

/** A row of the outbox as the delivery loop claimed it. */
export interface ClaimedMail {
  readonly id: string;
  readonly recipient: string;
  readonly subject: string;
  readonly textBody: string;
  readonly htmlBody: string | null;
  /** Attempts including this one. */
  readonly attempts: number;
}

export interface NewOutboxRow {
  readonly id: string;
  readonly recipient: string;
  readonly subject: string;
  readonly textBody: string;
  readonly htmlBody: string | null;
  readonly idempotencyKey: string | null;
}

/**
 * Inserts a mail with the caller's executor (their transaction). With an idempotency key already
 * present, inserts nothing and resolves to the existing row's id.
 */
export async function insertOutboxRow(
  executor: Executor,
  row: NewOutboxRow,
): Promise<{ id: string; created: boolean }> {
  const inserted = await executor
    .insertInto('mail.outbox')
    .values({
      id: row.id,
      recipient: row.recipient,
      subject: row.subject,
      text_body: row.textBody,
      html_body: row.htmlBody,
      idempotency_key: row.idempotencyKey,
      sent_at: null,
      failed_at: null,
      last_error: null,
    })
    // A concurrent insert of the same key makes this wait for that transaction; after its commit
    // this one does nothing, after its rollback this one inserts.
    .onConflict((conflict) => conflict.column('idempotency_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  // Only a duplicate idempotency key makes the insert return no row.
  if (inserted === undefined && row.idempotencyKey !== null) {
    const existing = await executor
      .selectFrom('mail.outbox')
      .select('id')
      .where('idempotency_key', '=', row.idempotencyKey)
      .executeTakeFirstOrThrow();
    return { id: existing.id, created: false };
  }
  return { id: row.id, created: true };
}

/** `now() + milliseconds`, computed by the database so every node shares one clock. */
const nowPlus = (milliseconds: number) =>
  sql<Date>`now() + cast(${milliseconds} as double precision) * interval '1 millisecond'`;

/** SQL of the delivery loop. Every time is the database's `now()`: nodes' clocks may disagree. */
export function createOutboxStore(db: Database<MailTables>) {
  return {
    /**
     * Claims up to `limit` due rows in one statement (its own short transaction): bumps their
     * attempts and pushes their due time `leaseMs` ahead, so no other node takes them while this
     * one sends, and another does once the lease expires if this node dies mid-send.
     */
    async claimDue(limit: number, leaseMs: number): Promise<ClaimedMail[]> {
      // SKIP LOCKED: rows another node is claiming right now are left to it instead of waited
      // for; the row lock is held only until this statement commits, the lease does the rest.
      const { rows } = await sql<{
        id: string;
        recipient: string;
        subject: string;
        text_body: string;
        html_body: string | null;
        attempts: number;
      }>`
        with due as (
          select id from mail.outbox
          where sent_at is null and failed_at is null and next_attempt_at <= now()
          order by next_attempt_at
          limit ${limit}
          for update skip locked
        )
        update mail.outbox as outbox
        set attempts = outbox.attempts + 1, next_attempt_at = ${nowPlus(leaseMs)}
        from due
        where outbox.id = due.id
        returning outbox.id, outbox.recipient, outbox.subject, outbox.text_body, outbox.html_body,
          outbox.attempts
      `.execute(db.kysely);
      return rows.map((row) => ({
        id: row.id,
        recipient: row.recipient,
        subject: row.subject,
        textBody: row.text_body,
        htmlBody: row.html_body,
        attempts: row.attempts,
      }));
    },

    async markSent(id: string): Promise<void> {
      await db.kysely
        .updateTable('mail.outbox')
        .set({ sent_at: sql<Date>`now()` })
        .where('id', '=', id)
        .where('sent_at', 'is', null)
        .execute();
    },

    /**
     * Records a failed attempt and when to try again. `attempts` is the claim's: if the lease ran
     * out and another node claimed the row since, that node's outcome wins and this is a no-op.
     */
    async scheduleRetry(id: string, attempts: number, error: string, delayMs: number): Promise<void> {
      await db.kysely
        .updateTable('mail.outbox')
        .set({ last_error: error, next_attempt_at: nowPlus(delayMs) })
        .where('id', '=', id)
        .where('attempts', '=', attempts)
        .where('sent_at', 'is', null)
        .execute();
    },

    /**
     * Deletes mail sent or given up on more than `days` ago: bodies may hold sign-in links and
     * reset tokens, which must not sit in the database (and its backups) for ever.
     */
    async purgeFinished(days: number): Promise<number> {
      const cutoff = sql<Date>`now() - cast(${days} as double precision) * interval '1 day'`;
      const result = await db.kysely
        .deleteFrom('mail.outbox')
        .where((where) => where.or([where('sent_at', '<', cutoff), where('failed_at', '<', cutoff)]))
        .executeTakeFirst();
      return Number(result.numDeletedRows);
    },

    /** Records the last allowed attempt's failure: the row is never claimed again. */
    async markFailed(id: string, attempts: number, error: string): Promise<void> {
      await db.kysely
        .updateTable('mail.outbox')
        .set({ last_error: error, failed_at: sql<Date>`now()` })
        .where('id', '=', id)
        .where('attempts', '=', attempts)
        .where('sent_at', 'is', null)
        .execute();
    },
  };
}

export type OutboxStore = ReturnType<typeof createOutboxStore>;
