/**
 * Socle's public API: what built-in modules and apps import. Anything not exported here is
 * internal and may change without notice.
 */

export * from './kernel/index.js';
export {
  type CloseResult,
  type CreateSocleOptions,
  createSocle,
  type ListenOptions,
  SOCLE_VERSION,
  type Socle,
} from './kernel/socle.js';
export {
  type AuditEvent,
  type AuditEventPage,
  type AuditEventQuery,
  type AuditModule,
  type AuditOptions,
  type AuditServices,
  type AuditTables,
  createAuditModule,
} from './modules/audit/index.js';
export {
  type Authentication,
  createIdentityModule,
  type IdentityOptions,
  requireUser,
} from './modules/identity/index.js';
export { createBuiltInModules } from './modules/index.js';
export {
  createLogSender,
  createMailModule,
  createMailOutbox,
  createSmtpSender,
  DEFAULT_MAIL_BACKOFF,
  MAIL_DELIVERY_JOB,
  type MailMessage,
  type MailModule,
  type MailModuleOptions,
  type MailOutbox,
  type MailSender,
  type MailServices,
  type MailTables,
  type OutgoingMail,
  type QueuedMail,
  type SmtpSenderOptions,
} from './modules/mail/index.js';
export {
  createPrivacyModule,
  type ErasureResult,
  type PrivacyService,
  type SubjectExport,
} from './modules/privacy/index.js';
export {
  channelAuth,
  createRealtimeModule,
  type Realtime,
  type RealtimeApp,
  type RealtimeModule,
  type RealtimeOptions,
  userAuth,
  type WebhookEvent,
  type WebhookSink,
} from './modules/realtime/index.js';
export {
  API_KEY_HEADER,
  type ApiKeyRole,
  type ApiKeySummary,
  type CurrentOrg,
  can,
  createTenancyModule,
  hasRole,
  ORG_HEADER,
  ORG_ROLES,
  OrgHeaders,
  type OrgRole,
  type RequestApiKey,
  requireOrg,
  requireOrgRole,
  requireScope,
  type TenancyOptions,
} from './modules/tenancy/index.js';
