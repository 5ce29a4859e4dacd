-- Files: one row per stored object, written only once its bytes are complete and verified
-- (size, sha256, sniffed type). Tenant-scoped objects are visible to their organization; per-user
-- objects (tenant_id null) to their owner only.

create table objects (
  id uuid primary key,
  tenant_id uuid,
  owner_id uuid,
  bucket text not null,
  blob_key text not null unique,
  name text,
  size bigint not null check (size >= 0),
  sha256 text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  content_type text not null,
  metadata jsonb not null default '{}',
  storage_class text not null default 'standard' check (storage_class in ('standard', 'archive')),
  created_at timestamptz not null default now(),
  check (tenant_id is not null or owner_id is not null)
);
create index objects_tenant_bucket on objects (tenant_id, bucket, created_at);
create index objects_owner on objects (owner_id, created_at);

alter table objects enable row level security;
alter table objects force row level security;
create policy objects_scope on objects
  using (
    (tenant_id is not null and tenant_id = socle.current_tenant_id())
    or (tenant_id is null and owner_id = socle.current_user_id()))
  with check (
    (tenant_id is not null and tenant_id = socle.current_tenant_id())
    or (tenant_id is null and owner_id = socle.current_user_id()));

-- Bytes and objects per scope (an organization, or a user for per-user buckets): the quota is
-- checked and charged in the transaction that writes the object. No file names or contents; the
-- lifecycle and cleanup jobs walk it to visit each scope under its own row-level security.
create table usage (
  scope_id uuid primary key,
  scope_kind text not null check (scope_kind in ('tenant', 'user')),
  bytes bigint not null default 0 check (bytes >= 0),
  objects bigint not null default 0 check (objects >= 0)
);

-- The key that signs download links (HMAC), sealed with SECRET_KEY; one per deployment.
create table signing_keys (
  id text primary key,
  sealed_key text not null,
  created_at timestamptz not null default now()
);
