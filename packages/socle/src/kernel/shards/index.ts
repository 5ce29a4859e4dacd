export { type InstallShardsOptions, installShards, primarySchemas, shardConfig } from './install-shards.js';
export { createShardedJobEngine } from './sharded-jobs.js';
