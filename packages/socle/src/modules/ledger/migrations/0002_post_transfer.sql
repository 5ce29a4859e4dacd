-- The hot path of the ledger: one posted transfer between two accounts, in one statement. A
-- batch, a hold, a post, a void or a reversal goes through the general path in TypeScript
-- (ledger.service.ts), which follows the same steps over several statements; this function
-- exists because the lock on a hot account is held from the lock to COMMIT, and here that is one
-- round trip instead of five (measured by the ledger-transfers bench scenario).
--
-- Runs as the caller (row-level security applies; the tenant is the transaction's). Each
-- statement of a PL/pgSQL function takes a new snapshot under READ COMMITTED, so what is read
-- after the lock includes whatever the transaction that held it committed.
create function post_transfer(
  p_id text,
  p_debit_account_id uuid,
  p_credit_account_id uuid,
  p_amount bigint,
  p_code text,
  p_metadata jsonb,
  p_created_at timestamptz
) returns table (
  outcome text,
  id text,
  seq bigint,
  kind text,
  debit_account_id uuid,
  credit_account_id uuid,
  amount bigint,
  unit text,
  hold_id text,
  reverses_id text,
  expires_at timestamptz,
  code text,
  metadata jsonb,
  created_at timestamptz
)
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  debit ledger.accounts%rowtype;
  credit ledger.accounts%rowtype;
  existing ledger.transfers%rowtype;
begin
  -- Both rows, in ascending id order, as every batch locks them (see lockAccounts).
  perform 1 from ledger.accounts a
    where a.id in (p_debit_account_id, p_credit_account_id)
    order by a.id
    for no key update;
  select * into debit from ledger.accounts a where a.id = p_debit_account_id;
  if not found then
    return query select 'debit_not_found'::text, null::text, null::bigint, null::text, null::uuid, null::uuid,
      null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb, null::timestamptz;
    return;
  end if;
  select * into credit from ledger.accounts a where a.id = p_credit_account_id;
  if not found then
    return query select 'credit_not_found'::text, null::text, null::bigint, null::text, null::uuid, null::uuid,
      null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb, null::timestamptz;
    return;
  end if;
  select * into existing from ledger.transfers t
    where t.tenant_id = socle.current_tenant_id() and t.id = p_id;
  if found then
    -- The caller compares the content: the original, or ledger.idempotency_conflict.
    return query select 'replay'::text, existing.id, existing.seq, existing.kind, existing.debit_account_id,
      existing.credit_account_id, existing.amount, existing.unit, existing.hold_id, existing.reverses_id,
      existing.expires_at, existing.code, existing.metadata, existing.created_at;
    return;
  end if;
  if debit.unit <> credit.unit then
    return query select 'unit_mismatch'::text, debit.unit, null::bigint, credit.unit, null::uuid, null::uuid,
      null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb, null::timestamptz;
    return;
  end if;
  if debit.debits_must_not_exceed_credits
     and debit.debits_pending + debit.debits_posted + p_amount > debit.credits_posted then
    return query select 'insufficient_debit'::text, null::text, null::bigint, null::text, null::uuid, null::uuid,
      null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb, null::timestamptz;
    return;
  end if;
  if credit.credits_must_not_exceed_debits
     and credit.credits_pending + credit.credits_posted + p_amount > credit.debits_posted then
    return query select 'insufficient_credit'::text, null::text, null::bigint, null::text, null::uuid, null::uuid,
      null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb, null::timestamptz;
    return;
  end if;
  insert into ledger.transfers as t (tenant_id, id, kind, debit_account_id, credit_account_id, amount, unit,
                                     code, metadata, created_at)
    values (socle.current_tenant_id(), p_id, 'transfer', p_debit_account_id, p_credit_account_id, p_amount,
            debit.unit, p_code, coalesce(p_metadata, '{}'), p_created_at)
    on conflict do nothing
    returning * into existing;
  if not found then
    -- The same id committed meanwhile by a transfer between other accounts: the caller retries.
    return query select 'concurrent'::text, null::text, null::bigint, null::text, null::uuid, null::uuid,
      null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb, null::timestamptz;
    return;
  end if;
  update ledger.accounts a set debits_posted = a.debits_posted + p_amount where a.id = p_debit_account_id;
  update ledger.accounts a set credits_posted = a.credits_posted + p_amount where a.id = p_credit_account_id;
  return query select 'ok'::text, existing.id, existing.seq, existing.kind, existing.debit_account_id,
    existing.credit_account_id, existing.amount, existing.unit, existing.hold_id, existing.reverses_id,
    existing.expires_at, existing.code, existing.metadata, existing.created_at;
end
$$;
