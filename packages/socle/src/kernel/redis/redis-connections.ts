import { Command, Redis, type RedisOptions } from 'ioredis';
import { createOutageLog, type Logger } from '../log/index.js';
import { isRedisUnavailable, redisErrors } from './redis-errors.js';

/** What a Redis connection tells its owner about its health. */
interface HealthListener {
  down(connection: BoundedRedis, error: Error): void;
  up(connection: BoundedRedis): void;
}

/**
 * An ioredis client whose every command is bounded and fails fast while Redis is known down.
 *
 * - Each command gives up after `commandTimeout`.
 * - Once connected (or once a first connection failed), commands are no longer queued while the
 *   connection is down: they fail at once, and the client reconnects in the background.
 * - A command that times out on a connection that is still open (a frozen or overloaded Redis)
 *   marks Redis down: further commands fail at once instead of each waiting for the timeout, and a
 *   PING probes the server until it answers.
 * - Failures reach callers as `SocleError('redis.unavailable')` (503 with Retry-After).
 *
 * The check sits in `sendCommand`, which every command and pipeline goes through.
 */
export class BoundedRedis extends Redis {
  /** Set when a command timed out on an open connection; cleared by a probe or a reconnection. */
  #frozen = false;
  #lastError: Error | undefined;
  #probe: NodeJS.Timeout | undefined;
  #probeCommand: Command | undefined;
  #listener: HealthListener | undefined;

