-- Runs in the module's schema ("notes"), on Postgres and on embedded PGlite alike.
create table notes (
  id uuid primary key,
  user_id uuid not null,
  body text not null,
  created_at timestamptz not null
);
create index notes_by_user on notes (user_id, created_at);
