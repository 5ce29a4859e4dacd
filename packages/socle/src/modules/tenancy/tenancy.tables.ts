import type { Generated } from 'kysely';
import type { OrgRole } from './roles.js';

/** The tenancy module's tables as Kysely sees them. */
export interface TenancyTables {
  'tenancy.organizations': {
    id: string;
    name: string;
    slug: string;
    created_by: string;
    created_at: Generated<Date>;
  };
  'tenancy.memberships': {
    tenant_id: string;
    user_id: string;
    role: OrgRole;
    created_at: Generated<Date>;
  };
  'tenancy.invitations': {
    id: string;
    tenant_id: string;
    email: string;
    role: Exclude<OrgRole, 'owner'>;
    token_hash: string;
    /** Null: the operator invited (OPERATOR_TOKEN, no account). */
    invited_by: string | null;
    expires_at: Date;
    accepted_at: Date | null;
    accepted_by: string | null;
    revoked_at: Date | null;
    created_at: Generated<Date>;
  };
  'tenancy.api_keys': {
    id: string;
    tenant_id: string;
    name: string;
    prefix: string;
    key_hash: string;
    scopes: string[];
    role: Exclude<OrgRole, 'owner'>;
    created_by: string;
    created_at: Generated<Date>;
    last_used_at: Date | null;
    expires_at: Date | null;
    revoked_at: Date | null;
  };
}
