export {
  createRedisSharedState,
  NODE_EXPIRY_MS,
  type RedisSharedStateOptions,
} from './redis-shared-state.js';
export {
  createMemorySharedState,
  type MemberChange,
  type PresenceMember,
  type SharedState,
  type SweptNodes,
} from './shared-state.js';
export {
  createSharedStates,
  type OpenSharedStateOptions,
  type SharedStates,
  type SharedStatesOwner,
} from './shared-states.js';