  /**
   * Called once, right after construction. A subscriber connection keeps queueing: its SUBSCRIBE
   * and UNSUBSCRIBE are the state it must reach once Redis is back, not requests anyone waits for.
   */
  reportHealthTo(listener: HealthListener, probeIntervalMs: number, subscriber: boolean): void {
    this.#listener = listener;
    this.on('ready', () => {
      // From the first connection on, nothing waits for a connection that is down.
      if (!subscriber) this.options.enableOfflineQueue = false;
      this.#frozen = false;
      this.#lastError = undefined;
      listener.up(this);
    });
    this.on('error', (error: Error) => this.#failed(error));
    this.on('close', () => {
      // A closed connection fails commands by itself; the freeze was this connection's.
      this.#frozen = false;
      this.#failed(new Error('Connection is closed'));
    });
    this.on('end', () => clearInterval(this.#probe));
    this.#probe = setInterval(() => this.#sendProbe(), probeIntervalMs);
    this.#probe.unref();
  }

  /**
   * True when commands are sent: connected and not frozen, or still making the first connection
   * without a failure yet (commands wait for it, each within its timeout).
   */
  available(): boolean {
    return !this.#frozen && (this.status === 'ready' || this.#lastError === undefined);
  }

  /** Why Redis counts as down, if it does. */
  lastError(): Error | undefined {
    return this.available()
      ? undefined
      : (this.#lastError ?? new Error(`Redis connection is ${this.status}`));
  }

  #failed(error: Error): void {
    this.#lastError = error;
    this.#listener?.down(this, error);
  }

  #sendProbe(): void {
    if (!this.#frozen || this.status !== 'ready' || this.#probeCommand !== undefined) return;
    const probe = new Command('ping');
    this.#probeCommand = probe;
    super.sendCommand(probe);
    probe.promise.then(
      () => {
        this.#probeCommand = undefined;
        if (!this.#frozen) return;
        this.#frozen = false;
        this.#lastError = undefined;
        this.#listener?.up(this);
      },
      () => {
        this.#probeCommand = undefined;
      },
    );
  }

  override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
    if (this.#frozen && this.status === 'ready') {
      command.reject(redisErrors.unavailable(this.#lastError));
      return command.promise;
    }
    super.sendCommand(command, stream);
    const mapped = command.promise.catch((error: unknown) => {
      if (!isRedisUnavailable(error)) throw error;
      if (this.status === 'ready' && /^Command timed out/.test((error as Error).message)) {
        this.#frozen = true;
        this.#failed(error as Error);
      }
      throw redisErrors.unavailable(error);
    });
    // Callers that drop the result (ioredis's own resubscription, pipelines) must not leave an
    // unhandled rejection behind; callers that await it still get the error.
    mapped.catch(() => undefined);
    return mapped;
  }
}

export interface RedisConnectionsOptions {
  /** `redis://…` or `rediss://…`; may carry a password, so it is never logged. */
  readonly url: string;
  /** Prefix of every key and channel (`<namespace>:rt:…`): deployments sharing a Redis differ here. */
  readonly namespace?: string;
  /** Longest one command may take (`REDIS_COMMAND_TIMEOUT_MS`). */
  readonly commandTimeoutMs?: number;
  readonly log?: Logger;
  /** What the outage means for this process, for its one log line. */
  readonly consequence?: string;
}

/**
 * The Redis connections of one process, all made here with the same bounds and namespace (the
 * rate limiter's, the bus's publisher and subscriber, the realtime state), and their health as one.
 */
export interface RedisConnections {
  readonly namespace: string;
  /** The prefix of an area's keys and channels: `prefix('rt')` is `socle:rt:` by default. */
  prefix(area: string): string;
  /**
   * A new bounded connection, closed by its user or at `close()`. A `subscriber` connection (pub/sub)
   * has no command timeout and queues while Redis is down: ioredis subscribes again on reconnection.
   */
  open(options?: { readonly subscriber?: boolean }): BoundedRedis;
  /** Why Redis is not usable (for `/readyz`), or undefined when a PING answered in time. */
  check(): Promise<string | undefined>;
  close(): Promise<void>;
}

export const DEFAULT_REDIS_NAMESPACE = 'socle';
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 1000;

/**
 * @example
 * const redis = createRedisConnections({ url: config.redisUrl, namespace: config.redisNamespace, log });
 * const client = redis.open();
 * await client.set(`${redis.prefix('quiz')}room:1`, 'open');
 */
export function createRedisConnections(options: RedisConnectionsOptions): RedisConnections {
  const namespace = options.namespace ?? DEFAULT_REDIS_NAMESPACE;
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
  const connections = new Set<BoundedRedis>();
  const down = new Set<BoundedRedis>();
  const outage =
    options.log === undefined
      ? undefined
      : createOutageLog(
          options.log,
          'Redis',
          options.consequence ??
            'realtime calls answer 503 redis.unavailable and rate limits count per process',
        );
  const listener: HealthListener = {
    down(connection, error) {
      if (!connections.has(connection)) return;
      down.add(connection);
      outage?.down(error);
    },
    up(connection) {
      down.delete(connection);
      if (down.size === 0) outage?.up();
    },
  };
  const clientOptions = {
    lazyConnect: true,
    // Queue (each command bounded by its timeout) only until the first connection: see BoundedRedis.
    enableOfflineQueue: true,
    // A command in flight when the connection drops fails instead of being replayed later.
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1000),
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2000),
  } satisfies RedisOptions;
  let health: BoundedRedis | undefined;
  const open = ({ subscriber = false } = {}) => {
    const client = new BoundedRedis(
      options.url,
      subscriber
        ? { ...clientOptions, commandTimeout: undefined, maxRetriesPerRequest: null }
        : clientOptions,
    );
    connections.add(client);
    client.reportHealthTo(listener, Math.max(commandTimeoutMs, 250), subscriber);
    client.on('end', () => {
      connections.delete(client);
      down.delete(client);
    });
    client.connect().catch(() => undefined);
    return client;
  };
  return {
    namespace,
    prefix: (area) => `${namespace}:${area}:`,
    open,
    async check() {
      for (const client of connections) {
        const error = client.lastError();
        if (error !== undefined) return `unreachable: ${error.message}`;
      }
      health ??= open();
      try {
        await health.ping();
        return undefined;
      } catch (error) {
        const cause = (error as Error).cause;
        return `unreachable: ${cause instanceof Error ? cause.message : (error as Error).message}`;
      }
    },
    async close() {
      await Promise.allSettled(
        [...connections].map((client) =>
          client.status === 'ready' ? client.quit() : Promise.resolve(client.disconnect()),
        ),
      );
      connections.clear();
    },
  };
}
