import type { Database, ScopeAccess, SecretBox } from '../../kernel/index.js';
import { credentialsStore } from './credentials.store.js';
import type { CredentialTables } from './credentials.tables.js';
import { outboundErrors } from './outbound.errors.js';

/** A stored key as an admin sees it: never the key, only its last characters. */
export interface StoredCredential {
  readonly provider: string;
  /** `…x7Qa`. */
  readonly hint: string;
  readonly updatedAt: Date;
}

/** Each organization's own provider keys, sealed at rest. */
export interface CredentialsService {
  /** Stores (or replaces) the current organization's key for `provider`. */
  store(tenantId: string, provider: string, key: string): Promise<StoredCredential>;
  list(): Promise<StoredCredential[]>;
  /** Removes the current organization's key; `outbound.credential_not_found` when there is none. */
  remove(provider: string): Promise<void>;
  /** The current organization's key for `provider`, opened; undefined outside an organization's scope. */
  keyOf(provider: string): Promise<string | undefined>;
}

/** The secret box binds each key to its organization and provider. */
const sealContext = (tenantId: string, provider: string) => `outbound.credential:${tenantId}:${provider}`;

const hintOf = (key: string) => `…${key.slice(-4)}`;

const toStored = (row: { provider: string; hint: string; updated_at: Date }): StoredCredential => ({
  provider: row.provider,
  hint: row.hint,
  updatedAt: row.updated_at,
});

export function createCredentialsService(options: {
  db: Database<CredentialTables>;
  secrets: SecretBox;
  scope: ScopeAccess;
}): CredentialsService {
  const { db, secrets, scope } = options;
  return {
    async store(tenantId, provider, key) {
      const row = await db.transaction((trx) =>
        credentialsStore.upsert(trx, {
          provider,
          sealedKey: secrets.seal(key, sealContext(tenantId, provider)),
          hint: hintOf(key),
        }),
      );
      return toStored(row);
    },
    async list() {
      return (await db.transaction((trx) => credentialsStore.list(trx))).map(toStored);
    },
    async remove(provider) {
      if (!(await db.transaction((trx) => credentialsStore.remove(trx, provider))))
        throw outboundErrors.credentialNotFound(provider);
    },
    async keyOf(provider) {
      if (scope.current()?.tenantId === undefined) return undefined;
      const row = await db.transaction((trx) => credentialsStore.find(trx, provider));
      return row === undefined
        ? undefined
        : secrets.open(row.sealed_key, sealContext(row.tenant_id, provider));
    },
  };
}
