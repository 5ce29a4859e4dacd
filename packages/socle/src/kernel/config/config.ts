import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { type FieldError, SocleError } from '../errors/index.js';
import { decodeSecretKey } from '../secrets/index.js';

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
   * Prefix of every Redis key and pub/sub channel (`<namespace>:rt:…`, `<namespace>:rate-limit:…`),
   * so deployments sharing one Redis never see each other's state.
   */
  readonly redisNamespace: string;
  /** Longest one Redis command may take; past it Redis counts as down until a probe answers. */
  readonly redisCommandTimeoutMs: number;
  /**
   * `smtp://user:pass@host:587` or `smtps://…` delivers mail through that server; unset logs each
   * mail instead (embedded default). Carries a password: never log it.
   */
  readonly smtpUrl: string | undefined;
  /** The `From` of mail Socle sends, e.g. `Acme <no-reply@acme.example>`. */
  readonly mailFrom: string;
  /** Delivery attempts of one mail (its `mail.deliver` job) before it is marked failed. */
  readonly mailMaxAttempts: number;
  /** Days a sent or failed mail stays in the outbox before a daily job deletes it. */
  readonly mailRetentionDays: number;
  /** Id of the realtime app defined by configuration (with key and secret); unset: none. */
  readonly realtimeAppId: string | undefined;
  /** Public key of the configured realtime app (`new Pusher(key, …)`). */
  readonly realtimeAppKey: string | undefined;
  /** Secret of the configured realtime app (HMAC of auth signatures). Never log it. */
  readonly realtimeAppSecret: string | undefined;
  /**
   * Encryption master key of the configured realtime app (base64 of 32 bytes, the pusher SDK's
   * `encryptionMasterKeyBase64`): needed for `private-encrypted-` channels. Never log it.
   */
  readonly realtimeAppEncryptionMasterKey: string | undefined;
  /** Where Pusher webhooks of the configured realtime app are posted; unset: none. */
  readonly realtimeWebhookUrl: string | undefined;
  /** Largest event payload (`data`) a client or the HTTP API may send, in bytes. */
  readonly realtimeMaxMessageBytes: number;
  /** Seconds of silence after which the server pings a connection (sent to clients as `activity_timeout`). */
  readonly realtimeActivityTimeoutSeconds: number;
  /** Client events (`client-*`) one connection may send per second (above: `pusher:error` 4301). */
  readonly realtimeClientEventsPerSecond: number;
  /**
   * Bytes a realtime socket may have waiting in the server's memory (written, not yet taken by the
   * kernel). A frame that would take a socket past it is not queued: the socket is closed with 4100
   * (over capacity: the client backs off, then reconnects), so clients that stop reading cannot run
   * the server out of memory.
   */
  readonly realtimeMaxBufferedBytes: number;
  /** Largest presence `user_info` (JSON-serialized bytes) a member may join with. */
  readonly realtimeMaxUserInfoBytes: number;
  readonly realtimeMaxChannelsPerConnection: number;
  /**
   * Seconds after its last heartbeat that a node counts as dead (with Redis): another node then
   * removes its members and channels and announces it (`member_removed`, webhooks).
   */
  readonly realtimeNodeExpirySeconds: number;
  /** Who may join which private and presence channels, besides the built-in rules and modules'. */
  readonly realtimeChannelRules: readonly RealtimeChannelRule[];
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
  /** Job queues this process works (`high`, `default`, `low`); empty: enqueue only. */
  readonly jobsQueues: readonly string[];
  /** Fetch loops per worked queue in this process. */
  readonly jobsConcurrency: number;
  /** Jobs one fetch loop claims per round trip, and runs at once. */
  readonly jobsBatchSize: number;
  /** Poll interval of an idle worker (NOTIFY wakes it sooner; delayed and retried jobs wait for it). */
  readonly jobsPollIntervalMs: number;
  /** How often expired leases are reclaimed and cron schedules checked. */
  readonly jobsSuperviseIntervalMs: number;
  /** Postgres only: connections of the job engine's own pool (plus one for LISTEN). */
  readonly jobsPoolMax: number;
  /** Token of the operator API (`/operator/jobs`, `X-Operator-Token`); unset disables it. A secret: never log it. */
  readonly operatorToken: string | undefined;
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
}

