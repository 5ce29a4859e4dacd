export { type InstallShardsOptions, installShards, primarySchemas, shardConfig } from './install-shards.js';
export { type MoveReport, type MoveTenantOptions, moveErrors, moveTenant } from './move-tenant.js';
export { createShardedJobEngine } from './sharded-jobs.js';
