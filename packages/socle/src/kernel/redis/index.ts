export {
  BoundedRedis,
  createRedisConnections,
  DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
  DEFAULT_REDIS_NAMESPACE,
  type RedisConnections,
  type RedisConnectionsOptions,
} from './redis-connections.js';
export { isRedisUnavailable, REDIS_RETRY_AFTER_SECONDS, redisErrors } from './redis-errors.js';
