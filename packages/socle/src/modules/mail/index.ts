/** The mail module: a transactional outbox, delivered by SMTP or written to the log. */
export type { DrainResult } from './delivery.service.js';
export { createMailModule, type MailModule, type MailModuleOptions } from './mail.module.js';
export type { MailTables } from './mail.tables.js';
export { enqueueMail, type MailMessage, type QueuedMail } from './outbox.service.js';
export {
  createLogSender,
  createSmtpSender,
  type MailSender,
  type OutgoingMail,
  type SmtpSenderOptions,
} from './senders.js';
