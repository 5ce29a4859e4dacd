-- The hot path again (migration 0002's ledger.post_transfer), with less work under the account
-- locks, which are what 50 clients on 10 hot accounts queue for (measured by the
-- ledger-transfers bench scenario; see docs/ledger.md#performance):
--   * the lock statement returns the locked rows (0002 locked, then read each row again);
--   * no replay lookup before the insert: INSERT … ON CONFLICT DO NOTHING is the lookup, and the
--     existing row is read only when the insert found one, or when the transfer is refused (a
--     replay answers the original even if the balance no longer covers it);
--   * one UPDATE of both accounts instead of two.
-- It also returns what the owners of person accounts are told after the commit (their new
-- balances), so the push needs no other read.
--
-- Same contract otherwise: runs as the caller (row-level security applies; the tenant is the
-- transaction's). Each statement of a PL/pgSQL function takes a new snapshot under READ
-- COMMITTED, and a row locked FOR NO KEY UPDATE is returned as its latest committed version, so
-- the sums read with the lock include whatever the transaction that held it wrote.
drop function post_transfer(text, uuid, uuid, bigint, text, jsonb, timestamptz);

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
  created_at timestamptz,
  -- On 'ok': the new sums of the accounts owned by a person (null when neither is), as decimal
  -- strings: [{ userId, accountId, unit, scale, code, debitsPending, debitsPosted, creditsPending, creditsPosted }].
  pushes jsonb
)
  language plpgsql
  set search_path = pg_catalog, pg_temp
as $$
#variable_conflict use_column
declare
  locked ledger.accounts%rowtype;
  debit ledger.accounts%rowtype;
  credit ledger.accounts%rowtype;
  written ledger.transfers%rowtype;
  refusal text;
  owners jsonb;
begin
  -- Both rows, in ascending id order, as every batch locks them (see lockAccounts).
  for locked in
    select * from ledger.accounts a
     where a.id in (p_debit_account_id, p_credit_account_id)
     order by a.id
       for no key update
  loop
    if locked.id = p_debit_account_id then debit := locked; else credit := locked; end if;
  end loop;
  if debit.id is null then
    return query select 'debit_not_found'::text, null::text, null::bigint, null::text, null::uuid, null::uuid,
      null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb,
      null::timestamptz, null::jsonb;
    return;
  end if;
  if credit.id is null then
    return query select 'credit_not_found'::text, null::text, null::bigint, null::text, null::uuid, null::uuid,
      null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb,
      null::timestamptz, null::jsonb;
    return;
  end if;

  if debit.unit <> credit.unit then
    refusal := 'unit_mismatch';
  elsif debit.debits_must_not_exceed_credits
        and debit.debits_pending + debit.debits_posted + p_amount > debit.credits_posted then
    refusal := 'insufficient_debit';
  elsif credit.credits_must_not_exceed_debits
        and credit.credits_pending + credit.credits_posted + p_amount > credit.debits_posted then
    refusal := 'insufficient_credit';
  end if;

  if refusal is null then
    insert into ledger.transfers as t (tenant_id, id, kind, debit_account_id, credit_account_id, amount, unit,
                                       code, metadata, created_at)
      values (socle.current_tenant_id(), p_id, 'transfer', p_debit_account_id, p_credit_account_id, p_amount,
              debit.unit, p_code, coalesce(p_metadata, '{}'), p_created_at)
      on conflict do nothing
      returning * into written;
    if found then
      update ledger.accounts a
         set debits_posted = a.debits_posted + case when a.id = p_debit_account_id then p_amount else 0 end,
             credits_posted = a.credits_posted + case when a.id = p_credit_account_id then p_amount else 0 end
       where a.id in (p_debit_account_id, p_credit_account_id);
      if debit.owner_kind = 'user' or credit.owner_kind = 'user' then
        select jsonb_agg(jsonb_build_object(
                 'userId', o.owner_user_id, 'accountId', o.id, 'unit', o.unit, 'scale', o.scale, 'code', o.code,
                 'debitsPending', o.debits_pending::text, 'debitsPosted', o.debits_posted::text,
                 'creditsPending', o.credits_pending::text, 'creditsPosted', o.credits_posted::text))
          into owners
          from (select debit.owner_user_id, debit.id, debit.unit, debit.scale, debit.code, debit.debits_pending,
                       debit.debits_posted + p_amount, debit.credits_pending, debit.credits_posted
                 where debit.owner_kind = 'user'
                union all
                select credit.owner_user_id, credit.id, credit.unit, credit.scale, credit.code, credit.debits_pending,
                       credit.debits_posted, credit.credits_pending, credit.credits_posted + p_amount
                 where credit.owner_kind = 'user')
            as o (owner_user_id, id, unit, scale, code, debits_pending, debits_posted, credits_pending, credits_posted);
      end if;
      return query select 'ok'::text, written.id, written.seq, written.kind, written.debit_account_id,
        written.credit_account_id, written.amount, written.unit, written.hold_id, written.reverses_id,
        written.expires_at, written.code, written.metadata, written.created_at, owners;
      return;
    end if;
  end if;

  -- The id is taken (the insert found it: committed, or waited for), or the transfer is refused:
  -- a replay answers the original, whatever the balances say now. The caller compares the content.
  select * into written from ledger.transfers t
   where t.tenant_id = socle.current_tenant_id() and t.id = p_id;
  if found then
    return query select 'replay'::text, written.id, written.seq, written.kind, written.debit_account_id,
      written.credit_account_id, written.amount, written.unit, written.hold_id, written.reverses_id,
      written.expires_at, written.code, written.metadata, written.created_at, null::jsonb;
    return;
  end if;
  if refusal is null then
    -- Taken by a transaction that then rolled back between the insert and this read: retry.
    return query select 'concurrent'::text, null::text, null::bigint, null::text, null::uuid, null::uuid,
      null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb,
      null::timestamptz, null::jsonb;
    return;
  end if;
  -- unit_mismatch returns the two units in `id` and `kind`.
  return query select refusal, debit.unit, null::bigint, credit.unit, null::uuid, null::uuid,
    null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb,
    null::timestamptz, null::jsonb;
end
$$;
