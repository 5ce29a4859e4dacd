-- One row per erasure (GDPR art. 17) and which modules have finished theirs, so an erasure
-- interrupted by a crash resumes where it stopped. Global: a person spans organizations.
create table erasure_runs (
  id uuid primary key,
  user_id uuid not null,
  -- the email when the erasure started: identity pseudonymizes it, other modules still need it
  email text not null,
  started_at timestamptz not null default now(),
  completed_at timestamptz,
  completed_modules text[] not null default '{}',
  last_error text
);
create index erasure_runs_user_id on erasure_runs (user_id);
