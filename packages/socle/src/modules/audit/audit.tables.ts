import type { Generated } from 'kysely';

/** The audit module's tables as Kysely sees them. */
export interface AuditTables {
  'audit.events': {
    id: string;
    tenant_id: string | null;
    occurred_at: Generated<Date>;
    actor_user_id: string | null;
    actor_api_key_id: string | null;
    /** The request carried the operator token (`OPERATOR_TOKEN`) and acted as the operator. */
    actor_operator: Generated<boolean>;
    action: string;
    /** JSON object of the route's path parameters, e.g. `{"userId":"…"}`. */
    target: string | null;
    changed_fields: Generated<string[]>;
    status: number;
    ip: string | null;
    user_agent: string | null;
    request_id: string | null;
  };
}
