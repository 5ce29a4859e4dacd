-- End-to-end encrypted channels (`private-encrypted-…`): each app may have an encryption master
-- key (32 random bytes). The app's server SDK encrypts events with a key derived from it and the
-- channel name; `/realtime/auth` hands subscribers the same derived key (`shared_secret`); Socle
-- relays ciphertext only. Sealed like the secret (kernel secret box, bound to the app id). Null
-- until the app gets one (apps created from now on get one at creation).

alter table apps add column encryption_master_key text;

drop function app_lookup(text, text);
create function app_lookup(p_key text, p_id text)
  returns table (
    id uuid,
    tenant_id uuid,
    key text,
    secret text,
    encryption_master_key text,
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
    select a.id, a.tenant_id, a.key, a.secret, a.encryption_master_key, a.max_connections,
      a.client_events_per_second, a.backend_events_per_second, a.webhook_url
    from realtime.apps a
    where (p_key is not null and a.key = p_key) or (p_id is not null and a.id::text = p_id);
end
$$;

-- After a SECRET_KEY rotation every node reseals, at start, the sealed values of every
-- organization's apps. The rows to reseal are listed across organizations by the function below
-- (FORCE'd RLS binds its owner too, so it presents a setting for its own policy, which its SET
-- clause scopes to the call); each row is then rewritten in a transaction of its own organization,
-- under the ordinary tenant policy. The listing yields sealed values only: useless without
-- SECRET_KEY, which the server holds anyway.
create policy apps_reseal_listing on apps for select
  using (current_setting('app.realtime_reseal_listing', true) = 'on');

create function apps_to_reseal(p_current_prefix text, p_after uuid, p_limit integer)
  returns table (id uuid, tenant_id uuid, secret text, encryption_master_key text)
  language sql security definer
  set search_path = pg_catalog, pg_temp
  set app.realtime_reseal_listing = 'on'
as $$
  select a.id, a.tenant_id, a.secret, a.encryption_master_key
  from realtime.apps a
  where a.id > coalesce(p_after, '00000000-0000-0000-0000-000000000000'::uuid)
    and (
      not starts_with(a.secret, p_current_prefix)
      or not starts_with(coalesce(a.encryption_master_key, p_current_prefix), p_current_prefix)
    )
  order by a.id
  limit p_limit
$$;
