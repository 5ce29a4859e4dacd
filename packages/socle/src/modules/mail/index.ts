/** The mail module: a transactional outbox, delivered by a job through SMTP or written to the log. */
export {
  createMailModule,
  DEFAULT_MAIL_BACKOFF,
  type MailModule,
  type MailModuleOptions,
  type MailServices,
  type MailSettings,
  mailSettings,
} from './mail.module.js';
export type { MailTables } from './mail.tables.js';
export {
  MAIL_DELIVERY_JOB,
  type MailMessage,
  type MailOutbox,
  type QueuedMail,
} from './outbox.service.js';
export {
  createLogSender,
  createSmtpSender,
  type MailSender,
  type OutgoingMail,
  type SmtpSenderOptions,
} from './senders.js';
