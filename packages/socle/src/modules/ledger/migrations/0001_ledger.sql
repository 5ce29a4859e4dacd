-- The ledger: accounts of an organization and the transfers between them, double-entry, after
-- TigerBeetle's model. An account keeps four running sums (debits/credits, pending/posted) that are
-- only ever changed together with the insert of the transfer that explains them, in one
-- transaction; reconciliation recomputes them from the transfers.

create table accounts (
  id uuid primary key,
  tenant_id uuid not null references tenancy.organizations (id) on delete cascade,
  -- Who holds the value: a person (owner_user_id), the organization itself, or the system
  -- (revenue, a payment provider's clearing account...). 'erased': a person erased by GDPR
  -- erasure; the account and its amounts stay so every unit still sums to zero.
  owner_kind text not null check (owner_kind in ('user', 'tenant', 'system', 'erased')),
  owner_user_id uuid,
  -- ISO 4217 code (EUR, XOF, BTC is not one: use an app unit such as 'sats') or an app unit in
  -- lower case ('credits', 'coins'); scale is the exponent of the minor unit (EUR 2, XOF 0).
  unit text not null,
  scale smallint not null check (scale between 0 and 18),
  code text,
  debits_must_not_exceed_credits boolean not null default false,
  credits_must_not_exceed_debits boolean not null default false,
  debits_pending bigint not null default 0,
  debits_posted bigint not null default 0,
  credits_pending bigint not null default 0,
  credits_posted bigint not null default 0,
  metadata jsonb not null default '{}',
  created_at timestamptz not null,
  check ((owner_kind = 'user') = (owner_user_id is not null)),
  check (not (debits_must_not_exceed_credits and credits_must_not_exceed_debits)),
  -- The last line of defence of the balance rules: the service checks them under the row lock and
  -- answers ledger.insufficient_funds; these make a bug a failed transaction, never a negative.
  check (not debits_must_not_exceed_credits or debits_pending + debits_posted <= credits_posted),
  check (not credits_must_not_exceed_debits or credits_pending + credits_posted <= debits_posted),
  check (debits_pending >= 0 and debits_posted >= 0 and credits_pending >= 0 and credits_posted >= 0)
);
create index accounts_tenant on accounts (tenant_id, created_at, id);
create index accounts_owner on accounts (owner_user_id, tenant_id) where owner_user_id is not null;

alter table accounts enable row level security;
alter table accounts force row level security;
create policy accounts_tenant on accounts
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());

-- Every movement of value. Immutable: a correction is a new transfer (a reversal names the one it
-- reverses). A hold ('hold', pending) is resolved by at most one 'post', 'void' or 'expire' row
-- naming it in hold_id (the unique index below), so its state is derived, never updated.
--
-- No foreign keys: every insert would take FOR KEY SHARE on the hot account rows and on the one
-- organization row, which research measured at a sixth of the throughput under contention. The
-- service checks both accounts exist (it holds their row locks) before inserting.
create table transfers (
  tenant_id uuid not null,
  -- Client-supplied: the idempotency key of the transfer.
  id text not null,
  seq bigint generated always as identity,
  kind text not null check (kind in ('transfer', 'hold', 'post', 'void', 'expire')),
  debit_account_id uuid not null,
  credit_account_id uuid not null,
  amount bigint not null check (amount >= 0),
  unit text not null,
  hold_id text,
  reverses_id text,
  expires_at timestamptz,
  code text,
  metadata jsonb not null default '{}',
  created_at timestamptz not null,
  primary key (tenant_id, id),
  check (debit_account_id <> credit_account_id),
  check ((kind in ('post', 'void', 'expire')) = (hold_id is not null)),
  check ((kind = 'hold') or expires_at is null)
);
create unique index transfers_resolution on transfers (tenant_id, hold_id) where hold_id is not null;
create index transfers_reversals on transfers (tenant_id, reverses_id) where reverses_id is not null;
create index transfers_debit on transfers (debit_account_id, seq);
create index transfers_credit on transfers (credit_account_id, seq);
create index transfers_tenant_seq on transfers (tenant_id, seq);
create index transfers_code on transfers (tenant_id, code, seq) where code is not null;
create index transfers_hold_expiry on transfers (expires_at) where kind = 'hold';

alter table transfers enable row level security;
alter table transfers force row level security;
create policy transfers_tenant on transfers
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());

-- Append-only for the application role, as audit events are: privileges revoked, and a trigger
-- refusing update/delete/truncate to every role but the table's owner (the migration role, which
-- erasure uses to pseudonymize metadata).
do $$
declare
  grantee text;
begin
  for grantee in
    select distinct g.rolname
      from pg_class c
      cross join lateral aclexplode(c.relacl) acl
      join pg_roles g on g.oid = acl.grantee
     where c.oid = 'transfers'::regclass
       and acl.grantee <> c.relowner
       and acl.privilege_type in ('UPDATE', 'DELETE', 'TRUNCATE')
  loop
    execute format('revoke update, delete, truncate on transfers from %I', grantee);
  end loop;
end
$$;
revoke update, delete, truncate on transfers from public;

create function refuse_transfer_changes() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
begin
  if current_user <> (select pg_get_userbyid(c.relowner) from pg_class c where c.oid = tg_relid) then
    raise exception 'ledger transfers are immutable: % is refused to %', tg_op, current_user
      using errcode = 'insufficient_privilege';
  end if;
  return case tg_op when 'DELETE' then old else new end;
end
$$;
create trigger transfers_immutable before update or delete on transfers
  for each row execute function refuse_transfer_changes();
create trigger transfers_no_truncate before truncate on transfers
  for each statement execute function refuse_transfer_changes();
