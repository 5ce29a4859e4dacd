-- Chargebacks: a dispute opened at the provider holds back the disputed share of a purchase's
-- credits until it closes; won gives them back, lost keeps them reversed. One row per dispute with
-- its latest state, set by the provider's event time (an older event changes nothing; won and lost
-- are final), so redelivered and reordered dispute events apply by state.
create table disputes (
  provider text not null,
  dispute_id text not null,
  tenant_id uuid not null default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  payment_id uuid not null,
  -- The disputed amount, in the payment's minor units.
  amount bigint not null check (amount >= 0),
  -- Stripe's: needs_response, under_review, won, lost, warning_* (an inquiry: no funds withdrawn).
  status text not null,
  state_at timestamptz not null,
  primary key (provider, dispute_id)
);
create index disputes_payment on disputes (payment_id);

alter table disputes enable row level security;
alter table disputes force row level security;
create policy disputes_tenant on disputes for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());

-- Credits given back when a dispute was won (a new transfer to the wallet): what is held back now
-- is reversed_credits - restored_credits; reversed_credits alone never exceeds the purchase's
-- credits (the ledger bounds a transfer's reversals).
alter table payments add column restored_credits bigint not null default 0 check (restored_credits >= 0);
