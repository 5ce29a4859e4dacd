-- The audit log: one row per mutating HTTP request. Rows of an organization are visible to that
-- organization only; rows outside any organization (sign-up, sign-in) have no tenant and are
-- visible to no application session, only to the operators (the owner role).

create table events (
  id uuid primary key,
  tenant_id uuid references tenancy.organizations (id) on delete cascade,
  occurred_at timestamptz not null default now(),
  actor_user_id uuid,
  actor_api_key_id uuid,
  action text not null,
  target text,
  changed_fields text[] not null default '{}',
  status integer not null,
  ip text,
  user_agent text,
  request_id text
);
-- Listing walks (occurred_at desc, id desc) within one organization: keyset pagination.
create index events_tenant_occurred_at on events (tenant_id, occurred_at desc, id desc);
-- Everything one user did (the actor filter, and GDPR export/erase across organizations).
create index events_actor on events (actor_user_id, occurred_at desc, id desc);

alter table events enable row level security;
alter table events force row level security;
create policy events_read on events for select
  using (tenant_id = socle.current_tenant_id());
create policy events_write on events for insert
  with check (tenant_id is null or tenant_id = socle.current_tenant_id());

-- Append-only, in two layers, whatever DATABASE_APP_ROLE is called (a migration is static SQL and
-- does not know the name):
-- 1. Privileges: the default privileges of this schema granted the application role update and
--    delete on this new table. Revoke them from every role other than the owner that holds them
--    (on a table created two statements ago, that is the application role), and from PUBLIC.
--    No update or delete policy exists either, so even a grant added later matches no row.
-- 2. A trigger refuses update, delete and truncate to every role except the table's owner (the
--    migration role, which an operator uses for retention), even a role granted the privileges
--    later. Foreign-key cascades (deleting an organization) run as the owner and pass.
do $$
declare
  grantee text;
begin
  for grantee in
    select distinct g.rolname
      from pg_class c
      cross join lateral aclexplode(c.relacl) acl
      join pg_roles g on g.oid = acl.grantee
     where c.oid = 'events'::regclass
       and acl.grantee <> c.relowner
       and acl.privilege_type in ('UPDATE', 'DELETE', 'TRUNCATE')
  loop
    execute format('revoke update, delete, truncate on events from %I', grantee);
  end loop;
end
$$;
revoke update, delete, truncate on events from public;

create function refuse_event_changes() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if current_user <> (select pg_get_userbyid(c.relowner) from pg_class c where c.oid = tg_relid) then
    raise exception 'audit events are append-only: % is refused to %', tg_op, current_user
      using errcode = 'insufficient_privilege';
  end if;
  return case tg_op when 'DELETE' then old else new end;
end
$$;
create trigger events_append_only before update or delete on events
  for each row execute function refuse_event_changes();
create trigger events_no_truncate before truncate on events
  for each statement execute function refuse_event_changes();
