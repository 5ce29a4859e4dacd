-- Accounts and sessions. These tables are global (a user is not inside any one organization):
-- the identity module reads them keyed by the authenticated user or by a token hash. They are
-- listed as global in the module definition, with that reason, for the RLS meta-test.

create table users (
  id uuid primary key,
  -- normalized (trimmed, NFKC, lower-cased) by the service before it gets here
  email text not null,
  password_hash text,
  name text,
  email_verified_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index users_email_key on users (email);

-- A session is one sign-in on one device: a family of refresh tokens, each replacing the last.
create table sessions (
  id uuid primary key,
  user_id uuid not null references users (id) on delete cascade,
  created_at timestamptz not null default now(),
  last_refreshed_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz,
  revoked_reason text,
  user_agent text,
  ip text
);
create index sessions_user_id on sessions (user_id) where revoked_at is null;

-- Every refresh token ever issued, by hash (the token itself is never stored). A used token that
-- comes back after the grace window means it was stolen: the whole session is revoked.
create table refresh_tokens (
  hash text primary key,
  session_id uuid not null references sessions (id) on delete cascade,
  generation integer not null,
  created_at timestamptz not null default now(),
  used_at timestamptz,
  -- the token that replaced this one, encrypted with a key derived from this one, kept so that
  -- concurrent refreshes with this token (several tabs) within the grace window get the same answer
  replaced_by_sealed text
);
create index refresh_tokens_session_id on refresh_tokens (session_id);

-- Keys that sign access tokens (EdDSA). The newest unretired key signs; every key not yet past
-- its retirement is published in the JWKS so tokens it signed still verify.
create table signing_keys (
  kid text primary key,
  algorithm text not null,
  private_jwk jsonb not null,
  public_jwk jsonb not null,
  created_at timestamptz not null default now(),
  retired_at timestamptz
);
