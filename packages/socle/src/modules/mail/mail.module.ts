import { defineModule, type ModuleContext, type ModuleDefinition } from '../../kernel/modules/index.js';
import { defineJob } from '../../kernel/queue/index.js';
import { createMailDelivery, type DrainResult, type MailDelivery } from './delivery.service.js';
import { type DeliveryLoop, startDeliveryLoop } from './delivery-loop.js';
import { mailErrors } from './mail.errors.js';
import { createMailPrivacy } from './mail.privacy.js';
import type { MailTables } from './mail.tables.js';
import { enqueueMail } from './outbox.service.js';
import { createOutboxStore } from './outbox.store.js';
import { createLogSender, createSmtpSender, type MailSender } from './senders.js';

export interface MailModuleOptions {
  /**
   * Delivers mail. Default: SMTP through `SMTP_URL` when it is set, else the log sender (each
   * mail written to the log, for embedded development).
   */
  readonly sender?: MailSender;
  /** Overrides `MAIL_POLL_INTERVAL_MS`. */
  readonly pollIntervalMs?: number;
  /** Overrides `MAIL_MAX_ATTEMPTS`. */
  readonly maxAttempts?: number;
  /** Mails claimed per pass; default 20. */
  readonly batchSize?: number;
  /**
   * How long a claim keeps other nodes from a mail; default 10 minutes, longer than a batch can
   * take with the SMTP sender's timeouts. A node that dies mid-send delays its mails this long.
   */
  readonly leaseMs?: number;
  /** Source of the backoff jitter, in [0, 1). */
  readonly random?: () => number;
}

/** The mail module: a module definition plus its outbox API. */
export interface MailModule extends ModuleDefinition<MailTables> {
  /** {@link enqueueMail}: queues a mail inside the caller's transaction. */
  readonly enqueue: typeof enqueueMail;
  /**
   * One delivery pass on this node, as the poll loop runs it; resolves to what it did. For tests
   * and for a job that replaces the loop. Rejects with `mail.not_started` before the module started.
   */
  drainOnce(): Promise<DrainResult>;
  /**
   * Deletes mail sent or failed more than `MAIL_RETENTION_DAYS` ago; resolves to how many. The
   * daily `mail.purgeFinished` job calls it.
   */
  purgeFinished(): Promise<number>;
}

const DEFAULT_BATCH_SIZE = 20;
const DEFAULT_LEASE_MS = 10 * 60 * 1000;

/**
 * Outgoing mail through a transactional outbox. Modules queue mail with {@link enqueueMail} in
 * their own transaction; every node runs a loop that claims due mail and sends it with SMTP
 * (`SMTP_URL`, `MAIL_FROM`) or, when SMTP is not configured, writes it to the log. Failed sends
 * are retried with a growing backoff, up to `MAIL_MAX_ATTEMPTS`.
 *
 * @example
 * const mail = createMailModule();
 * const socle = await createSocle({ config, modules: [mail, accounts] }); // accounts: dependsOn ['mail']
 * // in a service of `accounts`:
 * await db.transaction(async (trx) => {
 *   await insertInvitation(trx, invitation);
 *   await enqueueMail(trx, { to: invitation.email, subject: 'You are invited', text: link });
 * });
 */
export function createMailModule(options: MailModuleOptions = {}): MailModule {
  let delivery: MailDelivery | undefined;
  let sender: MailSender | undefined;
  let loop: DeliveryLoop | undefined;
  let purge: (() => Promise<number>) | undefined;

  const start = (context: ModuleContext<MailTables>) => {
    const { config, log } = context;
    const batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    sender = options.sender ?? (config.smtpUrl ? createSmtpSender({ url: config.smtpUrl }) : undefined);
    if (sender === undefined) {
      sender = createLogSender(log);
      // Embedded development expects this; a server on Postgres without SMTP most likely forgot it.
      log[config.databaseUrl === undefined ? 'info' : 'warn'](
        'SMTP_URL is not set: mail is written to the log, not delivered',
      );
    }
    delivery = createMailDelivery({
      store: createOutboxStore(context.db),
      sender,
      log,
      from: config.mailFrom,
      maxAttempts: options.maxAttempts ?? config.mailMaxAttempts,
      batchSize,
      leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
      ...(options.random === undefined ? {} : { random: options.random }),
    });
    const store = createOutboxStore(context.db);
    purge = () => store.purgeFinished(config.mailRetentionDays);
    loop = startDeliveryLoop({
      drainOnce: delivery.drainOnce,
      intervalMs: options.pollIntervalMs ?? config.mailPollIntervalMs,
      batchSize,
      log,
    });
  };

  const definition = defineModule<MailTables>({
    name: 'mail',
    privacy: (context) => createMailPrivacy(context.db),
    globalTables: {
      outbox:
        'mail is addressed to a person, and the delivery loop runs outside any request with no tenant: under RLS it would see no row',
    },
    migrations: new URL('./migrations/', import.meta.url),
    jobs: {
      purgeFinished: defineJob({
        cron: '17 3 * * *',
        queue: 'low',
        async handler({ log }) {
          if (purge === undefined) throw mailErrors.notStarted();
          const deleted = await purge();
          if (deleted > 0) log.info({ deleted }, 'Old mail purged from the outbox');
        },
      }),
    },
    onStart: start,
    async onStop() {
      await loop?.stop();
      await sender?.close?.();
      loop = undefined;
    },
  });
  return Object.freeze({
    ...definition,
    enqueue: enqueueMail,
    drainOnce() {
      if (delivery === undefined) return Promise.reject(mailErrors.notStarted());
      return delivery.drainOnce();
    },
    purgeFinished() {
      if (purge === undefined) return Promise.reject(mailErrors.notStarted());
      return purge();
    },
  });
}
