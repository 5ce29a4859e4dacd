/**
 * The kernel's public API: what every module, built-in or app, builds on. Built-in modules import
 * the kernel only from here (a lint check, scripts/check-module-imports.mjs, enforces it), so an app
 * can do whatever they do; `socle`'s entry re-exports all of it.
 */

export { Type } from '@fastify/type-provider-typebox';
/**
 * Kysely's types, named by what modules receive: `db.kysely` is a `Kysely<Tables>`, the work of
 * `db.transaction` gets a `Transaction<Tables>`, and services that join a caller's transaction
 * (the mail outbox's `enqueue(trx, …)`) take one. Without them an app could not type a store function
 * that runs inside the caller's transaction.
 */
export type { Kysely, Transaction } from 'kysely';
export { sql } from 'kysely';
/**
 * Blob storage (`context.blobs`): one streaming interface over a local directory and any
 * S3-compatible store; `byteLimit` is the counting, size-limiting stream stage both use.
 */
export {
  type BlobInfo,
  type BlobRead,
  type BlobStorageClass,
  type BlobStore,
  type ByteRange,
  blobErrors,
  byteLimit,
  type PresignOptions,
  type PutBlobOptions,
  parseS3Url,
  type S3Location,
} from './blobs/index.js';
export type { Bus, BusHandler } from './bus/index.js';
export { type Clock, createManualClock, systemClock } from './clock/index.js';
export {
  CONFIG_FILE_NAME,
  type Config,
  type ConfigurationEntry,
  defineSettings,
  type LoadConfigOptions,
  type LogLevel,
  loadConfig,
  type RawValue,
  type SettingDefinition,
  type SettingParser,
  type SettingsSpec,
  type SettingValues,
  setting,
} from './config/index.js';
export {
  type RequestScope,
  type ScopeAccess,
  TENANT_ID_SETTING,
  tenantSettings,
  USER_ID_SETTING,
} from './context/index.js';
export type {
  Database,
  Dialect,
  MigrationSource,
  PoolStatistics,
  PreparedQuery,
  ReplicaStatus,
  SqlConnection,
  SqlResult,
  TransactionContextProvider,
  TransactionOptions,
  TransactionSettings,
  WithSettingsOptions,
} from './db/index.js';
/** 503 `db.unavailable`: what a module answers when the database cannot be reached in time. */
/**
 * The settings (`app.tenant_id`…) a transaction or `withSettings` instance acts with, and the name
 * `shardOf` gives the primary: what a module whose tables stay on the primary needs to answer a
 * question asked inside a tenant's transaction on its shard (tenancy's `memberRole`).
 */
/** Serializes the transactions working on one key (an advisory lock held until COMMIT/ROLLBACK). */
export { databaseErrors, lockUntilTransactionEnds, PRIMARY_SHARD, settingsOfExecutor } from './db/index.js';
/** The kernel's HTTP errors (`http.*`), for modules answering outside a route (WebSocket upgrades). */
export {
  type FieldError,
  httpErrors,
  isSocleError,
  PROBLEM_CONTENT_TYPE,
  type Problem,
  problemType,
  SocleError,
  type SocleErrorOptions,
} from './errors/index.js';
export type { NodeHealth, NodeReport } from './health/index.js';
export {
  DEFAULT_CONTENT_SECURITY_POLICY,
  type HttpServer,
  REQUEST_ID_HEADER,
  routeSecurity,
  type WebClient,
  webClientPath,
  writeProblemOnSocket,
} from './http/index.js';
export { isUuid } from './ids/index.js';
export { createLogger, createSilentLogger, type Logger } from './log/index.js';
export type {
  GaugeOptions,
  HistogramOptions,
  MetricCounter,
  MetricHistogram,
  MetricLabels,
  MetricOptions,
  Metrics,
} from './metrics/index.js';
export {
  type ChannelAuthorizer,
  defineModule,
  type ModuleContext,
  type ModuleDefinition,
  type ModulePrivacyHooks,
  type SetupContext,
} from './modules/index.js';
export { type PrivacyHooks, type PrivacySubject, withOwnerTransaction } from './privacy/index.js';
export {
  connectionExecutor,
  defineJob,
  type Enqueued,
  type EnqueueOptions,
  JOB_QUEUES,
  JOB_STATES,
  type JobBackoff,
  type JobContext,
  type JobDefinition,
  type JobQueue,
  type JobQueueCounts,
  type JobRecord,
  type Jobs,
  type JobToEnqueue,
  MIN_POSTPONE_MS,
  postponeJob,
  postponementOf,
  type RunningJob,
} from './queue/index.js';
export {
  type HttpRateLimitRule,
  type RateLimiter,
  rateLimitErrors,
  rateLimitKey,
  rateLimitPreHandler,
} from './rate-limit/index.js';
export { isRedisUnavailable, type RedisConnections } from './redis/index.js';
export { decodeSecretKey, type SecretBox } from './secrets/index.js';
export type {
  MemberChange,
  OpenSharedStateOptions,
  PresenceMember,
  SharedState,
  SharedStates,
  SweptNodes,
} from './shared-state/index.js';
