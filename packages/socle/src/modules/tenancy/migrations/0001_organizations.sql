-- Organizations are the tenants. Every table here has row-level security, enabled and forced,
-- evaluated against socle.current_tenant_id() / socle.current_user_id() (transaction settings).

create table organizations (
  id uuid primary key,
  name text not null,
  slug text not null,
  created_by uuid not null references identity.users (id),
  created_at timestamptz not null default now()
);
create unique index organizations_slug_key on organizations (slug);

create table memberships (
  tenant_id uuid not null references organizations (id) on delete cascade,
  user_id uuid not null references identity.users (id) on delete cascade,
  role text not null check (role in ('owner', 'admin', 'member', 'viewer')),
  created_at timestamptz not null default now(),
  primary key (tenant_id, user_id)
);
create index memberships_user_id on memberships (user_id);

create table invitations (
  id uuid primary key,
  tenant_id uuid not null references organizations (id) on delete cascade,
  email text not null,
  role text not null check (role in ('admin', 'member', 'viewer')),
  token_hash text not null,
  invited_by uuid not null references identity.users (id),
  expires_at timestamptz not null,
  accepted_at timestamptz,
  accepted_by uuid references identity.users (id),
  revoked_at timestamptz,
  created_at timestamptz not null default now()
);
create unique index invitations_token_hash_key on invitations (token_hash);
create index invitations_tenant_id on invitations (tenant_id);

-- A user sees their own memberships in every organization, and all memberships of the
-- organization they act in. Only the organization acted in can be written.
alter table memberships enable row level security;
alter table memberships force row level security;
create policy memberships_read on memberships for select
  using (tenant_id = socle.current_tenant_id() or user_id = socle.current_user_id());
create policy memberships_write on memberships for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());

-- An organization is visible to its members; created by the acting user; changed only while
-- acting in it.
alter table organizations enable row level security;
alter table organizations force row level security;
create policy organizations_read on organizations for select
  using (
    id = socle.current_tenant_id()
    or exists (select 1 from memberships m where m.tenant_id = organizations.id and m.user_id = socle.current_user_id())
  );
create policy organizations_create on organizations for insert
  with check (id = socle.current_tenant_id() and created_by = socle.current_user_id());
create policy organizations_change on organizations for update
  using (id = socle.current_tenant_id())
  with check (id = socle.current_tenant_id());
create policy organizations_delete on organizations for delete
  using (id = socle.current_tenant_id());

-- The recipient of an invitation is not a member yet: the one invitation whose token hash the
-- transaction presents (app.invitation_token_hash) is readable, and nothing else.
alter table invitations enable row level security;
alter table invitations force row level security;
create policy invitations_tenant on invitations for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());
create policy invitations_by_token on invitations for select
  using (token_hash = nullif(current_setting('app.invitation_token_hash', true), ''));

-- The role of a user in an organization, or null: how a request's X-Org-Id is checked, in one
-- statement. FORCE'd RLS binds the owner too, so the function acts as that user for its own
-- lookup; its SET clause restores app.user_id when it returns, so nothing leaks to the caller.
create function membership_role(p_tenant_id uuid, p_user_id uuid) returns text
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
  set app.user_id = ''
as $$
begin
  perform set_config('app.user_id', p_user_id::text, true);
  return (select m.role from tenancy.memberships m where m.tenant_id = p_tenant_id and m.user_id = p_user_id);
end
$$;
