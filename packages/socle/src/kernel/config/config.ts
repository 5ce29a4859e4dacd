import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { type FieldError, SocleError } from '../errors/index.js';
import {
  boolean,
  integer,
  list,
  oneOf,
  type RawValue,
  type SettingParser,
  secretKey,
  secretKeyList,
  showRawValue as show,
  text,
  url,
} from './parsers.js';
import {
  fileKeyOf,
  isDeclaredFileKey,
  type SettingDefinition,
  type SettingsOwner,
  settingErrors,
} from './settings.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

/** Socle's configuration, parsed once at start and frozen. */
export interface Config {
  /** TCP port of the HTTP server; 0 picks a free one. */
  readonly port: number;
  readonly host: string;
  /**
   * Processes `socle start` runs on this machine, all listening on HOST:PORT (SO_REUSEPORT); above 1
   * it supervises them and needs `databaseUrl` and `redisUrl`. `auto` is resolved when parsed.
   */
  readonly processes: number;
  /** `postgres://…` switches from embedded PGlite to a Postgres pool. */
  readonly databaseUrl: string | undefined;
  readonly databasePoolMax: number;
  readonly databaseConnectTimeoutMs: number;
  /**
   * Load shedding: a request whose first lease of a database session finds this many callers
   * already queued for the request pool is answered 503 `db.overloaded` at once; 0 never sheds.
   */
  readonly databasePoolQueueMax: number;
  /** Name statements that carry parameters so Postgres plans them once per connection. */
  readonly databasePreparedStatements: boolean;
  /** Role application sessions switch to (`SET ROLE`): it owns no table, so row-level security applies. */
  readonly databaseAppRole: string;
  /**
   * `redis://…` or `rediss://…` shares rate limits (and, later, fan-out) across nodes; unset keeps
   * them in process. May carry a password: never log it.
   */
  readonly redisUrl: string | undefined;
  // Fault bounds (slow clients, database and Redis outages) and the Redis namespace.
  /**
   * Longest a client may take to send a whole request, headers and body (Node's `requestTimeout`);
   * past it the connection gets 408 and is closed. Bounds slow-body (slowloris) connections.
   */
  readonly httpRequestTimeoutMs: number;
  /** Longest a client may take to send the request headers (Node's `headersTimeout`). */
  readonly httpHeadersTimeoutMs: number;
  /** How long an idle keep-alive connection stays open between requests. */
  readonly httpKeepAliveTimeoutMs: number;
  /**
   * Open connections (HTTP and WebSocket) one client address may hold; further ones are closed
   * at once and counted in `socle_http_connections_refused_total`. 0: no cap. Not applied with
   * `trustProxy`: every connection then comes from the proxy, which limits clients itself.
   */
  readonly httpMaxConnectionsPerIp: number;
  /**
   * Longest one SQL statement may run (Postgres `statement_timeout`); the client gives up a little
   * later on a server that does not answer at all, and the request gets 503 `db.unavailable`.
   */
  readonly databaseStatementTimeoutMs: number;
  /**
   * Postgres only: connections of the pool that background work (job handlers: webhooks, mail)
   * uses, apart from the request pool, so a backlog of jobs cannot starve requests or readiness.
   */
  readonly databaseBackgroundPoolMax: number;
  /**
   * Streaming replicas of `databaseUrl` (`postgres://…`, comma-separated). Reads a module marks as
   * allowed to be stale (`db.replica`) go to one of them when it has replayed the caller's last
   * write; everything else, and every read when none qualifies, goes to the primary.
   */
  readonly databaseReplicaUrls: readonly string[];
  /** A replica further behind the primary than this is taken out of rotation until it catches up. */
  readonly databaseReplicaMaxLagMs: number;
  /** How often each replica's replay position (and so its lag and health) is read. */
  readonly databaseReplicaCheckIntervalMs: number;
  /**
   * Tenant shards (`SHARDS=eu1=postgres://…,eu2=postgres://…`): databases that hold the data of
   * the tenants the directory (`socle.tenant_shards` on `databaseUrl`) places on them. Empty: one
   * database, no directory, nothing looked up. See docs/fleet.md.
   */
  readonly shards: readonly Shard[];
  /**
   * How long a node reuses a tenant's directory entry before reading it again: the longest a node
   * may still send a moved tenant's statements to its old shard (they are refused there).
   */
  readonly shardsDirectoryCacheMs: number;
  /**
   * Prefix of every Redis key and pub/sub channel (`<namespace>:rt:…`, `<namespace>:rate-limit:…`),
   * so deployments sharing one Redis never see each other's state.
   */
  readonly redisNamespace: string;
  /** Longest one Redis command may take; past it Redis counts as down until a probe answers. */
  readonly redisCommandTimeoutMs: number;
  /**
   * Base64 32-byte key that encrypts stored secrets (TOTP seeds, signing keys). Required with
   * `databaseUrl`; embedded mode generates one in `<dataDir>/secret-key` when unset. Never log it.
   */
  readonly secretKey: string | undefined;
  /** Keys used before the current one: values they sealed still open and get resealed. */
  readonly previousSecretKeys: readonly string[];
  /**
   * Where blobs (files' bytes) live: unset, the local directory `<dataDir>/blobs`; `file:///path`,
   * that directory; `s3://bucket[/prefix]?endpoint=…&region=…&forcePathStyle=true`, an S3-compatible
   * store, with credentials from the usual AWS variables (never in the URL).
   */
  readonly blobUrl: string | undefined;
  /** Directory of embedded state (PGlite data lives in `<dataDir>/data`). */
  readonly dataDir: string;
  readonly logLevel: LogLevel;
  readonly logFormat: 'json' | 'pretty' | 'auto';
  readonly shutdownTimeoutMs: number;
  /**
   * Behind a load balancer: on SIGTERM, how long readiness fails while requests are still served
   * normally, so the balancer's health check takes the node out before it stops accepting
   * connections (a rolling deploy then loses nothing). 0: stop accepting at once.
   */
  readonly shutdownDrainDelayMs: number;
  /** Job queues this process works (`high`, `default`, `low`); empty: enqueue only. */
  readonly jobsQueues: readonly string[];
  /** Fetch loops per worked queue in this process. */
  readonly jobsConcurrency: number;
  /** Jobs one fetch loop claims per round trip, and runs at once. */
  readonly jobsBatchSize: number;
  /** Poll interval of an idle worker when LISTEN/NOTIFY is unavailable (see `jobsIdlePollIntervalMs`). */
  readonly jobsPollIntervalMs: number;
  /**
   * Poll interval of an idle worker while LISTEN/NOTIFY works. A job enqueued due now wakes
   * every node's workers at once (NOTIFY); a job that comes due later (a delay, a retry's
   * backoff, a postponement) is woken for at its time by the node that enqueued, ran or failed
   * it. This poll is the backstop: the longest such a job waits past its time when that node
   * works none of its queue or stopped. At least `jobsPollIntervalMs`.
   */
  readonly jobsIdlePollIntervalMs: number;
  /** How often expired leases are reclaimed and cron schedules checked. */
  readonly jobsSuperviseIntervalMs: number;
  /** Postgres only: connections of the job engine's own pool (plus one for LISTEN). */
  readonly jobsPoolMax: number;
  readonly bodyLimitBytes: number;
  /** Allowed CORS origins; empty disables CORS, `*` allows any origin. */
  readonly corsOrigins: readonly string[];
  /**
   * Which `X-Forwarded-For` hops to believe for the client IP (Fastify's `trustProxy`): `false`
   * none, `true` all (the left-most address), a number of hops, or proxy addresses/CIDRs.
   */
  readonly trustProxy: boolean | number | readonly string[];
  readonly migrateOnStart: boolean;
  /** Extra modules to load (import specifiers, resolved from `baseDir`). */
  readonly modules: readonly string[];
  /** Directory that relative paths in the configuration are resolved from. */
  readonly baseDir: string;
  /**
   * Values of the modules' own settings (declared with `defineSettings`), by module name: parsed
   * by `loadConfig` for the `modules` it is given; tests and programmatic callers may set some here
   * (they win over the environment). A module reads its own as `context.settings`.
   */
  readonly moduleSettings: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

type Parser<T> = SettingParser<T>;

/** One tenant shard: its name in the directory and its database. */
export interface Shard {
  /** lower-case letters, digits, `_` and `-`; `primary` names `databaseUrl` and is reserved. */
  readonly name: string;
  readonly url: string;
  /**
   * Streaming replicas of this shard (`SHARDS=eu1=postgres://…|postgres://replica…`): its tenants'
   * `db.replica` reads go there, under the same read-your-writes and lag rules as
   * `databaseReplicaUrls` for the primary's tenants. Default none.
   */
  readonly replicaUrls?: readonly string[];
}

interface Setting<K extends keyof Config> {
  readonly key: K;
  readonly env: string;
  readonly description: string;
  readonly defaultValue: Config[K];
  readonly parse: Parser<Config[K]>;
  /** A credential, or a URL that may carry one: never shown (see `describeConfiguration`). */
  readonly secret?: boolean;
}

const MAX_PROCESSES = 1024;

/** A process count, or `auto`: one per core this process may use (`os.availableParallelism()`). */
const processCount: Parser<number> = (raw) => {
  if (typeof raw === 'string' && raw.trim().toLowerCase() === 'auto')
    return { ok: true, value: availableParallelism() };
  const parsed = integer(1, MAX_PROCESSES)(raw);
  return parsed.ok
    ? parsed
    : { ok: false, message: `must be auto or an integer from 1 to ${MAX_PROCESSES}, got ${show(raw)}` };
};

/** `TRUST_PROXY`: a boolean, a count of hops (`1`: the address the nearest proxy added), or addresses. */
const trustProxyValue: Parser<boolean | number | readonly string[]> = (raw) => {
  if (typeof raw === 'number' || (typeof raw === 'string' && /^\s*\d+\s*$/.test(raw))) {
    const hops = Number(raw);
    return Number.isInteger(hops) && hops >= 0 && hops <= 100
      ? { ok: true, value: hops }
      : { ok: false, message: `must be a number of proxy hops from 0 to 100, got ${show(raw)}` };
  }
  const flag = boolean(raw);
  if (flag.ok) return flag;
  const addresses = list(raw);
  const proxy = /^[0-9a-fA-F.:]+(\/\d{1,3})?$/;
  if (
    addresses.ok &&
    addresses.value.length > 0 &&
    addresses.value.every((item) => proxy.test(item) && isIP(item.split('/')[0] as string) !== 0)
  )
    return addresses;
  return {
    ok: false,
    message: `must be true, false, a number of proxy hops, or proxy addresses/CIDRs, got ${show(raw)}`,
  };
};

const jobQueues: Parser<readonly string[]> = (raw) => {
  const parsed = list(raw);
  if (!parsed.ok) return parsed;
  const unknown = parsed.value.filter((queue) => !['high', 'default', 'low'].includes(queue));
  if (unknown.length > 0) return { ok: false, message: `must list high, default or low, got ${show(raw)}` };
  return { ok: true, value: [...new Set(parsed.value)] };
};

const blobUrl: Parser<string | undefined> = (raw) => {
  if (typeof raw !== 'string') return { ok: false, message: 'must be an s3:// or file:// URL' };
  if (raw.trim() === '') return { ok: true, value: undefined };
  try {
    const url = new URL(raw.trim());
    if (url.protocol === 's3:' && url.hostname !== '' && url.username === '' && url.password === '')
      return { ok: true, value: raw.trim() };
    if (url.protocol === 'file:' && url.pathname !== '/') return { ok: true, value: raw.trim() };
  } catch {
    // reported below
  }
  return {
    ok: false,
    message:
      'must be s3://bucket[/prefix]?endpoint=…&region=…&forcePathStyle=true (credentials in AWS_* variables, not the URL) or file:///directory',
  };
};

/** `DATABASE_REPLICA_URLS`: postgres URLs, never echoed (they may carry a password). */
const replicaUrls: Parser<readonly string[]> = (raw) => {
  const parsed = list(raw);
  if (!parsed.ok) return parsed;
  const postgresUrl = url(['postgres:', 'postgresql:'], 'a postgres:// URL', { requireHost: false });
  const bad = parsed.value.findIndex((item) => !postgresUrl(item).ok);
  return bad === -1
    ? parsed
    : { ok: false, message: `must be comma-separated postgres:// URLs; item ${bad + 1} is not one` };
};

const SHARD_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/**
 * `SHARDS`: `name=postgres://…` items, comma-separated, each optionally followed by its replicas'
 * URLs after `|` (`eu1=postgres://db-eu1/socle|postgres://db-eu1-r1/socle`; `|` never appears
 * unescaped in a URL); the URLs are never echoed.
 */
const shardList: Parser<readonly Shard[]> = (raw) => {
  const parsed = list(raw);
  if (!parsed.ok) return parsed;
  const postgresUrl = url(['postgres:', 'postgresql:'], 'a postgres:// URL', { requireHost: false });
  const shards: Shard[] = [];
  for (const [index, item] of parsed.value.entries()) {
    const separator = item.indexOf('=');
    const name = separator === -1 ? '' : item.slice(0, separator).trim();
    const [shardUrl = '', ...replicaUrls] = (separator === -1 ? '' : item.slice(separator + 1))
      .split('|')
      .map((part) => part.trim());
    if (!SHARD_NAME.test(name) || name === 'primary')
      return {
        ok: false,
        message: `must be comma-separated name=postgres://… items; item ${index + 1} has no valid name (lower-case letters, digits, _ and -, not "primary")`,
      };
    if (shardUrl === '' || !postgresUrl(shardUrl).ok)
      return { ok: false, message: `item ${index + 1} (${name}) is not name=postgres://…` };
    const badReplica = replicaUrls.findIndex((replicaUrl) => !postgresUrl(replicaUrl).ok);
    if (badReplica !== -1)
      return {
        ok: false,
        message: `item ${index + 1} (${name}): replica ${badReplica + 1} after | is not a postgres:// URL`,
      };
    if (shards.some((shard) => shard.name === name))
      return { ok: false, message: `names shard ${name} twice` };
    shards.push({ name, url: shardUrl, ...(replicaUrls.length === 0 ? {} : { replicaUrls }) });
  }
  return { ok: true, value: shards };
};

/** Every setting Socle reads, in the order `socle help config` prints them. */
const SETTINGS = [
  {
    key: 'port',
    env: 'PORT',
    description: 'HTTP port (0 picks a free port)',
    defaultValue: 8080,
    parse: integer(0, 65535),
  },
  {
    key: 'host',
    env: 'HOST',
    description: 'Address the HTTP server binds',
    defaultValue: '0.0.0.0',
    parse: text(),
  },
  {
    key: 'processes',
    env: 'PROCESSES',
    description:
      'Processes socle start runs, sharing HOST:PORT (SO_REUSEPORT); auto: one per core. Above 1: needs DATABASE_URL, REDIS_URL and a fixed PORT',
    defaultValue: 1,
    parse: processCount,
  },
  {
    key: 'databaseUrl',
    secret: true,
    env: 'DATABASE_URL',
    description: 'Postgres URL; unset runs embedded PGlite',
    defaultValue: undefined,
    // A Unix-socket URL (`postgres:///app?host=/run/postgresql`) has no host.
    parse: url(['postgres:', 'postgresql:'], 'a postgres:// or postgresql:// URL', { requireHost: false }),
  },
  {
    key: 'databasePoolMax',
    env: 'DATABASE_POOL_MAX',
    description: 'Connections in the Postgres pool',
    defaultValue: 10,
    parse: integer(1, 1000),
  },
  {
    key: 'databasePoolQueueMax',
    env: 'DATABASE_POOL_QUEUE_MAX',
    description:
      'Requests queued for a database session from which new requests are answered 503 db.overloaded at once (load shedding); 0: never',
    defaultValue: 200,
    parse: integer(0, 1_000_000),
  },
  {
    key: 'databaseConnectTimeoutMs',
    env: 'DATABASE_CONNECT_TIMEOUT_MS',
    description: 'How long to wait for a Postgres connection',
    defaultValue: 5000,
    parse: integer(1, 600_000),
  },
  {
    key: 'databasePreparedStatements',
    env: 'DATABASE_PREPARED_STATEMENTS',
    description:
      'Use named prepared statements (turn off behind a pooler without prepared-statement support)',
    defaultValue: true,
    parse: boolean,
  },
  {
    key: 'databaseAppRole',
    env: 'DATABASE_APP_ROLE',
    description: 'Role requests run as (created by migrations; owns no table, so row-level security applies)',
    defaultValue: 'socle_app',
    parse: text(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower_snake_case Postgres role name'),
  },
  {
    key: 'redisUrl',
    secret: true,
    env: 'REDIS_URL',
    description:
      'Redis URL; shares rate limits, realtime fan-out and presence across nodes. Unset keeps them in process',
    defaultValue: undefined,
    parse: url(['redis:', 'rediss:'], 'a redis:// or rediss:// URL'),
  },
  // Fault bounds (slow clients, database and Redis outages) and the Redis namespace.
  {
    key: 'httpRequestTimeoutMs',
    env: 'HTTP_REQUEST_TIMEOUT_MS',
    description:
      'Longest a client may take to send a whole request (headers and body); past it: 408 and the connection is closed',
    defaultValue: 60_000,
    parse: integer(100, 3_600_000),
  },
  {
    key: 'httpHeadersTimeoutMs',
    env: 'HTTP_HEADERS_TIMEOUT_MS',
    description: 'Longest a client may take to send the request headers',
    defaultValue: 10_000,
    parse: integer(100, 600_000),
  },
  {
    key: 'httpKeepAliveTimeoutMs',
    env: 'HTTP_KEEP_ALIVE_TIMEOUT_MS',
    description: 'How long an idle keep-alive connection stays open (keep it above the load balancer’s)',
    defaultValue: 72_000,
    parse: integer(100, 3_600_000),
  },
  {
    key: 'httpMaxConnectionsPerIp',
    env: 'HTTP_MAX_CONNECTIONS_PER_IP',
    description:
      'Open connections (HTTP and WebSocket) one client address may hold; more are closed at once. 0: no cap; not applied with TRUST_PROXY (every connection then comes from the proxy)',
    defaultValue: 1000,
    parse: integer(0, 1_000_000),
  },
  {
    key: 'databaseStatementTimeoutMs',
    env: 'DATABASE_STATEMENT_TIMEOUT_MS',
    description:
      'Longest one SQL statement may run (statement_timeout; migrations are exempt); a request whose statement times out gets 503 db.unavailable',
    defaultValue: 15_000,
    parse: integer(100, 3_600_000),
  },
  {
    key: 'databaseBackgroundPoolMax',
    env: 'DATABASE_BACKGROUND_POOL_MAX',
    description:
      'Postgres only: connections of the pool job handlers use (webhooks, mail), apart from the request pool',
    defaultValue: 4,
    parse: integer(1, 1000),
  },
  {
    key: 'databaseReplicaUrls',
    secret: true,
    env: 'DATABASE_REPLICA_URLS',
    description:
      'Postgres streaming replicas of DATABASE_URL, comma-separated: reads marked as allowed to be stale go to one that has replayed the caller’s last write',
    defaultValue: [],
    parse: replicaUrls,
  },
  {
    key: 'databaseReplicaMaxLagMs',
    env: 'DATABASE_REPLICA_MAX_LAG_MS',
    description: 'A replica further behind the primary than this is out of rotation until it catches up',
    defaultValue: 5000,
    parse: integer(0, 3_600_000),
  },
  {
    key: 'databaseReplicaCheckIntervalMs',
    env: 'DATABASE_REPLICA_CHECK_INTERVAL_MS',
    description: 'How often each replica’s replay position (its lag, whether it answers) is read',
    defaultValue: 1000,
    parse: integer(50, 600_000),
  },
  {
    key: 'shards',
    secret: true,
    env: 'SHARDS',
    description:
      'Tenant shards, name=postgres://… comma-separated (each optionally |postgres://… of its read replicas): each organization the directory places on one has its requests, jobs and commands run there (needs DATABASE_URL, the directory)',
    defaultValue: [],
    parse: shardList,
  },
  {
    key: 'shardsDirectoryCacheMs',
    env: 'SHARDS_DIRECTORY_CACHE_MS',
    description:
      'How long a node reuses a tenant’s shard before reading the directory again (a move waits twice this before cleaning the old shard)',
    defaultValue: 1000,
    parse: integer(0, 60_000),
  },
  {
    key: 'redisNamespace',
    env: 'REDIS_NAMESPACE',
    description:
      'Prefix of every Redis key and channel: give each deployment sharing one Redis its own (staging, production)',
    defaultValue: 'socle',
    parse: text(/^[A-Za-z0-9_.-]{1,64}$/, '1 to 64 letters, digits, _ . or -'),
  },
  {
    key: 'redisCommandTimeoutMs',
    env: 'REDIS_COMMAND_TIMEOUT_MS',
    description:
      'Longest one Redis command may take; past it Redis counts as down (503 redis.unavailable, rate limits per process) until it answers again',
    defaultValue: 1000,
    parse: integer(50, 60_000),
  },
  {
    key: 'secretKey',
    secret: true,
    env: 'SECRET_KEY',
    description:
      'Key encrypting stored secrets (base64 of 32 bytes; `openssl rand -base64 32`). Required with DATABASE_URL; embedded mode generates DATA_DIR/secret-key',
    defaultValue: undefined,
    parse: secretKey,
  },
  {
    key: 'previousSecretKeys',
    secret: true,
    env: 'SECRET_KEYS_PREVIOUS',
    description:
      'Comma-separated former SECRET_KEYs: still open old values, which are resealed with the current key',
    defaultValue: [],
    parse: secretKeyList,
  },
  {
    key: 'blobUrl',
    env: 'BLOB_URL',
    description:
      'Where file bytes live: unset, DATA_DIR/blobs; file:///path; s3://bucket[/prefix]?endpoint=…&region=…&forcePathStyle=true (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)',
    defaultValue: undefined,
    parse: blobUrl,
  },
  {
    key: 'dataDir',
    env: 'DATA_DIR',
    description: 'Directory of embedded data',
    defaultValue: '.socle',
    parse: text(),
  },
  {
    key: 'logLevel',
    env: 'LOG_LEVEL',
    description: 'Log level',
    defaultValue: 'info',
    parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  },
  {
    key: 'logFormat',
    env: 'LOG_FORMAT',
    description: 'json, pretty, or auto (pretty when stdout is a terminal)',
    defaultValue: 'auto',
    parse: oneOf('json', 'pretty', 'auto'),
  },
  {
    key: 'shutdownTimeoutMs',
    env: 'SHUTDOWN_TIMEOUT_MS',
    description: 'Deadline for in-flight requests on SIGTERM/SIGINT',
    defaultValue: 10_000,
    parse: integer(0, 3_600_000),
  },
  {
    key: 'shutdownDrainDelayMs',
    env: 'SHUTDOWN_DRAIN_DELAY_MS',
    description:
      'On SIGTERM, how long /readyz fails while requests are still served, before the server stops accepting connections (behind a load balancer: longer than its health check takes to mark the node down)',
    defaultValue: 0,
    parse: integer(0, 600_000),
  },
  {
    key: 'jobsQueues',
    env: 'JOBS_QUEUES',
    description: 'Job queues this process works (high, default, low); empty: enqueue only (see socle worker)',
    defaultValue: ['high', 'default', 'low'],
    parse: jobQueues,
  },
  {
    key: 'jobsConcurrency',
    env: 'JOBS_CONCURRENCY',
    description: 'Fetch loops per worked job queue in this process',
    defaultValue: 2,
    parse: integer(1, 100),
  },
  {
    key: 'jobsBatchSize',
    env: 'JOBS_BATCH_SIZE',
    description: 'Jobs one fetch loop claims per round trip and runs at once',
    defaultValue: 50,
    parse: integer(2, 1000),
  },
  {
    key: 'jobsPollIntervalMs',
    env: 'JOBS_POLL_INTERVAL_MS',
    description: 'Poll interval of an idle job worker when LISTEN/NOTIFY is unavailable',
    defaultValue: 1000,
    parse: integer(500, 600_000),
  },
  {
    key: 'jobsIdlePollIntervalMs',
    env: 'JOBS_IDLE_POLL_INTERVAL_MS',
    description:
      'Poll interval of an idle job worker while LISTEN/NOTIFY works: the longest a job made due by another node (a delay, a retry) waits to be fetched',
    defaultValue: 10_000,
    parse: integer(500, 3_600_000),
  },
  {
    key: 'jobsSuperviseIntervalMs',
    env: 'JOBS_SUPERVISE_INTERVAL_MS',
    description: 'How often expired job leases are reclaimed and cron schedules checked',
    defaultValue: 30_000,
    parse: integer(1000, 3_600_000),
  },
  {
    key: 'jobsPoolMax',
    env: 'JOBS_POOL_MAX',
    description: 'Postgres only: connections of the job engine pool (plus one for LISTEN)',
    defaultValue: 4,
    parse: integer(1, 1000),
  },
  {
    key: 'bodyLimitBytes',
    env: 'BODY_LIMIT_BYTES',
    description: 'Largest accepted request body',
    defaultValue: 1_048_576,
    parse: integer(1, 1_073_741_824),
  },
  {
    key: 'corsOrigins',
    env: 'CORS_ORIGINS',
    description: 'Comma-separated allowed origins, * for any; empty disables CORS',
    defaultValue: [],
    parse: list,
  },
  {
    key: 'trustProxy',
    env: 'TRUST_PROXY',
    description:
      'Trust X-Forwarded-* headers (behind a load balancer): true, false, a number of proxy hops, or proxy addresses/CIDRs (comma-separated)',
    defaultValue: false,
    parse: trustProxyValue,
  },
  {
    key: 'migrateOnStart',
    env: 'MIGRATE_ON_START',
    description: 'Apply pending migrations when the server starts',
    defaultValue: true,
    parse: boolean,
  },
  {
    key: 'modules',
    env: 'SOCLE_MODULES',
    description: 'Comma-separated module import specifiers to load',
    defaultValue: [],
    parse: list,
  },
] as const satisfies readonly Setting<keyof Config>[];

/** One row of `socle help config`. */
export interface SettingDescription {
  readonly env: string;
  readonly fileKey: string;
  /** The module declaring it; undefined for the kernel's own. */
  readonly module: string | undefined;
  readonly description: string;
  readonly defaultValue: string;
}

/** What `socle help config` prints: the kernel's settings, then each module's, in module order. */
export function describeSettings(modules: readonly SettingsOwner[] = []): readonly SettingDescription[] {
  const show = (value: unknown) => JSON.stringify(value) ?? '(unset)';
  return [
    ...SETTINGS.map((setting) => ({
      env: setting.env,
      fileKey: setting.key,
      module: undefined,
      description: setting.description,
      defaultValue: show(setting.defaultValue),
    })),
    ...moduleSettingsOf(modules).map(({ module, definition }) => ({
      env: definition.env,
      fileKey: fileKeyOf(definition.env),
      module,
      description: definition.description,
      defaultValue: show(definition.defaultValue),
    })),
  ];
}

/** One setting as an operator's configuration page shows it (`GET /operator/configuration`). */
export interface ConfigurationEntry {
  readonly env: string;
  readonly fileKey: string;
  /** The module declaring it; undefined for the kernel's own. */
  readonly module: string | undefined;
  readonly description: string;
  /** A credential: its value is never shown. */
  readonly secret: boolean;
  /** Whether a value is in effect (a secret's too); false for an unset optional setting. */
  readonly set: boolean;
  /** Whether the value in effect is the default. */
  readonly isDefault: boolean;
  /** The value in effect as JSON text; null for a secret or an unset setting. */
  readonly value: string | null;
}

/**
 * Every setting of the kernel and of `modules` with the value in effect, secrets masked: a setting
 * declared `secret` (`setting.secret`, `setting.key`, `setting.url`, DATABASE_URL, REDIS_URL,
 * SECRET_KEY…) shows only whether it is set. For the operator's read-only configuration page.
 */
export function describeConfiguration(
  config: Config,
  modules: readonly SettingsOwner[],
  moduleSettings: Readonly<Record<string, Readonly<Record<string, unknown>>>>,
): readonly ConfigurationEntry[] {
  const entry = (
    base: { env: string; fileKey: string; module: string | undefined; description: string },
    secret: boolean,
    value: unknown,
    defaultValue: unknown,
  ): ConfigurationEntry => {
    const set = value !== undefined && !(Array.isArray(value) && value.length === 0 && secret);
    const shown = JSON.stringify(value) ?? null;
    return {
      ...base,
      secret,
      set,
      isDefault: shown === (JSON.stringify(defaultValue) ?? null),
      value: secret || value === undefined ? null : shown,
    };
  };
  return [
    ...SETTINGS.map((setting) =>
      entry(
        { env: setting.env, fileKey: setting.key, module: undefined, description: setting.description },
        'secret' in setting && setting.secret === true,
        config[setting.key],
        setting.defaultValue,
      ),
    ),
    ...moduleSettingsOf(modules).map(({ module, key, definition }) =>
      entry(
        {
          env: definition.env,
          fileKey: fileKeyOf(definition.env),
          module,
          description: definition.description,
        },
        definition.secret === true,
        moduleSettings[module]?.[key] ?? definition.defaultValue,
        definition.defaultValue,
      ),
    ),
  ];
}

export interface LoadConfigOptions {
  /** Environment to read; pass `process.env` from the entry point only. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Path of a JSON config file. When omitted, `socle.config.json` in `cwd` is read if it exists;
   * `false` reads no file.
   */
  readonly configFile?: string | false;
  readonly cwd?: string;
  /**
   * Settings given as command-line flags (`socle start --processes 4`): parsed like the
   * environment's values and winning over them; a bad one is reported under its flag's name.
   */
  readonly flags?: Partial<Record<keyof Config, string>>;
  /**
   * Modules whose settings are parsed in the same pass, so a bad value of any of them is reported
   * with the kernel's in one message (the CLI passes every module it runs). A module not given
   * here has its settings read by `createSocle`, from the same sources.
   */
  readonly modules?: readonly SettingsOwner[];
  /** Values that win over file and environment (used by tests and programmatic callers). */
  readonly overrides?: Partial<Config>;
}

export const CONFIG_FILE_NAME = 'socle.config.json';

/** Keys `LoadConfigOptions.overrides` may set. */
const OVERRIDABLE = new Set<string>([...SETTINGS.map((setting) => setting.key), 'baseDir', 'moduleSettings']);

/** Where a configuration's values came from: kept so modules' settings are read from the same place. */
interface ConfigSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly file: ConfigFile;
  readonly flags: Readonly<Record<string, string | undefined>>;
}

// A symbol, so the sources (the whole environment) never show up when a configuration is logged
// or serialized.
const SOURCES = Symbol('socle.configSources');
type WithSources = Config & { readonly [SOURCES]?: ConfigSources };

/**
 * Parses the configuration once: defaults, then `socle.config.json`, then the environment, then
 * command-line flags; the kernel's settings and those of `options.modules`.
 * Every invalid value is reported in one `config.invalid` error; the result is frozen.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const problems: FieldError[] = [];
  const sources: ConfigSources = {
    env: options.env ?? {},
    file: readConfigFile(options.configFile, cwd, problems),
    flags: options.flags ?? {},
  };
  // A key is known if the kernel or any module loaded in this process declares it (a module not
  // given in `options.modules` has its settings read later by createSocle).
  const known = new Set<string>([
    ...SETTINGS.map((setting) => setting.key),
    ...(options.modules ?? []).flatMap((module) =>
      specOf(module).map(([, definition]) => fileKeyOf(definition.env)),
    ),
  ]);
  for (const key of Object.keys(sources.file.values)) {
    if (!known.has(key) && !isDeclaredFileKey(key))
      problems.push({ field: `${sources.file.label}:${key}`, message: 'is not a known setting' });
  }
  const values: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const value = readSetting(sources, setting, setting.key, problems);
    if (value !== NO_VALUE) values[setting.key] = value;
  }
  const moduleSettings = parseModuleSettings(sources, options.modules, problems);
  const overrides = options.overrides ?? {};
  // A key that is not the kernel's (a module's setting, a typo) would be ignored without a word:
  // module values go under `moduleSettings`.
  for (const key of Object.keys(overrides)) {
    if (!OVERRIDABLE.has(key))
      problems.push({
        field: `overrides.${key}`,
        message: 'is not a kernel setting (a module’s settings go under moduleSettings.<module>)',
      });
  }
  if (problems.length > 0) throw invalidConfig(problems);
  return Object.freeze({
    ...values,
    baseDir: sources.file.baseDir,
    ...overrides,
    moduleSettings: Object.freeze(mergeModuleSettings(moduleSettings, overrides.moduleSettings ?? {})),
    [SOURCES]: sources,
  } as WithSources);
}

/**
 * The modules a configuration asks for (`SOCLE_MODULES` or the file's `modules`) and the directory
 * relative ones start from, read before the whole configuration: the CLI loads them first, so
 * `loadConfig` then checks their settings with all the others. A bad value reads as none here;
 * `loadConfig` reports it.
 */
export function readModuleSpecifiers(options: Pick<LoadConfigOptions, 'env' | 'configFile' | 'cwd'> = {}): {
  specifiers: readonly string[];
  baseDir: string;
} {
  const file = readConfigFile(options.configFile, options.cwd ?? process.cwd(), []);
  const raw = options.env?.SOCLE_MODULES ?? (file.values.modules as RawValue | undefined);
  const parsed = raw === undefined ? undefined : list(raw);
  return { specifiers: parsed?.ok ? parsed.value : [], baseDir: file.baseDir };
}

/**
 * The values of each module's settings, for `createSocle`: read from the sources `loadConfig`
 * read (defaults only for a configuration built by hand), under the values `config.moduleSettings`
 * already holds (parsed, or set by a test). Every bad value is reported in one `config.invalid`.
 */
export function resolveModuleSettings(
  config: Config,
  modules: readonly SettingsOwner[],
): Readonly<Record<string, Readonly<Record<string, unknown>>>> {
  const sources = (config as WithSources)[SOURCES] ?? {
    env: {},
    file: { values: {}, label: CONFIG_FILE_NAME, baseDir: config.baseDir },
    flags: {},
  };
  const problems: FieldError[] = [];
  const parsed = parseModuleSettings(sources, modules, problems);
  problems.push(...undeclaredModuleSettings(config.moduleSettings ?? {}, modules));
  if (problems.length > 0) throw invalidConfig(problems);
  return Object.freeze(mergeModuleSettings(parsed, config.moduleSettings ?? {}));
}

/**
 * Values given for a module that is not loaded, or for a setting its module does not declare:
 * nothing would read them, so a misplaced key (a setting put under the wrong module, a typo)
 * would otherwise change nothing without a word.
 */
function undeclaredModuleSettings(
  given: Readonly<Record<string, Readonly<Record<string, unknown>>>>,
  modules: readonly SettingsOwner[],
): FieldError[] {
  const problems: FieldError[] = [];
  for (const [name, values] of Object.entries(given)) {
    const keys = Object.keys(values);
    const module = modules.find((candidate) => candidate.name === name);
    if (module === undefined) {
      if (keys.length > 0)
        problems.push({
          field: `moduleSettings.${name}`,
          message: `is not a loaded module (loaded: ${modules.map((each) => each.name).join(', ') || 'none'})`,
        });
      continue;
    }
    const declared = specOf(module).map(([key]) => key);
    for (const key of keys) {
      if (declared.includes(key)) continue;
      problems.push({
        field: `moduleSettings.${name}.${key}`,
        message:
          declared.length === 0
            ? `is not a setting of module ${name} (it declares none)`
            : `is not a setting of module ${name} (its settings: ${declared.join(', ')})`,
      });
    }
  }
  return problems;
}

function mergeModuleSettings(
  parsed: Record<string, Record<string, unknown>>,
  given: Readonly<Record<string, Readonly<Record<string, unknown>>>>,
): Record<string, Readonly<Record<string, unknown>>> {
  const merged: Record<string, Readonly<Record<string, unknown>>> = {};
  for (const name of new Set([...Object.keys(parsed), ...Object.keys(given)]))
    merged[name] = Object.freeze({ ...parsed[name], ...given[name] });
  return merged;
}

const specOf = (module: SettingsOwner) =>
  Object.entries(module.settings ?? {}) as [string, SettingDefinition<unknown>][];

/** Every module setting, checked for one owner per variable. */
function moduleSettingsOf(
  modules: readonly SettingsOwner[],
): { module: string; key: string; definition: SettingDefinition<unknown> }[] {
  const owners = new Map<string, string>(SETTINGS.map((setting) => [setting.env, 'the kernel']));
  const all: { module: string; key: string; definition: SettingDefinition<unknown> }[] = [];
  for (const module of modules) {
    for (const [key, definition] of specOf(module)) {
      const owner = owners.get(definition.env);
      if (owner !== undefined)
        throw settingErrors.duplicate(definition.env, [owner, `module ${module.name}`]);
      owners.set(definition.env, `module ${module.name}`);
      all.push({ module: module.name, key, definition });
    }
  }
  return all;
}

/** Parses the settings of `modules`. */
function parseModuleSettings(
  sources: ConfigSources,
  modules: readonly SettingsOwner[] | undefined,
  problems: FieldError[],
): Record<string, Record<string, unknown>> {
  const settings = moduleSettingsOf(modules ?? []);
  const values: Record<string, Record<string, unknown>> = {};
  for (const module of modules ?? []) if (module.settings !== undefined) values[module.name] = {};
  for (const { module, key, definition } of settings) {
    const value = readSetting(sources, definition, fileKeyOf(definition.env), problems);
    if (value !== NO_VALUE) (values[module] as Record<string, unknown>)[key] = value;
  }
  return values;
}

const NO_VALUE = Symbol('no value');

/** One setting's value: the flag, else the environment, else the file, else the default. */
function readSetting(
  sources: ConfigSources,
  setting: Pick<SettingDefinition<unknown>, 'env' | 'defaultValue' | 'parse'>,
  fileKey: string,
  problems: FieldError[],
): unknown {
  const fromFlag = sources.flags[fileKey];
  const fromEnv = sources.env[setting.env];
  const fromFile = sources.file.values[fileKey] as RawValue | undefined;
  const [raw, source] =
    fromFlag !== undefined
      ? [fromFlag, flagName(fileKey)]
      : fromEnv !== undefined
        ? [fromEnv, setting.env]
        : fromFile !== undefined
          ? [fromFile, `${sources.file.label}:${fileKey}`]
          : [undefined, ''];
  if (raw === undefined) return setting.defaultValue;
  const parsed = setting.parse(raw);
  if (parsed.ok) return parsed.value;
  problems.push({ field: source, message: parsed.message });
  return NO_VALUE;
}

function invalidConfig(problems: readonly FieldError[]): SocleError {
  return new SocleError(
    'config.invalid',
    `Invalid configuration (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n${problems
      .map((problem) => `  ${problem.field} ${problem.message}`)
      .join('\n')}`,
    { status: 500, errors: [...problems] },
  );
}

/** `processes` → `--processes`, `shutdownTimeoutMs` → `--shutdown-timeout-ms`. */
function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

interface ConfigFile {
  readonly values: Readonly<Record<string, unknown>>;
  readonly label: string;
  readonly baseDir: string;
}

function readConfigFile(
  explicitPath: string | false | undefined,
  cwd: string,
  problems: FieldError[],
): ConfigFile {
  if (explicitPath === false) return { values: {}, label: CONFIG_FILE_NAME, baseDir: cwd };
  const filePath = path.resolve(cwd, explicitPath ?? CONFIG_FILE_NAME);
  const label = path.basename(filePath);
  let text: string;
  try {
    text = readFileSync(filePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' && explicitPath === undefined) {
      return { values: {}, label, baseDir: cwd };
    }
    problems.push({ field: filePath, message: `cannot be read: ${(error as Error).message}` });
    return { values: {}, label, baseDir: cwd };
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      problems.push({ field: filePath, message: 'must contain a JSON object' });
      return { values: {}, label, baseDir: cwd };
    }
    const { $schema: _schema, ...values } = parsed as Record<string, unknown>;
    return { values, label, baseDir: path.dirname(filePath) };
  } catch (error) {
    problems.push({ field: filePath, message: `is not valid JSON: ${(error as Error).message}` });
    return { values: {}, label, baseDir: cwd };
  }
}
