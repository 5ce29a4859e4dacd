-- Runs in the module's schema ("notes"), on Postgres and on embedded PGlite alike.
-- A tenant table: every row belongs to one organization, and row-level security, enabled and
-- forced (the table's owner is confined too), shows a transaction only the rows of the
-- organization it acts in (`app.tenant_id`, set by the kernel from the request or the job).

create table notes (
  id uuid primary key,
  tenant_id uuid not null default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  author_id uuid not null references identity.users (id),
  body text not null,
  created_at timestamptz not null,
  -- Deleting a note marks it; the daily purge job removes it for good later.
  deleted_at timestamptz
);
create index notes_by_tenant on notes (tenant_id, created_at, id) where deleted_at is null;
create index notes_by_author on notes (author_id);
create index notes_deleted on notes (deleted_at) where deleted_at is not null;

alter table notes enable row level security;
alter table notes force row level security;
create policy notes_tenant on notes for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());
