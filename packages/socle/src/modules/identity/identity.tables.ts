import type { Generated, Selectable } from 'kysely';

/** The identity module's tables as Kysely sees them. */
export interface IdentityTables {
  'identity.users': {
    id: string;
    email: string;
    password_hash: string | null;
    name: string | null;
    email_verified_at: Date | null;
    created_at: Generated<Date>;
    updated_at: Generated<Date>;
  };
  'identity.sessions': {
    id: string;
    user_id: string;
    created_at: Generated<Date>;
    last_refreshed_at: Generated<Date>;
    expires_at: Date;
    revoked_at: Date | null;
    revoked_reason: string | null;
    user_agent: string | null;
    ip: string | null;
  };
  'identity.refresh_tokens': {
    hash: string;
    session_id: string;
    generation: number;
    created_at: Generated<Date>;
    used_at: Date | null;
    replaced_by_sealed: string | null;
  };
  'identity.signing_keys': {
    kid: string;
    algorithm: string;
    private_jwk: unknown;
    public_jwk: unknown;
    created_at: Generated<Date>;
    retired_at: Date | null;
  };
}

export type UserRow = Selectable<IdentityTables['identity.users']>;
export type SessionRow = Selectable<IdentityTables['identity.sessions']>;
export type SigningKeyRow = Selectable<IdentityTables['identity.signing_keys']>;
