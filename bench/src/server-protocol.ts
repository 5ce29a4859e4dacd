/**
 * How the harness and a server child process talk: settings go down in one environment variable,
 * messages travel over the IPC channel of `child_process.spawn`.
 */

/** Where a scenario's data lives: the embedded PGlite or a Postgres server. */
export type BenchDialect = 'postgres' | 'pglite';

/** What every server child needs to start, the same for Socle and its baseline. */
export interface ServerSettings {
  readonly dialect: BenchDialect;
  /** Postgres database of this run; undefined on PGlite (each child has its own, in memory). */
  readonly databaseUrl: string | undefined;
  /** Connections in the Postgres pool, the same on both sides (Socle's default). */
  readonly poolMax: number;
  /**
   * Several server processes on one port (SO_REUSEPORT): the port they share, and the Redis that
   * joins them. Unset: a free port of the child's own, no Redis.
   */
  readonly sharedPort?: number;
  readonly redisUrl?: string;
  /** Where the configured realtime app's webhooks go (the `realtime-burst` receiver). */
  readonly webhookUrl?: string;
  /** `DATABASE_REPLICA_URLS` of the server (the `fleet` scenario's streaming replica). */
  readonly replicaUrls?: readonly string[];
}

/** Environment variable carrying the JSON of {@link ServerSettings}. */
export const SERVER_SETTINGS_ENV = 'BENCH_SERVER_SETTINGS';

/** Headers every request of the load and the probe carries, e.g. an access token. */
export type RequestHeaders = Readonly<Record<string, string>>;

/**
 * Sent by the child. `ready` may carry `requestHeaders` the server needs on every request (an
 * access token made at start, the organization it acts in); the harness adds them to the probe and
 * to every request of that server's load.
 */
export type ChildMessage =
  | { readonly type: 'ready'; readonly url: string; readonly requestHeaders?: RequestHeaders }
  | { readonly type: 'profile-written'; readonly path: string };

/** Sent by the harness. `start-profile`/`stop-profile` bracket the measured run only. */
export type ParentMessage =
  | { readonly type: 'start-profile' }
  | { readonly type: 'stop-profile'; readonly path: string };

function isRequestHeaders(value: unknown): value is RequestHeaders {
  return (
    value !== null &&
    typeof value === 'object' &&
    Object.values(value as Record<string, unknown>).every((header) => typeof header === 'string')
  );
}

export function isChildMessage(value: unknown): value is ChildMessage {
  if (value === null || typeof value !== 'object') return false;
  const message = value as Record<string, unknown>;
  return (
    (message.type === 'ready' &&
      typeof message.url === 'string' &&
      (message.requestHeaders === undefined || isRequestHeaders(message.requestHeaders))) ||
    (message.type === 'profile-written' && typeof message.path === 'string')
  );
}

export function isParentMessage(value: unknown): value is ParentMessage {
  if (value === null || typeof value !== 'object') return false;
  const message = value as Record<string, unknown>;
  return (
    message.type === 'start-profile' || (message.type === 'stop-profile' && typeof message.path === 'string')
  );
}
