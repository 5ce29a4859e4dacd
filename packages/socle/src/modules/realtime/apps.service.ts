import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock } from '../../kernel/clock/index.js';
import type { Database } from '../../kernel/db/index.js';
import type { SecretBox } from '../../kernel/secrets/index.js';
import type { AppDirectory, RealtimeApp } from './apps.js';
import type { AppLookup, AppsStore } from './apps.store.js';
import { realtimeErrors } from './realtime.errors.js';
import type { RealtimeTables } from './realtime.tables.js';

/** How long an app found by key or id is reused: a rotated secret or deleted app dies within this. */
const APP_CACHE_MS = 5000;
const APP_CACHE_SIZE = 10_000;

/** The organization and user an app is managed for. */
export interface ActingAdmin {
  readonly orgId: string;
  readonly userId: string;
}

/** An app as listed: everything but the secret. */
export interface RealtimeAppSummary {
  readonly id: string;
  readonly name: string;
  readonly key: string;
  readonly maxConnections: number;
  readonly clientEventsPerSecond: number;
  readonly backendEventsPerSecond: number;
  readonly webhookUrl: string | null;
  readonly createdAt: string;
  readonly secretRotatedAt: string | null;
}

function summaryOf(row: {
  id: string;
  name: string;
  key: string;
  max_connections: number;
  client_events_per_second: number;
  backend_events_per_second: number;
  webhook_url: string | null;
  created_at: Date;
  secret_rotated_at: Date | null;
}): RealtimeAppSummary {
  return {
    id: row.id,
    name: row.name,
    key: row.key,
    maxConnections: row.max_connections,
    clientEventsPerSecond: row.client_events_per_second,
    backendEventsPerSecond: row.backend_events_per_second,
    webhookUrl: row.webhook_url,
    createdAt: row.created_at.toISOString(),
    secretRotatedAt: row.secret_rotated_at?.toISOString() ?? null,
  };
}

/** What binds a sealed app secret to its app: a secret copied to another row does not open. */
const secretContext = (appId: string) => `realtime.app:${appId}`;

function appOf(row: AppLookup, secrets: SecretBox): RealtimeApp {
  return {
    id: row.id,
    key: row.key,
    secret: secrets.open(row.secret, secretContext(row.id)),
    orgId: row.tenant_id,
    maxConnections: row.max_connections,
    clientEventsPerSecond: row.client_events_per_second,
    backendEventsPerSecond: row.backend_events_per_second,
    webhookUrl: row.webhook_url ?? undefined,
  };
}

/**
 * Apps of organizations (created by admins) and the directory the gateway and HTTP API find
 * apps in: the configured apps first, then the database, cached for a few seconds.
 */
export function createAppsService(options: {
  db: Database<RealtimeTables>;
  store: AppsStore;
  clock: Clock;
  staticApps: readonly RealtimeApp[];
  /** Seals app secrets at rest (AES-256-GCM with SECRET_KEY). */
  secrets: SecretBox;
}) {
  const { db, store, clock, secrets } = options;
  const inOrg = <T>(acting: ActingAdmin, work: Parameters<typeof db.transaction<T>>[0]) =>
    db.transaction(work, { settings: { 'app.tenant_id': acting.orgId, 'app.user_id': acting.userId } });
  const cache = new Map<string, { app: RealtimeApp | undefined; until: number }>();

  async function cached(cacheKey: string, find: () => Promise<AppLookup | undefined>) {
    const now = clock.now().getTime();
    const hit = cache.get(cacheKey);
    if (hit !== undefined && hit.until > now) return hit.app;
    const row = await find();
    if (cache.size >= APP_CACHE_SIZE) cache.clear();
    const app = row === undefined ? undefined : appOf(row, secrets);
    cache.set(cacheKey, { app, until: now + APP_CACHE_MS });
    return app;
  }

  const directory: AppDirectory = {
    defaultApp: options.staticApps[0],
    async byKey(key) {
      return (
        options.staticApps.find((app) => app.key === key) ?? cached(`key:${key}`, () => store.find({ key }))
      );
    },
    async byId(id) {
      return options.staticApps.find((app) => app.id === id) ?? cached(`id:${id}`, () => store.find({ id }));
    },
  };

  return {
    directory,

    /** Creates an app; the result holds the secret, also available again only by rotating it. */
    async create(
      acting: ActingAdmin,
      input: {
        name: string;
        maxConnections?: number;
        clientEventsPerSecond?: number;
        backendEventsPerSecond?: number;
        webhookUrl?: string;
      },
    ) {
      const secret = randomBytes(32).toString('base64url');
      const id = randomUUID();
      const row = await inOrg(acting, (trx) =>
        store.insert(
          {
            id,
            tenantId: acting.orgId,
            name: input.name.trim(),
            key: randomBytes(10).toString('hex'),
            secret: secrets.seal(secret, secretContext(id)),
            maxConnections: input.maxConnections ?? 0,
            clientEventsPerSecond: input.clientEventsPerSecond ?? 10,
            backendEventsPerSecond: input.backendEventsPerSecond ?? 0,
            webhookUrl: input.webhookUrl ?? null,
          },
          trx,
        ),
      );
      return { ...summaryOf(row), secret };
    },

    async list(acting: ActingAdmin): Promise<RealtimeAppSummary[]> {
      return (await inOrg(acting, (trx) => store.list(trx))).map(summaryOf);
    },

    /** A new secret: signatures made with the old one fail (on other nodes within a few seconds). */
    async rotateSecret(acting: ActingAdmin, id: string) {
      const secret = randomBytes(32).toString('base64url');
      const row = await inOrg(acting, (trx) =>
        store.rotateSecret(id, secrets.seal(secret, secretContext(id)), clock.now(), trx),
      );
      if (row === undefined) throw realtimeErrors.appNotFound();
      cache.clear();
      return { ...summaryOf(row), secret };
    },

    async remove(acting: ActingAdmin, id: string): Promise<void> {
      if (!(await inOrg(acting, (trx) => store.remove(id, trx)))) throw realtimeErrors.appNotFound();
      cache.clear();
    },
  };
}

export type AppsService = ReturnType<typeof createAppsService>;
