import type { Logger } from '../log/index.js';
import { createRedisConnections, type RedisConnections } from '../redis/index.js';

/** Receives every message published on a channel this process subscribed to. */
export type BusHandler = (message: string) => void;

/**
 * Fan-out between the nodes of a fleet: in process when embedded, Redis pub/sub with `REDIS_URL`.
 * A node listens only to the channels its own handlers use (one Redis channel per bus channel,
 * subscribed while at least one local handler needs it), so a message reaches only the nodes that
 * have someone to deliver it to, unlike a broadcast-everything adapter.
 */
export interface Bus {
  readonly kind: 'memory' | 'redis';
  /** Adds `handler` to `channel`; resolves once messages published from now on will reach it. */
  subscribe(channel: string, handler: BusHandler): Promise<void>;
  /** Removes `handler`; the node stops listening to `channel` when no local handler is left. */
  unsubscribe(channel: string, handler: BusHandler): Promise<void>;
  /** Delivers `message` to every handler of `channel` on every node (this one included). */
  publish(channel: string, message: string): Promise<void>;
  /** Channels this node listens to (for metrics and tests). */
  channelCount(): number;
  close(): Promise<void>;
}

export interface CreateBusOptions {
  /** The process's Redis connections: the bus is shared across nodes; with neither this nor `redisUrl`, in process. */
  readonly redis?: RedisConnections | undefined;
  /** `redis://…`: opens connections of its own (tests, standalone use). */
  readonly redisUrl?: string | undefined;
  /** Prefix of Redis channel names; default `<namespace>:bus:` (REDIS_NAMESPACE). */
  readonly prefix?: string;
  readonly log?: Logger;
}

/**
 * The bus of this process: Redis when `redisUrl` is set, otherwise in memory.
 *
 * @example
 * const bus = createBus({ redisUrl: config.redisUrl });
 * await bus.subscribe('room-1', (message) => console.log(message));
 * await bus.publish('room-1', 'hello');
 */
export function createBus(options: CreateBusOptions = {}): Bus {
  return options.redis === undefined && options.redisUrl === undefined
    ? createMemoryBus()
    : createRedisBus(options);
}

function deliver(handlers: Set<BusHandler> | undefined, message: string, log?: Logger): void {
  if (handlers === undefined) return;
  for (const handler of handlers) {
    try {
      handler(message);
    } catch (error) {
      log?.error({ err: error }, 'Bus handler failed');
    }
  }
}

/** In-process fan-out: publishing calls the channel's handlers synchronously. */
export function createMemoryBus(log?: Logger): Bus {
  const channels = new Map<string, Set<BusHandler>>();
  return {
    kind: 'memory',
    async subscribe(channel, handler) {
      let handlers = channels.get(channel);
      if (handlers === undefined) {
        handlers = new Set();
        channels.set(channel, handlers);
      }
      handlers.add(handler);
    },
    async unsubscribe(channel, handler) {
      const handlers = channels.get(channel);
      if (handlers === undefined) return;
      handlers.delete(handler);
      if (handlers.size === 0) channels.delete(channel);
    },
    async publish(channel, message) {
      deliver(channels.get(channel), message, log);
    },
    channelCount: () => channels.size,
    async close() {
      channels.clear();
    },
  };
}

/**
 * Redis pub/sub with one Redis channel per bus channel. A subscriber connection cannot run other
 * commands, hence two connections. ioredis sends commands in order on a connection, so a
 * SUBSCRIBE/UNSUBSCRIBE/SUBSCRIBE sequence for one channel ends subscribed, as the local handler
 * map says; it also re-subscribes every channel after a reconnection.
 */
export function createRedisBus(options: CreateBusOptions): Bus {
  const ownConnections =
    options.redis === undefined
      ? createRedisConnections({
          url: options.redisUrl as string,
          ...(options.log ? { log: options.log } : {}),
        })
      : undefined;
  const connections = options.redis ?? (ownConnections as RedisConnections);
  const prefix = options.prefix ?? connections.prefix('bus');
  // Bounded: a publish fails fast with redis.unavailable while Redis is down (see BoundedRedis).
  const publisher = connections.open();
  const subscriber = connections.open({ subscriber: true });
  const channels = new Map<string, Set<BusHandler>>();
  // A handler added while its channel's SUBSCRIBE is in flight waits for the same acknowledgement.
  const pending = new Map<string, Promise<unknown>>();
  subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
    const name = channel.toString('utf8').slice(prefix.length);
    deliver(channels.get(name), message.toString('utf8'), options.log);
  });
  return {
    kind: 'redis',
    async subscribe(channel, handler) {
      let handlers = channels.get(channel);
      if (handlers === undefined) {
        handlers = new Set([handler]);
        channels.set(channel, handlers);
        const subscribed = subscriber.subscribe(prefix + channel);
        pending.set(channel, subscribed);
        try {
          await subscribed;
        } finally {
          if (pending.get(channel) === subscribed) pending.delete(channel);
        }
        return;
      }
      handlers.add(handler);
      await pending.get(channel);
    },
    async unsubscribe(channel, handler) {
      const handlers = channels.get(channel);
      if (handlers === undefined) return;
      handlers.delete(handler);
      if (handlers.size === 0) {
        channels.delete(channel);
        // While Redis is down there is nothing to leave (a message for a channel without handlers
        // is dropped): waiting would hold up shutdown for the whole outage.
        if (subscriber.status === 'ready') await subscriber.unsubscribe(prefix + channel);
      }
    },
    async publish(channel, message) {
      await publisher.publish(prefix + channel, message);
    },
    channelCount: () => channels.size,
    async close() {
      channels.clear();
      await Promise.allSettled([publisher.quit(), subscriber.quit()]);
      await ownConnections?.close();
    },
  };
}
