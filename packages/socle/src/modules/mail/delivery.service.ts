import type { Logger } from '../../kernel/log/index.js';
import type { ClaimedMail, OutboxStore } from './outbox.store.js';
import type { MailSender } from './senders.js';

/** What one pass over the outbox did. */
export interface DrainResult {
  /** Rows this node claimed (0: nothing was due, or other nodes had it). */
  readonly claimed: number;
  readonly sent: number;
  /** Failed attempts that will be retried after a backoff. */
  readonly retrying: number;
  /** Failed attempts that were the last allowed: the row is marked failed. */
  readonly failed: number;
}

/**
 * Delay before the attempt after `attempts` failed ones: 30 s, 2 min, 10 min, 30 min, 1 h, 2 h,
 * 4 h, then 8 h for any further attempt, each ±20 % at random so that mail that failed together
 * (an SMTP outage) does not come back together.
 */
export function retryDelayMs(attempts: number, random: () => number = Math.random): number {
  const steps = [30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000, 28_800_000];
  const base = steps[Math.min(Math.max(attempts, 1), steps.length) - 1] as number;
  return Math.round(base * (0.8 + 0.4 * random()));
}

export interface MailDeliveryOptions {
  readonly store: OutboxStore;
  readonly sender: MailSender;
  readonly log: Logger;
  readonly from: string;
  readonly maxAttempts: number;
  /** Rows claimed per pass. */
  readonly batchSize: number;
  /**
   * How long a claim keeps other nodes away. It must outlast sending a whole batch:
   * batchSize / SEND_CONCURRENCY sends in a row, each bounded by the sender's timeouts.
   */
  readonly leaseMs: number;
  readonly random?: () => number;
}

/** Mails of one batch sent at the same time: enough to hide SMTP round trips, few enough for any relay. */
const SEND_CONCURRENCY = 4;

/** Longest `last_error` kept: SMTP replies can be long and are stored once per attempt. */
const ERROR_MAX_LENGTH = 1000;

/**
 * Delivery of the outbox: claim due rows (short transaction), send them (no transaction open),
 * record each outcome. Safe to run on every node at once: a row is claimed by one node at a time.
 * A node that dies between claim and outcome leaves the row to be claimed again once its lease
 * expires, so a mail is sent at least once, and exactly once unless a node dies mid-send.
 */
export function createMailDelivery(options: MailDeliveryOptions) {
  const { store, sender, log, from, maxAttempts, batchSize, leaseMs } = options;
  const random = options.random ?? Math.random;

  async function deliver(mail: ClaimedMail): Promise<'sent' | 'retrying' | 'failed'> {
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
      if (mail.attempts >= maxAttempts) {
        await store.markFailed(mail.id, mail.attempts, message);
        log.error(
          { mailId: mail.id, attempts: mail.attempts, sender: sender.name, error: message },
          'Mail could not be delivered; giving up',
        );
        return 'failed';
      }
      const delayMs = retryDelayMs(mail.attempts, random);
      await store.scheduleRetry(mail.id, mail.attempts, message, delayMs);
      log.warn(
        { mailId: mail.id, attempts: mail.attempts, sender: sender.name, error: message, retryInMs: delayMs },
        'Mail delivery failed; will retry',
      );
      return 'retrying';
    }
    await store.markSent(mail.id);
    log.debug({ mailId: mail.id, attempts: mail.attempts, sender: sender.name }, 'Mail sent');
    return 'sent';
  }

  return {
    /** One pass: claims up to `batchSize` due mails, sends them, records the outcomes. */
    async drainOnce(): Promise<DrainResult> {
      const claimed = await store.claimDue(batchSize, leaseMs);
      const outcomes: ('sent' | 'retrying' | 'failed')[] = [];
      let next = 0;
      const worker = async () => {
        while (next < claimed.length) {
          const mail = claimed[next++] as ClaimedMail;
          try {
            outcomes.push(await deliver(mail));
          } catch (error) {
            // The database failed while recording the outcome: the claim stays, and the row is
            // tried again when its lease expires (a sent mail may then go out twice).
            log.error({ err: error, mailId: mail.id }, 'Could not record the outcome of a mail');
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(SEND_CONCURRENCY, claimed.length) }, worker));
      return {
        claimed: claimed.length,
        sent: outcomes.filter((outcome) => outcome === 'sent').length,
        retrying: outcomes.filter((outcome) => outcome === 'retrying').length,
        failed: outcomes.filter((outcome) => outcome === 'failed').length,
      };
    },
  };
}

export type MailDelivery = ReturnType<typeof createMailDelivery>;
