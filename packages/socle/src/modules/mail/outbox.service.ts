import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Database, FieldError, Jobs } from '../../kernel/index.js';
import { mailErrors } from './mail.errors.js';
import type { MailTables } from './mail.tables.js';
import { insertOutboxRow, type OutboxStore } from './outbox.store.js';

/** The job that delivers one outbox row (payload `{ outboxId }`, key: the row's id). */
export const MAIL_DELIVERY_JOB = 'mail.deliver';

/** A mail to queue. Plain text is required (every client shows it); HTML is optional. */
export interface MailMessage {
  /** One address, `name@example.com`. */
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html?: string | undefined;
  /**
   * Makes the enqueue idempotent: a second mail with the same key adds nothing (a retried
   * request, a replayed event). Scope it yourself, e.g. `identity:verify:<userId>:<tokenId>`.
   */
  readonly idempotencyKey?: string | undefined;
}

export interface QueuedMail {
  /** The outbox row's id (the existing row's when the idempotency key was already used). */
  readonly id: string;
  /** False when the idempotency key was already used and nothing was added. */
  readonly created: boolean;
}

/** One bare address: no display name, no list, nothing a header could be smuggled in. */
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+$/;
const LINE_BREAK = /[\r\n]/;

function problemsOf(message: MailMessage): FieldError[] {
  const problems: FieldError[] = [];
  if (typeof message.to !== 'string' || message.to.length > 254 || !ADDRESS.test(message.to))
    problems.push({ field: 'to', message: 'must be one email address such as name@example.com' });
  if (typeof message.subject !== 'string' || message.subject.trim() === '')
    problems.push({ field: 'subject', message: 'must be a non-empty string' });
  else if (LINE_BREAK.test(message.subject) || message.subject.length > 998)
    problems.push({ field: 'subject', message: 'must be one line of at most 998 characters' });
  if (typeof message.text !== 'string') problems.push({ field: 'text', message: 'must be a string' });
  if (message.html !== undefined && typeof message.html !== 'string')
    problems.push({ field: 'html', message: 'must be a string when given' });
  if (
    message.idempotencyKey !== undefined &&
    (typeof message.idempotencyKey !== 'string' || message.idempotencyKey === '')
  )
    problems.push({ field: 'idempotencyKey', message: 'must be a non-empty string when given' });
  return problems;
}

/** Queues mail in the caller's transaction; see {@link createMailOutbox}. */
export interface MailOutbox {
  /**
   * Inserts the mail in the outbox and enqueues its `mail.deliver` job, both in `trx`: the mail is
   * sent only if that transaction commits, and a committed business change never lacks its mail.
   * Refuses a Kysely instance that is not a transaction (`mail.not_in_transaction`): row and job
   * would then commit separately.
   */
  enqueue<Tables>(trx: Transaction<Tables>, message: MailMessage): Promise<QueuedMail>;
}

/**
 * The outbox other modules queue mail into: the mail module builds it once (with
 * `MAIL_MAX_ATTEMPTS`) and hands it out as `servicesOf<MailServices>('mail').outbox`. The calling
 * module lists `'mail'` in its `dependsOn` (the outbox table and the job must exist).
 *
 * @example
 * // in a module's setup: const { outbox } = context.servicesOf<MailServices>('mail');
 * await db.transaction(async (trx) => {
 *   await users.insert(user, trx);
 *   await outbox.enqueue(trx, {
 *     to: user.email,
 *     subject: 'Confirm your email address',
 *     text: `Open ${link} to confirm your address.`,
 *     idempotencyKey: `identity:verify:${user.id}`,
 *   });
 * });
 */
export function createMailOutbox(jobs: Jobs, maxAttempts: number): MailOutbox {
  return {
    async enqueue(trx, message) {
      const problems = problemsOf(message);
      if (problems.length > 0) throw mailErrors.invalidMessage(problems);
      if (!trx.isTransaction) throw mailErrors.notInTransaction();
      // The caller's transaction is typed with its own tables; mail.outbox is there all the same
      // (one database, one transaction), as Database.withTables() assumes for a module's tables.
      const executor = trx as unknown as Kysely<MailTables>;
      const queued = await insertOutboxRow(executor, {
        id: randomUUID(),
        recipient: message.to,
        subject: message.subject,
        textBody: message.text,
        htmlBody: message.html ?? null,
        idempotencyKey: message.idempotencyKey ?? null,
      });
      // A row that already existed (same idempotency key) got its job when it was inserted.
      if (queued.created) {
        const { payload, ...options } = deliveryJob(queued.id, maxAttempts);
        await jobs.enqueue(executor, MAIL_DELIVERY_JOB, payload, options);
      }
      return queued;
    },
  };
}

/** The delivery job of one row, keyed by it: a second enqueue (two nodes sweeping at once) adds no second job. */
const deliveryJob = (outboxId: string, maxAttempts: number) => ({
  payload: { outboxId },
  key: outboxId,
  maxAttempts,
});

/** Rows given their jobs per transaction by {@link enqueueMissingDeliveryJobs}. */
const SWEEP_BATCH = 200;

/**
 * Enqueues the delivery job of every row that has none (queued by the previous version, which
 * sent mail with a loop, or inserted by hand); resolves to how many. Each batch of rows is locked,
 * given its jobs and unflagged in one transaction, so nodes sweeping at once split the rows and a
 * crash leaves the rest flagged for the next sweep.
 */
export async function enqueueMissingDeliveryJobs(
  db: Database<MailTables>,
  store: OutboxStore,
  jobs: Jobs,
  maxAttempts: number,
): Promise<number> {
  let total = 0;
  for (;;) {
    const count = await db.transaction(async (trx) => {
      const ids = await store.lockRowsNeedingJobs(trx, SWEEP_BATCH);
      if (ids.length > 0)
        await jobs.enqueueMany(
          trx,
          MAIL_DELIVERY_JOB,
          ids.map((id) => deliveryJob(id, maxAttempts)),
        );
      await store.recordDeliveryJobs(trx, ids);
      return ids.length;
    });
    total += count;
    if (count < SWEEP_BATCH) return total;
  }
}
