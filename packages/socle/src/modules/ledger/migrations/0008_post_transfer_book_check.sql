-- The hot path's cost since 0007, measured (docs/ledger.md#performance): Postgres CPU per
-- single transfer 75-85 µs with 0004's function and 0001's policies vs 95-105 µs with 0007's, in
-- one backend calling ledger.post_transfer in a loop (a commit per call), alternating. Most of it
-- is RLS, not the book check:
--   * transfers_book's person branch was an EXISTS subquery. A policy's subquery is a SubPlan that
--     every statement on the table sets up (the hot path's INSERT … RETURNING checks the new row
--     against the policy's USING), even when the first branch (the organization) already holds.
--     It is now a call of a PL/pgSQL function, which the planner does not inline: nothing to set
--     up, and only evaluated for a platform transfer read without the platform's flag (a person
--     reading their own history), as before.
--   * post_transfer read the book with two function calls per locked account (ledger.in_book) and
--     one more per call (ledger.book_id); it now reads the two settings once per call into
--     variables, and the lock's filter compares columns with them.
-- Same contract and same rows visible to whom as 0007.

create function touches_own_account(p_debit_account_id uuid, p_credit_account_id uuid) returns boolean
  language plpgsql stable
as $$
begin
  return exists (select 1 from ledger.accounts a
                  where a.id in (p_debit_account_id, p_credit_account_id)
                    and a.tenant_id is null
                    and a.owner_user_id = socle.current_user_id());
end
$$;

drop policy transfers_book on transfers;
create policy transfers_book on transfers
  using (
    tenant_id = socle.current_tenant_id()
    or (tenant_id = '00000000-0000-0000-0000-000000000000'::uuid
        and (ledger.acts_for_platform()
             or ledger.touches_own_account(transfers.debit_account_id, transfers.credit_account_id))))
  with check (
    tenant_id = socle.current_tenant_id()
    or (tenant_id = '00000000-0000-0000-0000-000000000000'::uuid and ledger.acts_for_platform()));

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
  -- The transaction's book, read once per call (not per account row): its organization, or the
  -- platform's accounts (tenant null, transfers keyed by the nil UUID) when it carries the flag.
  platform boolean := coalesce(current_setting('app.ledger_platform', true), '') = 'on';
  tenant uuid := case when platform then null else nullif(current_setting('app.tenant_id', true), '')::uuid end;
  book uuid := coalesce(tenant, '00000000-0000-0000-0000-000000000000'::uuid);
begin
  if p_debit_account_id < p_credit_account_id then
    select * into debit from ledger.accounts a where a.id = p_debit_account_id and (a.tenant_id = tenant or (platform and a.tenant_id is null))
      for no key update;
    select * into credit from ledger.accounts a where a.id = p_credit_account_id and (a.tenant_id = tenant or (platform and a.tenant_id is null))
      for no key update;
  else
    select * into credit from ledger.accounts a where a.id = p_credit_account_id and (a.tenant_id = tenant or (platform and a.tenant_id is null))
      for no key update;
    select * into debit from ledger.accounts a where a.id = p_debit_account_id and (a.tenant_id = tenant or (platform and a.tenant_id is null))
      for no key update;
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
      values (book, p_id, 'transfer', p_debit_account_id, p_credit_account_id, p_amount,
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
      return query select 'ok'::text, null::text, written.seq, null::text, null::uuid, null::uuid,
        null::bigint, written.unit, null::text, null::text, null::timestamptz, null::text, written.metadata,
        null::timestamptz, owners;
      return;
    end if;
  end if;

  select * into written from ledger.transfers t
   where t.tenant_id = book and t.id = p_id;
  if found then
    return query select 'replay'::text, written.id, written.seq, written.kind, written.debit_account_id,
      written.credit_account_id, written.amount, written.unit, written.hold_id, written.reverses_id,
      written.expires_at, written.code, written.metadata, written.created_at, null::jsonb;
    return;
  end if;
  if refusal is null then
    return query select 'concurrent'::text, null::text, null::bigint, null::text, null::uuid, null::uuid,
      null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb,
      null::timestamptz, null::jsonb;
    return;
  end if;
  return query select refusal, debit.unit, null::bigint, credit.unit, null::uuid, null::uuid,
    null::bigint, null::text, null::text, null::text, null::timestamptz, null::text, null::jsonb,
    null::timestamptz, null::jsonb;
end
$$;
