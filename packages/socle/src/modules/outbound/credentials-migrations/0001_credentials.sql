-- Each organization's own key for an outbound provider (its OpenAI or Replicate account), sealed
-- with the kernel's secret box (AES-256-GCM, bound to the organization and the provider): a dump
-- or a backup does not reveal it, and a sealed key copied onto another row does not open.
create table credentials (
  tenant_id uuid not null default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  provider text not null check (provider ~ '^[a-z][a-z0-9_-]{0,62}$'),
  sealed_key text not null,
  -- The last characters of the key, for an admin to recognise it; never the key.
  hint text not null,
  updated_at timestamptz not null default now(),
  primary key (tenant_id, provider)
);

alter table credentials enable row level security;
alter table credentials force row level security;
create policy credentials_tenant on credentials
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());
