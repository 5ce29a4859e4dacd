import { Type } from '@fastify/type-provider-typebox';
import type { Logger } from '../../kernel/index.js';
import {
  defineJob,
  defineModule,
  defineSettings,
  type JobBackoff,
  type ModuleDefinition,
  type SettingValues,
  type SetupContext,
  setting,
} from '../../kernel/index.js';
import { createMailDelivery, type MailDelivery } from './delivery.service.js';
import { createMailPrivacy } from './mail.privacy.js';
import type { MailTables } from './mail.tables.js';
import { createMailOutbox, enqueueMissingDeliveryJobs, type MailOutbox } from './outbox.service.js';
import { createOutboxStore, createPersonalDataStore } from './outbox.store.js';
import { createLogSender, createSmtpSender, type MailSender } from './senders.js';

/** The mail module's settings (`socle help config` lists them). */
export const mailSettings = defineSettings({
  smtpUrl: setting.url({
    env: 'SMTP_URL',
    description:
      'SMTP server that delivers mail (smtp://user:pass@host:587, smtps://…); unset logs mail instead',
    protocols: ['smtp:', 'smtps:'],
  }),
  from: setting.string({
    env: 'MAIL_FROM',
    description: 'From address of outgoing mail',
    default: 'Socle <no-reply@localhost>',
  }),
  maxAttempts: setting.integer({
    env: 'MAIL_MAX_ATTEMPTS',
    description:
      'Delivery attempts of one mail (its mail.deliver job) before it is marked failed; set for mail queued from then on',
    default: 10,
    min: 1,
    max: 100,
  }),
  retentionDays: setting.integer({
    env: 'MAIL_RETENTION_DAYS',
    description:
      'Days sent or failed mail stays in the outbox (it may hold tokens) before a daily job deletes it',
    default: 7,
    min: 1,
    max: 3650,
  }),
});

export type MailSettings = SettingValues<typeof mailSettings>;

export interface MailModuleOptions {
  /**
   * Delivers mail. Default: SMTP through `SMTP_URL` when it is set, else the log sender (each
   * mail written to the log, for embedded development).
   */
  readonly sender?: MailSender;
  /**
   * Backoff between delivery attempts; default {@link DEFAULT_MAIL_BACKOFF}. `false` retries at
   * once (tests). The number of attempts is `MAIL_MAX_ATTEMPTS`.
   */
  readonly backoff?: JobBackoff | false;
}

/**
 * Backoff of the `mail.deliver` job: 30 s doubling, each delay stretched by up to 2× at random
 * (so mail that failed together in an SMTP outage does not come back together), capped at 4 h.
 * With the default 10 attempts, a mail is retried for about 4 to 8 hours before it is marked failed.
 */
export const DEFAULT_MAIL_BACKOFF: JobBackoff = { initialDelayMs: 30_000, maxDelayMs: 4 * 60 * 60 * 1000 };

/**
 * One attempt's limit (and its lease: a worker that dies mid-send delays the mail this long). The
 * SMTP sender bounds each step by 15 s; a send is a handful of steps.
 */
const DELIVERY_TIMEOUT_MS = 2 * 60 * 1000;

/** What the mail module gives other modules, apps and tests (`context.servicesOf<MailServices>('mail')`). */
export interface MailServices {
  /** Queues mail in the caller's transaction (see {@link MailOutbox}). */
  readonly outbox: MailOutbox;
  /**
   * Deletes mail sent or failed more than `MAIL_RETENTION_DAYS` ago; resolves to how many. The
   * daily `mail.purgeFinished` job calls it.
   */
  purgeFinished(): Promise<number>;
}

interface MailModuleServices extends MailServices {
  readonly delivery: MailDelivery;
  readonly sender: MailSender;
  /** Enqueues the delivery job of mail queued without one (by a previous version). */
  sweep(log: Logger): Promise<void>;
}

/** The mail module's definition; its public API is {@link MailServices}. */
export type MailModule = ModuleDefinition<MailTables, MailModuleServices, MailSettings>;

