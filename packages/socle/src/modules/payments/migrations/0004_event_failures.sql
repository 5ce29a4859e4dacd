-- Provider events whose effect failed: the transaction that stores an event and applies it rolled
-- back (an app's handler threw, the ledger refused, the database failed), so the event left no row
-- in `events`. The failure is written after the rollback, in a transaction of its own, keyed like
-- the event: a redelivery that fails again counts one more attempt. A delivery that succeeds
-- writes nothing here: an event is applied when its row is in `events`, which the lists read, so
-- the success path (and exactly-once, still the primary key of `events`) is unchanged.
create table event_failures (
  provider text not null,
  event_id text not null,
  tenant_id uuid not null default socle.current_tenant_id()
    references tenancy.organizations (id) on delete cascade,
  payment_id uuid not null,
  type text not null,
  error_code text not null,
  error_message text not null,
  attempts integer not null default 1 check (attempts > 0),
  first_seen_at timestamptz not null,
  last_seen_at timestamptz not null,
  -- The event as the provider's adapter verified and read it (ids, state change, payload): a retry
  -- applies it again without the provider redelivering it.
  verified jsonb not null,
  primary key (provider, event_id)
);
create index event_failures_seen on event_failures (tenant_id, last_seen_at);

alter table event_failures enable row level security;
alter table event_failures force row level security;
create policy event_failures_tenant on event_failures for all
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());
