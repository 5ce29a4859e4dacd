import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock, Database, Logger, SecretBox } from '../../kernel/index.js';
import { tenantSettings } from '../../kernel/index.js';
import { OPERATOR_READ } from '../tenancy/index.js';
import type { AppDirectory, RealtimeApp } from './apps.js';
import type { AppLookup, AppsStore } from './apps.store.js';
import { realtimeErrors } from './realtime.errors.js';
import type { RealtimeTables } from './realtime.tables.js';

/** How long an app found by key or id is reused: a rotated secret or deleted app dies within this. */
const APP_CACHE_MS = 5000;
const APP_CACHE_SIZE = 10_000;
/** Apps resealed per listing after a SECRET_KEY rotation. */
const RESEAL_BATCH = 100;

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
  readonly hasEncryptionMasterKey: boolean;
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
  has_encryption_master_key: boolean;
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
    hasEncryptionMasterKey: row.has_encryption_master_key,
  };
}

/** What binds a sealed app secret to its app: a secret copied to another row does not open. */
const secretContext = (appId: string) => `realtime.app:${appId}`;
const encryptionKeyContext = (appId: string) => `realtime.app-encryption-key:${appId}`;
/** A new encryption master key, sealed for the row, and as the admin sees it once (base64). */
function newEncryptionKey(appId: string, secrets: SecretBox) {
  const key = randomBytes(32).toString('base64');
  return { sealed: secrets.seal(key, encryptionKeyContext(appId)), shown: key };
}

function appOf(row: AppLookup, secrets: SecretBox): RealtimeApp {
  return {
    id: row.id,
    key: row.key,
    secret: secrets.open(row.secret, secretContext(row.id)),
    encryptionMasterKey:
      row.encryption_master_key === null
        ? undefined
        : Buffer.from(secrets.open(row.encryption_master_key, encryptionKeyContext(row.id)), 'base64'),
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
  /** Apps of Socle's own (the operator feed's): found by key and id, never the default. */
  internalApps?: readonly RealtimeApp[];
  /** Seals app secrets at rest (AES-256-GCM with SECRET_KEY). */
  secrets: SecretBox;
  log: Logger;
}) {
  const { db, store, clock, secrets, log } = options;
  const inOrg = <T>(acting: ActingAdmin, work: Parameters<typeof db.transaction<T>>[0]) =>
    db.transaction(work, { settings: tenantSettings({ tenantId: acting.orgId, userId: acting.userId }) });
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

  const known = [...options.staticApps, ...(options.internalApps ?? [])];
  const directory: AppDirectory = {
    defaultApp: options.staticApps[0],
    async byKey(key) {
      return known.find((app) => app.key === key) ?? cached(`key:${key}`, () => store.find({ key }));
    },
    async byId(id) {
      return known.find((app) => app.id === id) ?? cached(`id:${id}`, () => store.find({ id }));
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
      const encryptionKey = newEncryptionKey(id, secrets);
      const row = await inOrg(acting, (trx) =>
        store.insert(
          {
            id,
            tenantId: acting.orgId,
            name: input.name.trim(),
            key: randomBytes(10).toString('hex'),
            secret: secrets.seal(secret, secretContext(id)),
            encryptionMasterKey: encryptionKey.sealed,
            maxConnections: input.maxConnections ?? 0,
            clientEventsPerSecond: input.clientEventsPerSecond ?? 10,
            backendEventsPerSecond: input.backendEventsPerSecond ?? 0,
            webhookUrl: input.webhookUrl ?? null,
          },
          trx,
        ),
      );
      return { ...summaryOf(row), secret, encryptionMasterKey: encryptionKey.shown };
    },

    async list(acting: ActingAdmin): Promise<RealtimeAppSummary[]> {
      return (await inOrg(acting, (trx) => store.list(trx))).map(summaryOf);
    },

    /**
     * Every organization's apps, or one organization's (`orgId`), for the operator: a page in id
     * order after `after`; `next` is the following page's, or null. With `SHARDS`, each database
     * (the primary and every shard) gives its page from the same position and the pages are merged
     * in id order, so the cursor walks every shard's apps as one list.
     */
    async listForOperator(query: { orgId?: string | undefined; after?: string | undefined; limit: number }) {
      const pages = await Promise.all(
        db
          .everyDatabase()
          .map((database) =>
            store.listAll({ ...query, limit: query.limit + 1 }, database.withSettings(OPERATOR_READ)),
          ),
      );
      // uuids compare as their lowercase text does, as Postgres orders them.
      const rows = pages
        .flat()
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .slice(0, query.limit + 1);
      const page = rows.slice(0, query.limit);
      return {
        apps: page.map((row) => ({ ...summaryOf(row), orgId: row.tenant_id })),
        next: rows.length > query.limit ? (page.at(-1)?.id ?? null) : null,
      };
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

    /**
     * A new encryption master key (or the first, for apps created before keys existed): the app's
     * server SDK must be given it; subscribers get shared secrets derived from it from now on.
     */
    async rotateEncryptionKey(acting: ActingAdmin, id: string) {
      const encryptionKey = newEncryptionKey(id, secrets);
      const row = await inOrg(acting, (trx) => store.rotateEncryptionKey(id, encryptionKey.sealed, trx));
      if (row === undefined) throw realtimeErrors.appNotFound();
      cache.clear();
      return { ...summaryOf(row), encryptionMasterKey: encryptionKey.shown };
    },

    /**
     * Reseals, with the current SECRET_KEY, the secrets and encryption master keys of every
     * organization's apps still sealed with a previous key (after a rotation; run at start by
     * every node: a row another node or a rotation rewrote meanwhile is left as it is). A value no
     * configured key opens is logged and left. Resolves to the number of apps resealed.
     */
    async resealSecrets(): Promise<number> {
      const reseal = (value: string, context: string) =>
        secrets.isCurrent(value) ? value : secrets.seal(secrets.open(value, context), context);
      let resealed = 0;
      let after: string | null = null;
      for (;;) {
        const rows = await store.toReseal(secrets.currentPrefix, after, RESEAL_BATCH);
        for (const row of rows) {
          let next: { secret: string; encryptionMasterKey: string | null };
          try {
            next = {
              secret: reseal(row.secret, secretContext(row.id)),
              encryptionMasterKey:
                row.encryption_master_key === null
                  ? null
                  : reseal(row.encryption_master_key, encryptionKeyContext(row.id)),
            };
          } catch (error) {
            log.error({ err: error, appId: row.id }, 'Realtime app secrets could not be resealed');
            continue;
          }
          const read = { secret: row.secret, encryptionMasterKey: row.encryption_master_key };
          const updated = await db.transaction((trx) => store.reseal(row.id, read, next, trx), {
            settings: tenantSettings({ tenantId: row.tenant_id }),
          });
          if (updated) resealed++;
        }
        if (rows.length < RESEAL_BATCH) break;
        after = (rows.at(-1) as { id: string }).id;
      }
      if (resealed > 0) cache.clear();
      return resealed;
    },

    async remove(acting: ActingAdmin, id: string): Promise<void> {
      if (!(await inOrg(acting, (trx) => store.remove(id, trx)))) throw realtimeErrors.appNotFound();
      cache.clear();
    },
  };
}

export type AppsService = ReturnType<typeof createAppsService>;
