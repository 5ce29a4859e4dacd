-- Second factor: TOTP (RFC 6238) with single-use recovery codes, and the challenge that links the
-- two steps of a sign-in. Global tables like the rest of this module (a user's second factor is
-- not inside any one organization): they are read keyed by the authenticated user or by the hash
-- of a challenge token, never by tenant.

-- A pending enrolment has a secret and no confirmed_at; 2FA is on once confirmed_at is set.
-- totp_last_step is the RFC 6238 time step of the last code accepted: a code of that step or an
-- earlier one is refused, so an observed code cannot be used a second time.
alter table users
  add column totp_secret text,
  add column totp_confirmed_at timestamptz,
  add column totp_last_step bigint,
  add constraint users_totp_confirmed_has_secret
    check (totp_confirmed_at is null or totp_secret is not null);

-- SHA-256 of each recovery code (each has 60 random bits, so a fast hash is enough); a used code
-- keeps its row with used_at set, so it is refused rather than unknown.
create table recovery_codes (
  user_id uuid not null references users (id) on delete cascade,
  code_hash text not null,
  used_at timestamptz,
  primary key (user_id, code_hash)
);

-- The second step of a sign-in: a correct password with 2FA on creates one, and the client
-- presents its token with a code. Single use, short-lived, and burnt after a few wrong codes.
create table mfa_challenges (
  hash text primary key,
  user_id uuid not null references users (id) on delete cascade,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  used_at timestamptz,
  failed_attempts integer not null default 0,
  -- user agent and IP of the password step
  client jsonb
);
create index mfa_challenges_user_id on mfa_challenges (user_id);
