-- Payments: what a person bought through a provider (Stripe, a Bitcoin processor), the provider
-- events that told us, the subscriptions they hold, and the ledger accounts their credits land in.
-- A provider event is stored and its effect posted to the ledger in one transaction: the event's
-- primary key (provider, provider event id) makes a redelivery, a replay or a concurrent copy a
-- no-op, and the payment row (locked while an effect is applied) makes two events about one
-- object (a completion and an async success, a refund before its payment) apply by state.

-- A payment: one checkout or invoice at a provider, from creation to settlement and refund.
create table payments (
  id uuid primary key,
  tenant_id uuid not null default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  -- Null once the person is erased (accounting keeps the amounts and dates).
  user_id uuid,
  provider text not null,
  -- The provider's object: a Checkout Session id, an invoice id.
  provider_reference text not null,
  -- Learned from events: the PaymentIntent, the subscription, the customer.
  provider_payment_id text,
  provider_subscription_id text,
  provider_customer_id text,
  kind text not null check (kind in ('pack', 'subscription', 'invoice')),
  product_id text,
  -- The app's own reference (an order, an appointment), unique per organization when given.
  order_id text,
  status text not null check (status in ('pending', 'succeeded', 'failed', 'expired')),
  -- What is charged, in minor units of a currency (EUR cents).
  amount bigint not null check (amount >= 0),
  currency text not null,
  -- What the provider says was refunded so far, in the same minor units (only ever grows).
  refunded_amount bigint not null default 0 check (refunded_amount >= 0),
  -- What it credits (a pack, a subscription's first grant) in a ledger unit; 0 for an invoice.
  credits bigint not null default 0 check (credits >= 0),
  unit text,
  -- The ledger transfer of the credit, once posted; reversals name it.
  transfer_id text,
  -- Credits moved back by refunds so far.
  reversed_credits bigint not null default 0 check (reversed_credits >= 0),
  -- Bitcoin invoices: amount in sats, the payment URI (BIP21), when it expires.
  amount_sats bigint,
  payment_uri text,
  checkout_url text,
  expires_at timestamptz,
  metadata jsonb not null default '{}',
  created_at timestamptz not null,
  updated_at timestamptz not null,
  settled_at timestamptz,
  unique (provider, provider_reference)
);
create index payments_user on payments (tenant_id, user_id, created_at);
create unique index payments_order on payments (tenant_id, order_id) where order_id is not null;
create index payments_pending on payments (provider, created_at) where status = 'pending';
create index payments_provider_payment on payments (provider, provider_payment_id)
  where provider_payment_id is not null;

alter table payments enable row level security;
alter table payments force row level security;
create policy payments_tenant on payments for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());

-- Every provider event accepted, keyed by the provider's event id (Stripe `evt_…`; BTCPay has
-- a new delivery id per redelivery, so its key is invoice + event type). Inserted before the
-- effect, in the same transaction: a second copy finds the row (or waits for the first to
-- commit or roll back) and applies nothing.
create table events (
  provider text not null,
  event_id text not null,
  tenant_id uuid not null default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  type text not null,
  payment_id uuid,
  -- When the provider says it happened (orders events about one object).
  occurred_at timestamptz not null,
  received_at timestamptz not null,
  -- What the event did: 'credited', 'reversed', 'ignored' ...
  outcome text not null,
  payload jsonb not null,
  primary key (provider, event_id)
);
create index events_payment on events (payment_id, occurred_at) where payment_id is not null;

alter table events enable row level security;
alter table events force row level security;
create policy events_tenant on events for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());

-- A subscription at a provider, as its events describe it (the latest event wins; canceled is
-- final).
create table subscriptions (
  id uuid primary key,
  tenant_id uuid not null default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  user_id uuid,
  provider text not null,
  provider_subscription_id text not null,
  product_id text not null,
  status text not null,
  current_period_end timestamptz,
  cancel_at_period_end boolean not null default false,
  -- The provider time of the event that set this state: an older event changes nothing.
  state_at timestamptz not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  unique (provider, provider_subscription_id)
);
create index subscriptions_user on subscriptions (tenant_id, user_id);

alter table subscriptions enable row level security;
alter table subscriptions force row level security;
create policy subscriptions_tenant on subscriptions for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());

-- The ledger accounts payments credit: a person's wallet per unit, and the organization's source
-- of that unit (owner_user_id null). The insert of this row is what serializes two first
-- purchases of one person: the second waits on the unique key, then reads the first's account.
create table wallets (
  tenant_id uuid not null default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  owner text not null,
  unit text not null,
  account_id uuid not null,
  primary key (tenant_id, owner, unit)
);

alter table wallets enable row level security;
alter table wallets force row level security;
create policy wallets_tenant on wallets for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());

-- Which organization a provider object belongs to. Webhooks arrive without one; this maps the
-- ids a provider names in its events (a session, a PaymentIntent, a subscription, an invoice) to
-- the organization whose transaction applies them. Ids only: no person, no amount.
create table provider_references (
  provider text not null,
  reference text not null,
  tenant_id uuid not null references tenancy.organizations (id) on delete cascade,
  payment_id uuid not null,
  primary key (provider, reference)
);
