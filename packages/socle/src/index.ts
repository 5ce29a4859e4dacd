/**
 * Socle's public API: what built-in modules and apps import. Anything not exported here is
 * internal and may change without notice.
 */

export { Type } from '@fastify/type-provider-typebox';
export { sql } from 'kysely';
export type { Bus, BusHandler } from './kernel/bus/index.js';
export { type Clock, createManualClock, systemClock } from './kernel/clock/index.js';
export {
  CONFIG_FILE_NAME,
  type Config,
  type LoadConfigOptions,
  type LogLevel,
  loadConfig,
} from './kernel/config/index.js';
export type {
  Database,
  Dialect,
  MigrationSource,
  PoolStatistics,
  PreparedQuery,
  SqlConnection,
  SqlResult,
  TransactionContextProvider,
  TransactionOptions,
  TransactionSettings,
} from './kernel/db/index.js';
export {
  type FieldError,
  isSocleError,
  PROBLEM_CONTENT_TYPE,
  type Problem,
  problemType,
  SocleError,
  type SocleErrorOptions,
} from './kernel/errors/index.js';
export { type HttpServer, REQUEST_ID_HEADER, routeSecurity } from './kernel/http/index.js';
export { createLogger, createSilentLogger, type Logger } from './kernel/log/index.js';
export type { MetricCounter, MetricOptions, Metrics } from './kernel/metrics/index.js';
export {
  type ChannelAuthorizer,
  defineModule,
  type ModuleContext,
  type ModuleDefinition,
  type ModulePrivacyHooks,
  type SetupContext,
} from './kernel/modules/index.js';
export {
  defineJob,
  type Enqueued,
  type EnqueueOptions,
  JOB_QUEUES,
  type JobBackoff,
  type JobContext,
  type JobDefinition,
  type JobQueue,
  type JobRecord,
  type Jobs,
  type JobToEnqueue,
  type RunningJob,
} from './kernel/queue/index.js';
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
