export type { Dialect, PoolStatistics, SqlConnection, SqlResult } from './backend.js';
export {
  createDatabase,
  type Database,
  settingsOfExecutor,
  type TransactionContextProvider,
  type TransactionOptions,
  type TransactionSettings,
  type WithSettingsOptions,
} from './database.js';
export {
  DATABASE_RETRY_AFTER_SECONDS,
  databaseErrors,
  isDatabaseUnavailable,
  isDataException,
  isTransactionConflict,
} from './database-errors.js';
export { createLoadShedding, type LoadShedding, type LoadSheddingOptions } from './load-shedding.js';
export {
  applicationRoleStatement,
  applyMigrations,
  checksumOf,
  loadMigrations,
  type Migration,
  type MigrationSource,
  type MigrationState,
  type MigrationStatus,
  migrationErrors,
  migrationStatus,
} from './migrations.js';
export { createDatabaseOutageLog, type OpenDatabaseOptions, openDatabase } from './open-database.js';
export { redactUrl } from './postgres-backend.js';
export type { PreparedQuery } from './prepared-query.js';
export {
  createReadRouter,
  EVERY_DATABASE,
  formatLsn,
  PRIMARY_DATABASE,
  parseLsn,
  type ReadConsistency,
  type ReadRouter,
  type ReplicaStatus,
  withReadConsistency,
} from './read-routing.js';
export {
  createShardRouter,
  isTenantFrozen,
  PRIMARY_SHARD,
  type ShardRouter,
  shardErrors,
  TENANT_FROZEN_SQLSTATE,
} from './shard-routing.js';
export { lockUntilTransactionEnds } from './transaction-lock.js';
