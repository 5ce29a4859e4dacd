import type { Generated } from 'kysely';

/** The realtime module's tables as Kysely sees them. */
export interface RealtimeTables {
  'realtime.apps': {
    id: string;
    tenant_id: string;
    name: string;
    key: string;
    secret: string;
    /** Sealed like `secret`; null until the app has one (for `private-encrypted-` channels). */
    encryption_master_key: string | null;
    max_connections: number;
    client_events_per_second: number;
    backend_events_per_second: number;
    webhook_url: string | null;
    created_at: Generated<Date>;
    secret_rotated_at: Date | null;
  };
}
