import { type Kysely, sql, type Transaction } from 'kysely';
import { type Database, withOwnerTransaction } from '../../kernel/index.js';
import type { MailTables } from './mail.tables.js';

type Executor = Kysely<MailTables>;

/** A row of the outbox as its delivery job reads it. */
export interface MailToDeliver {
  readonly id: string;
  readonly recipient: string;
  readonly subject: string;
  readonly textBody: string;
  readonly htmlBody: string | null;
  readonly sentAt: Date | null;
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
 * Inserts a mail with the caller's executor (their transaction), marked as having its delivery
 * job (the caller enqueues it in the same transaction). With an idempotency key already present,
 * inserts nothing and resolves to the existing row's id.
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
      needs_delivery_job: false,
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

/** SQL of delivery and upkeep. Every time is the database's `now()`: nodes' clocks may disagree. */
export function createOutboxStore(db: Database<MailTables>) {
  return {
    async find(id: string): Promise<MailToDeliver | undefined> {
      const row = await db.kysely
        .selectFrom('mail.outbox')
        .select(['id', 'recipient', 'subject', 'text_body', 'html_body', 'sent_at'])
        .where('id', '=', id)
        .executeTakeFirst();
      return row === undefined
        ? undefined
        : {
            id: row.id,
            recipient: row.recipient,
            subject: row.subject,
            textBody: row.text_body,
            htmlBody: row.html_body,
            sentAt: row.sent_at,
          };
    },

    /**
     * Records the accepted send of attempt `attempts`, in the caller's transaction (the one that
     * completes the job). A row already sent stays as it was.
     */
    async markSent(trx: Transaction<MailTables>, id: string, attempts: number): Promise<void> {
      await trx
        .updateTable('mail.outbox')
        .set({ sent_at: sql<Date>`now()`, failed_at: null, attempts })
        .where('id', '=', id)
        .where('sent_at', 'is', null)
        .execute();
    },

    /**
     * Records a refused or failed send of attempt `attempts`; `final` (the job's last attempt)
     * marks the row failed. A row sent meanwhile (by an attempt that overran its lease) stays sent.
     */
    async recordFailure(id: string, attempts: number, error: string, final: boolean): Promise<void> {
      await db.kysely
        .updateTable('mail.outbox')
        .set({ attempts, last_error: error, failed_at: final ? sql<Date>`now()` : null })
        .where('id', '=', id)
        .where('sent_at', 'is', null)
        .execute();
    },

    /**
     * Up to `limit` rows without a delivery job, locked in `trx` (rows another node is handling
     * are skipped rather than waited for); the caller enqueues their jobs and calls
     * {@link recordDeliveryJobs} in the same transaction.
     */
    async lockRowsNeedingJobs(trx: Transaction<MailTables>, limit: number): Promise<string[]> {
      const rows = await trx
        .selectFrom('mail.outbox')
        .select('id')
        .where('needs_delivery_job', '=', true)
        .orderBy('id')
        .limit(limit)
        .forUpdate()
        .skipLocked()
        .execute();
      return rows.map((row) => row.id);
    },

    async recordDeliveryJobs(trx: Transaction<MailTables>, ids: readonly string[]): Promise<void> {
      if (ids.length === 0) return;
      await trx
        .updateTable('mail.outbox')
        .set({ needs_delivery_job: false })
        .where('id', 'in', [...ids])
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
  };
}

export type OutboxStore = ReturnType<typeof createOutboxStore>;

/**
 * SQL of the mail sent or queued to one address, for export and erasure (the privacy hooks), as
 * the owner role: beneath row-level security.
 */
export function createPersonalDataStore(db: Pick<Database, 'withConnection'>) {
  return {
    /** The mails to `email`, oldest first, without their bodies. */
    mailsTo: (email: string) =>
      withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query(
          `select subject, created_at as "createdAt", sent_at as "sentAt"
             from mail.outbox where recipient = $1 order by created_at`,
          [email],
        );
        return rows;
      }),
    async deleteMailsTo(email: string): Promise<void> {
      await withOwnerTransaction(db, async (connection) => {
        await connection.query('delete from mail.outbox where recipient = $1', [email]);
      });
    },
  };
}
