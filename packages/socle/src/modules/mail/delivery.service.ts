import type { Database, JobContext } from '../../kernel/index.js';
import type { MailTables } from './mail.tables.js';
import type { OutboxStore } from './outbox.store.js';
import type { MailSender } from './senders.js';

/** The payload of a `mail.deliver` job. */
export interface MailDeliveryPayload {
  readonly outboxId: string;
}

export interface MailDeliveryOptions {
  readonly db: Database<MailTables>;
  readonly store: OutboxStore;
  readonly sender: MailSender;
  readonly from: string;
}

/** Longest `last_error` kept: SMTP replies can be long. */
const ERROR_MAX_LENGTH = 1000;

/**
 * Delivery of one outbox row, as the handler of its `mail.deliver` job. The engine schedules the
 * attempts (retries with backoff, then the dead `failed` state); the row records each outcome so
 * it can be inspected without the engine: `attempts`, `last_error`, then `sent_at` or `failed_at`.
 *
 * Idempotent where it can be: a row already sent (a job replayed, retried by hand, or run again
 * after its worker died) makes the job a no-op, and the row is marked sent in the transaction that
 * completes the job, so a worker dying after that commit leaves nothing to run again. SMTP itself
 * is at least once: if the process dies after the server accepted the mail and before that commit,
 * the next attempt sends it again (with the same Message-ID, the row's id, which receivers may use
 * to drop the duplicate). No protocol closes that window; it is as wide as one round trip.
 */
export function createMailDelivery(options: MailDeliveryOptions) {
  const { db, store, sender, from } = options;
  return {
    async deliver({ payload, job, log, complete }: JobContext<MailDeliveryPayload>): Promise<void> {
      const mail = await store.find(payload.outboxId);
      if (mail === undefined) {
        // Erased (GDPR) or purged after its retention: there is nothing left to send.
        log.info({ mailId: payload.outboxId }, 'Mail no longer in the outbox; nothing to deliver');
        return;
      }
      if (mail.sentAt !== null) {
        log.debug({ mailId: mail.id }, 'Mail already sent; not sending it again');
        return;
      }
      try {
        await sender.send({
          id: mail.id,
          from,
          to: mail.recipient,
          subject: mail.subject,
          text: mail.textBody,
          html: mail.htmlBody ?? undefined,
        });
      } catch (error) {
        const message = (error instanceof Error ? error.message : String(error)).slice(0, ERROR_MAX_LENGTH);
        const final = job.attempt >= job.maxAttempts;
        await store.recordFailure(mail.id, job.attempt, message, final);
        // The engine logs the failed attempt (and schedules the next one, or keeps the job dead).
        throw error;
      }
      await db.transaction(async (trx) => {
        await store.markSent(trx, mail.id, job.attempt);
        await complete(trx);
      });
      log.debug({ mailId: mail.id, attempt: job.attempt, sender: sender.name }, 'Mail sent');
    },
  };
}

export type MailDelivery = ReturnType<typeof createMailDelivery>;
