-- API keys: credentials of an organization for servers and scripts. Only the SHA-256 of a key is
-- stored; `prefix` (e.g. sk_AbCd1234) is the visible start of the key, shown in listings.

create table api_keys (
  id uuid primary key,
  tenant_id uuid not null references organizations (id) on delete cascade,
  name text not null,
  prefix text not null,
  key_hash text not null,
  scopes text[] not null,
  role text not null check (role in ('admin', 'member', 'viewer')),
  created_by uuid not null references identity.users (id),
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  expires_at timestamptz,
  revoked_at timestamptz
);
create unique index api_keys_key_hash_key on api_keys (key_hash);
create index api_keys_tenant_id on api_keys (tenant_id);

-- Managed while acting in the organization; the one key whose hash the transaction presents
-- (app.api_key_hash) is readable without it, which is how a request's key is found.
alter table api_keys enable row level security;
alter table api_keys force row level security;
create policy api_keys_tenant on api_keys for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());
create policy api_keys_by_hash on api_keys for select
  using (key_hash = nullif(current_setting('app.api_key_hash', true), ''));

-- The key with this hash, if any, in one statement: how an X-Api-Key request is authenticated
-- before its organization is known. FORCE'd RLS binds the owner too, so the function presents the
-- hash for its own lookup; its SET clause restores app.api_key_hash when it returns.
create function api_key_by_hash(p_hash text)
  returns table (
    id uuid,
    tenant_id uuid,
    created_by uuid,
    scopes text[],
    role text,
    expires_at timestamptz,
    revoked_at timestamptz
  )
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
  set app.api_key_hash = ''
as $$
begin
  perform set_config('app.api_key_hash', p_hash, true);
  return query
    select k.id, k.tenant_id, k.created_by, k.scopes, k.role, k.expires_at, k.revoked_at
    from tenancy.api_keys k
    where k.key_hash = p_hash;
end
$$;
