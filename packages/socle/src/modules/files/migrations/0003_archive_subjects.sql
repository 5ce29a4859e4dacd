-- Record archives (buckets declared with `recordArchive`): objects holding many people's records,
-- gzip-compressed NDJSON (old chat exported by a nightly job). Which people each names, written in
-- the transaction that records the object, so a privacy request finds the archives to read
-- (export) or rewrite without the person's records (erasure) without reading every archive.
create table archive_subjects (
  object_id uuid not null references objects (id) on delete cascade,
  tenant_id uuid not null,
  user_id uuid not null,
  primary key (object_id, user_id)
);
create index archive_subjects_user on archive_subjects (user_id);

alter table archive_subjects enable row level security;
alter table archive_subjects force row level security;
create policy archive_subjects_tenant on archive_subjects
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());