/**
 * A channel rule of the configuration: channels matching `pattern` (`{orgId}` and `{userId}`
 * placeholders, `*` for any rest) may be joined by any signed-in user (`user`), or by members of
 * the pattern's `{orgId}` organization with at least that role.
 */
export interface RealtimeChannelRule {
  readonly pattern: string;
  readonly role: 'user' | 'owner' | 'admin' | 'member' | 'viewer';
}

type RawValue = string | number | boolean | readonly unknown[];
type Parser<T> = (raw: RawValue) => { ok: true; value: T } | { ok: false; message: string };

interface Setting<K extends keyof Config> {
  readonly key: K;
  readonly env: string;
  readonly description: string;
  readonly defaultValue: Config[K] | ((config: Partial<Config>) => Config[K]);
  readonly parse: Parser<Config[K]>;
}

const show = (raw: RawValue) => JSON.stringify(raw);

function integer(minimum: number, maximum: number): Parser<number> {
  return (raw) => {
    const value =
      typeof raw === 'number'
        ? raw
        : typeof raw === 'string' && /^-?\d+$/.test(raw.trim())
          ? Number(raw)
          : Number.NaN;
    if (!Number.isSafeInteger(value) || value < minimum || value > maximum) {
      return { ok: false, message: `must be an integer from ${minimum} to ${maximum}, got ${show(raw)}` };
    }
    return { ok: true, value };
  };
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

const boolean: Parser<boolean> = (raw) => {
  if (typeof raw === 'boolean') return { ok: true, value: raw };
  const text = String(raw).trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(text)) return { ok: true, value: true };
  if (['0', 'false', 'no', 'off'].includes(text)) return { ok: true, value: false };
  return { ok: false, message: `must be true or false, got ${show(raw)}` };
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

function oneOf<T extends string>(...allowed: T[]): Parser<T> {
  return (raw) =>
    typeof raw === 'string' && (allowed as string[]).includes(raw)
      ? { ok: true, value: raw as T }
      : { ok: false, message: `must be one of ${allowed.join(', ')}, got ${show(raw)}` };
}

function text(pattern?: RegExp, expectation?: string): Parser<string> {
  return (raw) => {
    if (typeof raw !== 'string' || raw.trim() === '')
      return { ok: false, message: `must be a non-empty string, got ${show(raw)}` };
    if (pattern && !pattern.test(raw))
      return { ok: false, message: `must be ${expectation}, got ${show(raw)}` };
    return { ok: true, value: raw.trim() };
  };
}

const list: Parser<readonly string[]> = (raw) => {
  if (Array.isArray(raw)) {
    if (raw.every((item) => typeof item === 'string')) return { ok: true, value: raw as string[] };
    return { ok: false, message: `must be a list of strings, got ${show(raw)}` };
  }
  if (typeof raw !== 'string')
    return { ok: false, message: `must be a comma-separated list, got ${show(raw)}` };
  return {
    ok: true,
    value: raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  };
};

const postgresUrl: Parser<string | undefined> = (raw) => {
  if (typeof raw !== 'string') return { ok: false, message: `must be a postgres:// URL, got ${show(raw)}` };
  if (raw.trim() === '') return { ok: true, value: undefined };
  try {
    const url = new URL(raw);
    if (url.protocol === 'postgres:' || url.protocol === 'postgresql:')
      return { ok: true, value: raw.trim() };
  } catch {
    // reported below
  }
  // Never echo the value: it usually carries a password.
  return { ok: false, message: 'must be a postgres:// or postgresql:// URL' };
};

const redisUrl: Parser<string | undefined> = (raw) => {
  if (typeof raw !== 'string') return { ok: false, message: 'must be a redis:// or rediss:// URL' };
  if (raw.trim() === '') return { ok: true, value: undefined };
  try {
    const url = new URL(raw.trim());
    if ((url.protocol === 'redis:' || url.protocol === 'rediss:') && url.hostname !== '')
      return { ok: true, value: raw.trim() };
  } catch {
    // reported below
  }
  // Never echo the value: it may carry a password.
  return { ok: false, message: 'must be a redis:// or rediss:// URL' };
};

const KEY_EXPECTATION =
  'a base64 (or base64url) encoding of 32 random bytes, e.g. from `openssl rand -base64 32`';

// Never echo the value of a key setting: it is the secret itself.
const secretKey: Parser<string | undefined> = (raw) => {
  if (typeof raw !== 'string') return { ok: false, message: `must be ${KEY_EXPECTATION}` };
  if (raw.trim() === '') return { ok: true, value: undefined };
  return decodeSecretKey(raw) === undefined
    ? { ok: false, message: `must be ${KEY_EXPECTATION}` }
    : { ok: true, value: raw.trim() };
};

const secretKeyList: Parser<readonly string[]> = (raw) => {
  const parsed = list(raw);
  if (!parsed.ok) return parsed;
  return parsed.value.every((key) => decodeSecretKey(key) !== undefined)
    ? parsed
    : { ok: false, message: `must be a comma-separated list of keys, each ${KEY_EXPECTATION}` };
};

const smtpUrl: Parser<string | undefined> = (raw) => {
  if (typeof raw !== 'string') return { ok: false, message: 'must be an smtp:// or smtps:// URL' };
  if (raw.trim() === '') return { ok: true, value: undefined };
  try {
    const url = new URL(raw.trim());
    if ((url.protocol === 'smtp:' || url.protocol === 'smtps:') && url.hostname !== '')
      return { ok: true, value: raw.trim() };
  } catch {
    // reported below
  }
  // Never echo the value: it usually carries a password.
  return { ok: false, message: 'must be an smtp:// or smtps:// URL' };
};

const jobQueues: Parser<readonly string[]> = (raw) => {
  const parsed = list(raw);
  if (!parsed.ok) return parsed;
  const unknown = parsed.value.filter((queue) => !['high', 'default', 'low'].includes(queue));
  if (unknown.length > 0) return { ok: false, message: `must list high, default or low, got ${show(raw)}` };
  return { ok: true, value: [...new Set(parsed.value)] };
};

const optionalSecret: Parser<string | undefined> = (raw) => {
  if (typeof raw !== 'string') return { ok: false, message: 'must be a string' };
  if (raw.trim() === '') return { ok: true, value: undefined };
  // Never echo the value: it is a secret.
  if (raw.trim().length < 32) return { ok: false, message: 'must be at least 32 characters' };
  return { ok: true, value: raw.trim() };
};

const CHANNEL_RULE = /^((?:private|presence)-[-a-zA-Z0-9_=@,.;{}*]+):(user|owner|admin|member|viewer)$/;

/** `pattern:role` items, separated by spaces (channel names may hold commas), or a list of them. */
const channelRules: Parser<readonly RealtimeChannelRule[]> = (raw) => {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(/\s+/) : [raw];
  const rules: RealtimeChannelRule[] = [];
  for (const item of items) {
    if (item === '') continue;
    const match = typeof item === 'string' ? CHANNEL_RULE.exec(item) : null;
    if (match === null)
      return {
        ok: false,
        message: `must be pattern:role items (a private- or presence- pattern; role user, owner, admin, member or viewer), got ${show(item as RawValue)}`,
      };
    rules.push({ pattern: match[1] as string, role: match[2] as RealtimeChannelRule['role'] });
  }
  return { ok: true, value: rules };
};

const optionalText: Parser<string | undefined> = (raw) => {
  if (typeof raw !== 'string') return { ok: false, message: 'must be a string' };
  return { ok: true, value: raw.trim() === '' ? undefined : raw.trim() };
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
    env: 'DATABASE_URL',
    description: 'Postgres URL; unset runs embedded PGlite',
    defaultValue: undefined,
    parse: postgresUrl,
  },
  {
    key: 'databasePoolMax',
    env: 'DATABASE_POOL_MAX',
    description: 'Connections in the Postgres pool',
    defaultValue: 10,
    parse: integer(1, 1000),
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
    env: 'REDIS_URL',
    description:
      'Redis URL; shares rate limits, realtime fan-out and presence across nodes. Unset keeps them in process',
    defaultValue: undefined,
    parse: redisUrl,
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
    key: 'smtpUrl',
    env: 'SMTP_URL',
    description:
      'SMTP server that delivers mail (smtp://user:pass@host:587, smtps://…); unset logs mail instead',
    defaultValue: undefined,
    parse: smtpUrl,
  },
  {
    key: 'mailFrom',
    env: 'MAIL_FROM',
    description: 'From address of outgoing mail',
    defaultValue: 'Socle <no-reply@localhost>',
    parse: text(),
  },
  {
    key: 'mailMaxAttempts',
    env: 'MAIL_MAX_ATTEMPTS',
    description:
      'Delivery attempts of one mail (its mail.deliver job) before it is marked failed; set for mail queued from then on',
    defaultValue: 10,
    parse: integer(1, 100),
  },
  {
    key: 'mailRetentionDays',
    env: 'MAIL_RETENTION_DAYS',
    description:
      'Days sent or failed mail stays in the outbox (it may hold tokens) before a daily job deletes it',
    defaultValue: 7,
    parse: integer(1, 3650),
  },
  {
    key: 'realtimeAppId',
    env: 'REALTIME_APP_ID',
    description: 'Id of the realtime app defined by configuration (with REALTIME_APP_KEY and _SECRET)',
    defaultValue: undefined,
    parse: optionalText,
  },
  {
    key: 'realtimeAppKey',
    env: 'REALTIME_APP_KEY',
    description: 'Public key of the configured realtime app (Pusher key)',
    defaultValue: undefined,
    parse: optionalText,
  },
  {
    key: 'realtimeAppSecret',
    env: 'REALTIME_APP_SECRET',
    description: 'Secret of the configured realtime app (signs channel authorizations and API calls)',
    defaultValue: undefined,
    parse: optionalText,
  },
  {
    key: 'realtimeAppEncryptionMasterKey',
    env: 'REALTIME_APP_ENCRYPTION_MASTER_KEY',
    description:
      'Encryption master key of the configured realtime app, for private-encrypted- channels (base64 of 32 bytes, as the pusher SDK takes it)',
    defaultValue: undefined,
    parse: secretKey,
  },
  {
    key: 'realtimeWebhookUrl',
    env: 'REALTIME_WEBHOOK_URL',
    description: 'URL receiving Pusher webhooks of the configured realtime app',
    defaultValue: undefined,
    parse: optionalText,
  },
  {
    key: 'realtimeMaxMessageBytes',
    env: 'REALTIME_MAX_MESSAGE_BYTES',
    description: 'Largest realtime event payload, in bytes',
    defaultValue: 10_240,
    parse: integer(256, 1_048_576),
  },
  {
    key: 'realtimeActivityTimeoutSeconds',
    env: 'REALTIME_ACTIVITY_TIMEOUT_SECONDS',
    description: 'Seconds of silence before the server pings a realtime connection',
    defaultValue: 120,
    parse: integer(1, 3600),
  },
  {
    key: 'realtimeClientEventsPerSecond',
    env: 'REALTIME_CLIENT_EVENTS_PER_SECOND',
    description: 'Client events one realtime connection may send per second',
    defaultValue: 10,
    parse: integer(1, 10_000),
  },
  {
    key: 'realtimeMaxBufferedBytes',
    env: 'REALTIME_MAX_BUFFERED_BYTES',
    description:
      'Bytes a realtime socket may have waiting in server memory; a socket that does not read fast enough to stay under it is closed with 4100',
    defaultValue: 1_048_576,
    parse: integer(65_536, 268_435_456),
  },
  {
    key: 'realtimeMaxUserInfoBytes',
    env: 'REALTIME_MAX_USER_INFO_BYTES',
    description:
      'Largest presence user_info (serialized JSON, bytes); larger ones are refused on the socket and at /realtime/auth',
    defaultValue: 1024,
    parse: integer(64, 65_536),
  },
  {
    key: 'realtimeMaxChannelsPerConnection',
    env: 'REALTIME_MAX_CHANNELS_PER_CONNECTION',
    description:
      'Channels one socket may be subscribed to at once; past it a subscription gets pusher:subscription_error LimitReached',
    defaultValue: 200,
    parse: integer(1, 100_000),
  },
  {
    key: 'realtimeNodeExpirySeconds',
    env: 'REALTIME_NODE_EXPIRY_SECONDS',
    description:
      'With Redis: seconds without heartbeat after which a node is dead and its members are removed and announced (within 1.25 × this)',
    defaultValue: 20,
    parse: integer(2, 600),
  },
  {
    key: 'realtimeChannelRules',
    env: 'REALTIME_CHANNEL_RULES',
    description:
      'Extra channel rules, space-separated pattern:role (e.g. private-org-{orgId}-billing-*:admin presence-lobby-*:user)',
    defaultValue: [],
    parse: channelRules,
  },
  {
    key: 'secretKey',
    env: 'SECRET_KEY',
    description:
      'Key encrypting stored secrets (base64 of 32 bytes; `openssl rand -base64 32`). Required with DATABASE_URL; embedded mode generates DATA_DIR/secret-key',
    defaultValue: undefined,
    parse: secretKey,
  },
  {
    key: 'previousSecretKeys',
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
    description: 'Poll interval of an idle job worker (NOTIFY wakes it sooner)',
    defaultValue: 1000,
    parse: integer(500, 600_000),
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
    key: 'operatorToken',
    env: 'OPERATOR_TOKEN',
    description: 'Token of the operator API (/operator/jobs, X-Operator-Token header); unset disables it',
    defaultValue: undefined,
    parse: optionalSecret,
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

/** What `socle help config` prints: one row per setting. */
export function describeSettings(): readonly {
  env: string;
  fileKey: string;
  description: string;
  defaultValue: string;
}[] {
  return SETTINGS.map((setting) => ({
    env: setting.env,
    fileKey: setting.key,
    description: setting.description,
    defaultValue: JSON.stringify(setting.defaultValue) ?? '(unset)',
  }));
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
  /** Values that win over file and environment (used by tests and programmatic callers). */
  readonly overrides?: Partial<Config>;
}

export const CONFIG_FILE_NAME = 'socle.config.json';

/**
 * Parses the configuration once: defaults, then `socle.config.json`, then the environment, then
 * command-line flags.
 * Every invalid value is reported in one `config.invalid` error; the result is frozen.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? {};
  const problems: FieldError[] = [];
  const file = readConfigFile(options.configFile, cwd, problems);
  const known = new Set<string>(SETTINGS.map((setting) => setting.key));
  for (const key of Object.keys(file.values)) {
    if (!known.has(key)) problems.push({ field: `${file.label}:${key}`, message: 'is not a known setting' });
  }

  const values: Record<string, unknown> = {};
  for (const setting of SETTINGS) {
    const fromFlag = options.flags?.[setting.key];
    const fromEnv = env[setting.env];
    const fromFile = file.values[setting.key] as RawValue | undefined;
    const [raw, source] =
      fromFlag !== undefined
        ? [fromFlag, flagName(setting.key)]
        : fromEnv !== undefined
          ? [fromEnv, setting.env]
          : fromFile !== undefined
            ? [fromFile, `${file.label}:${setting.key}`]
            : [undefined, ''];
    if (raw === undefined) {
      values[setting.key] = setting.defaultValue;
      continue;
    }
    const parsed = (setting.parse as Parser<unknown>)(raw);
    if (parsed.ok) values[setting.key] = parsed.value;
    else problems.push({ field: source, message: parsed.message });
  }
  if (problems.length > 0) {
    throw new SocleError(
      'config.invalid',
      `Invalid configuration (${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}):\n${problems
        .map((problem) => `  ${problem.field} ${problem.message}`)
        .join('\n')}`,
      { status: 500, errors: problems },
    );
  }
  return Object.freeze({ ...values, baseDir: file.baseDir, ...options.overrides } as Config);
}

/** `processes` → `--processes`, `shutdownTimeoutMs` → `--shutdown-timeout-ms`. */
function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

function readConfigFile(
  explicitPath: string | false | undefined,
  cwd: string,
  problems: FieldError[],
): { values: Record<string, unknown>; label: string; baseDir: string } {
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
