-- The results of reconciliation (the hourly job's and the operator's on-demand runs): when, whether
-- every account and unit balanced, and what drifted. Global (it spans every organization), read by
-- the operator only; the latest row is what the console's Ledger page and the metric show.
create table reconciliations (
  id bigint generated always as identity primary key,
  checked_at timestamptz not null,
  -- 'schedule' (the hourly job) or 'operator' (POST /operator/ledger/reconciliation).
  trigger text not null check (trigger in ('schedule', 'operator')),
  ok boolean not null,
  -- The drifted accounts and unbalanced units, as the report lists them.
  drift jsonb not null
);
create index reconciliations_latest on reconciliations (checked_at desc);
