-- Email verification and password reset tokens. Global like the rest of this module: a token is
-- looked up by its hash before anyone is authenticated (the link is opened from a mailbox), and
-- belongs to a user, not to an organization.
--
-- Only the SHA-256 of a token is stored. A token works once (used_at is set by a conditional
-- UPDATE, so two concurrent uses cannot both succeed) and until expires_at. Asking for a new
-- token of a purpose deletes the user's earlier tokens of that purpose.
create table email_tokens (
  hash text primary key,
  user_id uuid not null references users (id) on delete cascade,
  purpose text not null check (purpose in ('verify_email', 'reset_password')),
  expires_at timestamptz not null,
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index email_tokens_user_id_purpose on email_tokens (user_id, purpose);
