-- Realtime apps of organizations: the key/secret pairs Pusher clients (key) and server SDKs
-- (id, key, secret) use. The secret cannot be hashed (every channel authorization and HTTP API
-- signature is an HMAC computed with it): it is sealed with the kernel secret box (AES-256-GCM,
-- SECRET_KEY, bound to the app id). Row-level security confines the row to the organization's
-- transactions; the listing never returns the secret (only creation and rotation do).

create table apps (
  id uuid primary key,
  tenant_id uuid not null references tenancy.organizations (id) on delete cascade,
  name text not null,
  key text not null,
  secret text not null,
  max_connections integer not null default 0 check (max_connections >= 0),
  client_events_per_second integer not null default 10 check (client_events_per_second > 0),
  backend_events_per_second integer not null default 0 check (backend_events_per_second >= 0),
  webhook_url text,
  created_at timestamptz not null default now(),
  secret_rotated_at timestamptz
);
create unique index apps_key_key on apps (key);
create index apps_tenant_id on apps (tenant_id);

alter table apps enable row level security;
alter table apps force row level security;
create policy apps_tenant on apps for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());
-- The one app a connection or HTTP API call names (by key or id) is readable before any
-- organization is known; the lookup function below presents it.
create policy apps_lookup on apps for select
  using (
    key = nullif(current_setting('app.realtime_app_key', true), '')
    or id::text = nullif(current_setting('app.realtime_app_id', true), '')
  );

create function app_lookup(p_key text, p_id text)
  returns table (
    id uuid,
    tenant_id uuid,
    key text,
    secret text,
    max_connections integer,
    client_events_per_second integer,
    backend_events_per_second integer,
    webhook_url text
  )
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
  set app.realtime_app_key = ''
  set app.realtime_app_id = ''
as $$
begin
  perform set_config('app.realtime_app_key', coalesce(p_key, ''), true);
  perform set_config('app.realtime_app_id', coalesce(p_id, ''), true);
  return query
    select a.id, a.tenant_id, a.key, a.secret, a.max_connections, a.client_events_per_second,
      a.backend_events_per_second, a.webhook_url
    from realtime.apps a
    where (p_key is not null and a.key = p_key) or (p_id is not null and a.id::text = p_id);
end
$$;
