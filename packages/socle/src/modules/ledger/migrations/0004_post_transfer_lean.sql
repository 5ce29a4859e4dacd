-- The hot path again (migration 0003's ledger.post_transfer), for less Postgres CPU per transfer
-- (profiled with perf on a Postgres backend; see docs/ledger.md#performance):
--   * the two account rows are locked by two single-row reads in ascending id order instead of a
--     cursor loop over a sorted two-row scan (no portal, no sort; same global lock order);
--   * on 'ok' it answers only what the caller did not send (seq, unit, metadata as stored, the
--     pushes): the other columns are null, and the caller builds the transfer from its own values;
--   * no `set search_path` clause: a function with one is called through fmgr_security_definer,
--     which saves and restores the setting on every call. The function runs as the caller
--     (security invoker, no privilege to escalate) and names every relation with its schema.
-- Same contract otherwise (0003's comment).
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
as $$
#variable_conflict use_column
declare
  debit ledger.accounts%rowtype;
  credit ledger.accounts%rowtype;
  written ledger.transfers%rowtype;
  refusal text;
  owners jsonb;
begin
  -- Both rows, in ascending id order, as every batch locks them (see lockAccounts): two
  -- single-row locking reads in that order (uuid `<` is the btree's order), not a sorted cursor.
  if p_debit_account_id < p_credit_account_id then
    select * into debit from ledger.accounts a where a.id = p_debit_account_id for no key update;
    select * into credit from ledger.accounts a where a.id = p_credit_account_id for no key update;
  else
    select * into credit from ledger.accounts a where a.id = p_credit_account_id for no key update;
    select * into debit from ledger.accounts a where a.id = p_debit_account_id for no key update;
  end if;
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
      -- The caller sent the rest of the row (id, accounts, amount, code, created_at).
      return query select 'ok'::text, null::text, written.seq, null::text, null::uuid, null::uuid,
        null::bigint, written.unit, null::text, null::text, null::timestamptz, null::text, written.metadata,
        null::timestamptz, owners;
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
