import type { Generated } from 'kysely';

/** The `outbound_credentials` module's table, as Kysely sees it. */
export interface CredentialTables {
  'outbound_credentials.credentials': {
    tenant_id: Generated<string>;
    provider: string;
    sealed_key: string;
    hint: string;
    updated_at: Generated<Date>;
  };
}
