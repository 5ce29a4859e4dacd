import { randomUUID } from 'node:crypto';
import type { Clock, Database } from '../../kernel/index.js';
import { tenantSettings } from '../../kernel/index.js';
import { createApiKey, parseSecretToken } from '../identity/index.js';
import type { ApiKeyLookup, ApiKeysStore } from './api-keys.store.js';
import { type Acting, actingIn } from './organizations.service.js';
import { hasRole, type OrgRole } from './roles.js';
import { tenancyErrors } from './tenancy.errors.js';
import type { TenancyTables } from './tenancy.tables.js';

/** Keys look like `sk_<43 characters>`; listings show `sk_` and the first 8 of them. */
export const API_KEY_PREFIX = 'sk';
/** How long a verified key is reused without asking the database: a revoked key dies within this. */
const VERIFIED_KEY_CACHE_MS = 5000;
const VERIFIED_KEY_CACHE_SIZE = 10_000;
/** `last_used_at` is written at most this often per key. */
const LAST_USED_GRANULARITY_MS = 60_000;
const DAY_MS = 24 * 60 * 60 * 1000;

/** The role an API key acts with: never owner. */
export type ApiKeyRole = Exclude<OrgRole, 'owner'>;

/** An API key as listed: everything but the key itself, which is shown once at creation. */
export interface ApiKeySummary {
  readonly id: string;
  readonly name: string;
  readonly prefix: string;
  readonly scopes: string[];
  readonly role: ApiKeyRole;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly expiresAt: string | null;
}

/** A key that authenticated a request. */
export interface VerifiedApiKey {
  readonly id: string;
  readonly orgId: string;
  readonly createdBy: string;
  readonly scopes: readonly string[];
  readonly role: ApiKeyRole;
}

export interface ApiKeyServiceOptions {
  readonly db: Database<TenancyTables>;
  readonly store: ApiKeysStore;
  readonly clock: Clock;
}

/** API keys of organizations: created by admins, stored hashed, verified on each request. */
export function createApiKeyService({ db, store, clock }: ApiKeyServiceOptions) {
  const { inOrg, inOrgStatement } = actingIn(db);
  const verified = new Map<string, { key: ApiKeyLookup | null; until: number }>();
  const lastRecordedUse = new Map<string, number>();

  return {
    /** Creates a key; the result holds the key itself, which is never available again. */
    async create(
      acting: Acting,
      input: {
        name: string;
        scopes: string[];
        role?: ApiKeyRole | undefined;
        expiresInDays?: number | undefined;
      },
    ) {
      const role = input.role ?? 'member';
      if (!hasRole(acting.role, role)) throw tenancyErrors.forbidden(role);
      const { key, prefix, hash } = createApiKey(API_KEY_PREFIX);
      const id = randomUUID();
      const name = input.name.trim();
      const scopes = [...new Set(input.scopes)];
      const expiresAt =
        input.expiresInDays === undefined
          ? null
          : new Date(clock.now().getTime() + input.expiresInDays * DAY_MS);
      const row = await inOrg(acting, (trx) =>
        store.insert(
          {
            id,
            tenantId: acting.orgId,
            name,
            prefix,
            keyHash: hash,
            scopes,
            role,
            createdBy: acting.userId,
            expiresAt,
          },
          trx,
        ),
      );
      return {
        id,
        name,
        prefix,
        scopes,
        role,
        key,
        createdAt: row.created_at.toISOString(),
        expiresAt: expiresAt?.toISOString() ?? null,
      };
    },

    async list(acting: Acting): Promise<ApiKeySummary[]> {
      const rows = await store.listActive(inOrgStatement(acting));
      return rows.map((row) => ({
        id: row.id,
        name: row.name,
        prefix: row.prefix,
        scopes: row.scopes,
        role: row.role,
        createdAt: row.created_at.toISOString(),
        lastUsedAt: row.last_used_at?.toISOString() ?? null,
        expiresAt: row.expires_at?.toISOString() ?? null,
      }));
    },

    /** Revokes a key of the acting organization; other nodes stop accepting it within 5 seconds. */
    async revoke(acting: Acting, id: string): Promise<void> {
      const revoked = await store.revoke(id, clock.now(), inOrgStatement(acting));
      if (!revoked) throw tenancyErrors.apiKeyNotFound(id);
    },

    /**
     * The key a request presents, or 401 `auth.api_key_invalid` (malformed, unknown, revoked or
     * expired alike). Lookups are cached for 5 seconds; expiry is checked on every call.
     */
    async verify(presented: string): Promise<VerifiedApiKey> {
      const parsed = parseSecretToken(presented, API_KEY_PREFIX);
      if (parsed === undefined) throw tenancyErrors.apiKeyInvalid();
      const now = clock.now();
      let cached = verified.get(parsed.hash);
      if (cached === undefined || cached.until <= now.getTime()) {
        if (verified.size >= VERIFIED_KEY_CACHE_SIZE) verified.clear();
        cached = {
          key: (await store.findByHash(parsed.hash)) ?? null,
          until: now.getTime() + VERIFIED_KEY_CACHE_MS,
        };
        verified.set(parsed.hash, cached);
      }
      const key = cached.key;
      if (key === null || key.revoked_at !== null || (key.expires_at !== null && key.expires_at <= now)) {
        throw tenancyErrors.apiKeyInvalid();
      }
      const recorded = lastRecordedUse.get(key.id);
      if (recorded === undefined || now.getTime() - recorded >= LAST_USED_GRANULARITY_MS) {
        if (lastRecordedUse.size >= VERIFIED_KEY_CACHE_SIZE) lastRecordedUse.clear();
        lastRecordedUse.set(key.id, now.getTime());
        await store.recordUse(
          key.id,
          now,
          LAST_USED_GRANULARITY_MS,
          db.withSettings(tenantSettings({ tenantId: key.tenant_id })),
        );
      }
      return {
        id: key.id,
        orgId: key.tenant_id,
        createdBy: key.created_by,
        scopes: key.scopes,
        role: key.role,
      };
    },
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;
