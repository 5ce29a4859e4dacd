import type { Clock } from '../clock/index.js';
import type { Logger } from '../log/index.js';
import type { RedisConnections } from '../redis/index.js';
import { createRedisSharedState } from './redis-shared-state.js';
import { createMemorySharedState, type SharedState } from './shared-state.js';

export interface OpenSharedStateOptions {
  /** Whose state it is: its Redis keys are `<REDIS_NAMESPACE>:<area>:…` (realtime: `rt`). */
  readonly area: string;
  /** This node's id in the fleet: what it adds is recorded under it, for `sweepDeadNodes`. */
  readonly nodeId: string;
  /** Silence after which a node counts as dead (default 20 s); it heartbeats 4 times as often. */
  readonly nodeExpiryMs?: number;
}

/**
 * Fleet-wide state for modules, picked by the kernel: in memory when embedded, in Redis (over the
 * process's one set of connections) when `REDIS_URL` is set. A module opens its area and uses it
 * the same way in both cases.
 *
 * @example
 * const rooms = context.sharedState.open({ area: 'quiz', nodeId: randomUUID() });
 * await rooms.join(tenantId, `room-${roomId}`, socketId, { userId }, 50);
 */
export interface SharedStates {
  /** Which adapter the kernel picked (for logs and `/readyz`; modules need not look). */
  readonly kind: 'memory' | 'redis';
  /** The state of one area, as this node sees it. Its user closes it; the kernel closes what is left at shutdown. */
  open(options: OpenSharedStateOptions): SharedState;
}

/** What the kernel keeps: the service, and the closing of every state opened through it. */
export interface SharedStatesOwner extends SharedStates {
  close(): Promise<void>;
}

export function createSharedStates(options: {
  readonly redis: RedisConnections | undefined;
  readonly clock: Clock;
  readonly log: Logger;
}): SharedStatesOwner {
  const { redis, clock, log } = options;
  const now = () => clock.now().getTime();
  const open = new Set<SharedState>();
  return {
    kind: redis === undefined ? 'memory' : 'redis',
    open({ area, nodeId, nodeExpiryMs }) {
      const state =
        redis === undefined
          ? createMemorySharedState(nodeId, now)
          : createRedisSharedState({
              connections: redis,
              prefix: redis.prefix(area),
              nodeId,
              now,
              log,
              ...(nodeExpiryMs === undefined ? {} : { nodeExpiryMs }),
            });
      // Closed once, whoever asks first (its module's onStop, or the kernel at shutdown).
      let closing: Promise<void> | undefined;
      const closeOnce = () => {
        closing ??= state.close().finally(() => open.delete(handle));
        return closing;
      };
      const handle: SharedState = { ...state, close: closeOnce };
      open.add(handle);
      return handle;
    },
    async close() {
      await Promise.allSettled([...open].map((state) => state.close()));
    },
  };
}