/**
 * Outgoing mail through a transactional outbox. A module queues mail with
 * `context.servicesOf<MailServices>('mail').outbox.enqueue(trx, message)` in its own transaction: the outbox row and
 * its `mail.deliver` job (jobs engine, queue `high`) commit or roll back with the business change.
 * The job sends the mail with SMTP (`SMTP_URL`, `MAIL_FROM`) or, when SMTP is not configured,
 * writes it to the log; failed sends are retried by the engine with backoff, up to
 * `MAIL_MAX_ATTEMPTS`, and the row records every outcome. A daily job (`mail.purgeFinished`)
 * deletes finished mail after `MAIL_RETENTION_DAYS`.
 *
 * @example
 * const mail = createMailModule();
 * const socle = await createSocle({ config, modules: [mail, accounts] }); // accounts: dependsOn ['mail']
 * // in the setup of `accounts`:
 * const { outbox } = context.servicesOf<MailServices>('mail');
 * await db.transaction(async (trx) => {
 *   await insertInvitation(trx, invitation);
 *   await outbox.enqueue(trx, { to: invitation.email, subject: 'You are invited', text: link });
 * });
 */
export function createMailModule(options: MailModuleOptions = {}): MailModule {
  return defineModule({
    name: 'mail',
    // Written in identity's and tenancy's transactions, on the primary: stays there with SHARDS.
    placement: 'primary',
    globalTables: {
      outbox:
        'mail is addressed to a person, and its delivery job reads it by id whatever tenant queued it: under RLS a job of another scope would see no row',
    },
    migrations: new URL('./migrations/', import.meta.url),
    settings: mailSettings,
    setup(context: SetupContext<MailTables, MailSettings>): MailModuleServices {
      const { config, settings, log, db, jobs } = context;
      let sender =
        options.sender ?? (settings.smtpUrl ? createSmtpSender({ url: settings.smtpUrl }) : undefined);
      if (sender === undefined) {
        sender = createLogSender(log);
        // Embedded development expects this; a server on Postgres without SMTP most likely forgot it.
        log[config.databaseUrl === undefined ? 'info' : 'warn'](
          'SMTP_URL is not set: mail is written to the log, not delivered',
        );
      }
      const store = createOutboxStore(db);
      return {
        outbox: createMailOutbox(jobs, settings.maxAttempts),
        delivery: createMailDelivery({ db, store, sender, from: settings.from }),
        sender,
        purgeFinished: () => store.purgeFinished(settings.retentionDays),
        async sweep(logTo) {
          const enqueued = await enqueueMissingDeliveryJobs(db, store, jobs, settings.maxAttempts);
          if (enqueued > 0) logTo.info({ enqueued }, 'Delivery jobs enqueued for mail queued without one');
        },
      };
    },
    privacy: ({ db }) => createMailPrivacy(createPersonalDataStore(db)),
    jobs: {
      deliver: defineJob({
        schema: Type.Object({ outboxId: Type.String({ format: 'uuid' }) }),
        // Someone is usually waiting for it (a verification, a password reset, an invitation).
        queue: 'high',
        // Overridden per mail by MAIL_MAX_ATTEMPTS (a setting, read after this is declared).
        maxAttempts: 10,
        backoff: options.backoff ?? DEFAULT_MAIL_BACKOFF,
        timeoutMs: DELIVERY_TIMEOUT_MS,
        handler: (job, { delivery }: MailModuleServices) => delivery.deliver(job),
      }),
      purgeFinished: defineJob({
        cron: '17 3 * * *',
        queue: 'low',
        async handler({ log }, { purgeFinished, sweep }: MailModuleServices) {
          const deleted = await purgeFinished();
          if (deleted > 0) log.info({ deleted }, 'Old mail purged from the outbox');
          // Rows an old node inserted during a rolling upgrade, after the last new node started.
          await sweep(log);
        },
      }),
    },
    async onStart({ log, services }) {
      // Mail queued by the previous version (a loop delivered it) has no job yet. A failure here
      // must not stop the server (migrations may be pending with MIGRATE_ON_START=false): the
      // daily job sweeps again.
      try {
        await services.sweep(log);
      } catch (error) {
        log.warn(
          { err: error },
          'Could not enqueue delivery jobs for mail queued without one; retrying daily',
        );
      }
    },
    async onStop({ services }) {
      // The job engine stopped before modules stop: no delivery is running any more.
      await services.sender.close?.();
    },
  });
}
