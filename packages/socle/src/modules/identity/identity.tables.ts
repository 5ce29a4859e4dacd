import type { ColumnType, Generated, Selectable } from 'kysely';

/** What an email token is for; either way, it proves its bearer reads the account's mailbox. */
export type EmailTokenPurpose = 'verify_email' | 'reset_password';

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
    /**
     * Base32 TOTP secret sealed with the secret box (`sb1.…`); set and with `totp_confirmed_at`
     * null while an enrolment is pending.
     */
    totp_secret: string | null;
    /** When the user proved the secret works: from then on, sign-in asks for a second factor. */
    totp_confirmed_at: Date | null;
    /** Time step of the last accepted TOTP code (`bigint`, which both drivers return as a string). */
    totp_last_step: ColumnType<string | null, number | null, number | null>;
    /** Set when an erasure revoked every credential of the person: their access tokens stop working. */
    credentials_revoked_at: Generated<Date | null>;
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
  'identity.recovery_codes': {
    user_id: string;
    code_hash: string;
    used_at: Date | null;
  };
  'identity.mfa_challenges': {
    hash: string;
    user_id: string;
    created_at: Generated<Date>;
    expires_at: Date;
    used_at: Date | null;
    failed_attempts: Generated<number>;
    /** `{ userAgent, ip }` of the password step; written as a JSON string. */
    client: ColumnType<{ userAgent: string | null; ip: string | null } | null, string | null, never>;
  };
  'identity.email_tokens': {
    /** SHA-256 (hex) of the token; the token itself is only in the mail. */
    hash: string;
    user_id: string;
    purpose: EmailTokenPurpose;
    expires_at: Date;
    used_at: Date | null;
    created_at: Generated<Date>;
  };
  'identity.signing_keys': {
    kid: string;
    algorithm: string;
    /** The private JWK, sealed with the secret box (`sb1.…`); plain JSON in rows from before 0004. */
    private_jwk: string;
    public_jwk: unknown;
    created_at: Generated<Date>;
    retired_at: Date | null;
  };
}

export type UserRow = Selectable<IdentityTables['identity.users']>;
export type SessionRow = Selectable<IdentityTables['identity.sessions']>;
export type MfaChallengeRow = Selectable<IdentityTables['identity.mfa_challenges']>;
export type SigningKeyRow = Selectable<IdentityTables['identity.signing_keys']>;
