-- Accounts outside any organization: the platform's book. A game's coins belong to the player,
-- not to an organization the app would have to invent: a person's account (owner 'user') or the
-- app's own (owner 'system': where coins are minted from, where spends go) with no tenant_id.
--
-- Which book a transaction works in:
--   * an organization's, when it carries app.tenant_id (as before);
--   * the platform's, when it carries app.ledger_platform = 'on' (service code opts in, as it
--     names a tenant: `ledgerPlatformSettings`), whatever tenant it also names;
--   * none for writes when it carries only app.user_id: a person then reads their own accounts
--     outside organizations and the transfers touching them, and nothing else.
-- A forgotten setting still yields zero rows: without the flag no service code reads, locks or
-- writes a platform account or transfer that is not the acting user's own.
--
-- accounts.tenant_id is null for the platform (it references an organization). transfers have no
-- foreign key and key every lookup and index on tenant_id: a platform transfer carries the nil
-- UUID there, so the primary key, the resolution index and every keyed lookup of the hot path
-- stay what they are (no rebuild of the largest table, no IS NOT DISTINCT FROM that no index serves).

create function acts_for_platform() returns boolean
  language sql stable
  as $$ select coalesce(current_setting('app.ledger_platform', true), '') = 'on' $$;

-- Whether an account (by its tenant_id) is in the book the transaction writes to.
create function in_book(account_tenant_id uuid) returns boolean
  language sql stable
  as $$
    select case when ledger.acts_for_platform() then account_tenant_id is null
                else account_tenant_id = socle.current_tenant_id() end
  $$;

-- The transfers' key of the book the transaction works in: its organization, or the nil UUID for
-- the platform (also when it names no organization: a person reading their own history).
create function book_id() returns uuid
  language sql stable
  as $$
    select case when ledger.acts_for_platform() or socle.current_tenant_id() is null
                then '00000000-0000-0000-0000-000000000000'::uuid
                else socle.current_tenant_id() end
  $$;

alter table accounts alter column tenant_id drop not null;
-- An account of the platform is a person's or the platform's own ('erased' once its person is).
alter table accounts add constraint accounts_platform_owner check (tenant_id is not null or owner_kind <> 'tenant');
-- A person has one account outside organizations per unit and code, and the platform one of its
-- own per unit and code: what `ledger.personalAccount` / `ledger.platformAccount` find or open.
create unique index accounts_personal on accounts (owner_user_id, unit, coalesce(code, ''))
  where tenant_id is null and owner_kind = 'user';
create unique index accounts_platform on accounts (unit, coalesce(code, ''))
  where tenant_id is null and owner_kind = 'system';

drop policy accounts_tenant on accounts;
create policy accounts_book on accounts
  using (
    tenant_id = socle.current_tenant_id()
    or (tenant_id is null and (ledger.acts_for_platform() or owner_user_id = socle.current_user_id())))
  with check (
    tenant_id = socle.current_tenant_id()
    or (tenant_id is null and ledger.acts_for_platform()));

drop policy transfers_tenant on transfers;
create policy transfers_book on transfers
  using (
    tenant_id = socle.current_tenant_id()
    or (tenant_id = '00000000-0000-0000-0000-000000000000'::uuid
        and (ledger.acts_for_platform()
             or exists (select 1 from ledger.accounts a
                         where a.id in (transfers.debit_account_id, transfers.credit_account_id)
                           and a.tenant_id is null
                           and a.owner_user_id = socle.current_user_id()))))
  with check (
    tenant_id = socle.current_tenant_id()
    or (tenant_id = '00000000-0000-0000-0000-000000000000'::uuid and ledger.acts_for_platform()));

-- The hot path (0004's ledger.post_transfer) in the transaction's book: the accounts it locks are
-- the book's (another book's is not found, as another organization's is), the transfer is keyed by
-- the book. Otherwise 0004's function, statement for statement.
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
  book uuid := ledger.book_id();
begin
  if p_debit_account_id < p_credit_account_id then
    select * into debit from ledger.accounts a where a.id = p_debit_account_id and ledger.in_book(a.tenant_id)
      for no key update;
    select * into credit from ledger.accounts a where a.id = p_credit_account_id and ledger.in_book(a.tenant_id)
      for no key update;
  else
    select * into credit from ledger.accounts a where a.id = p_credit_account_id and ledger.in_book(a.tenant_id)
      for no key update;
    select * into debit from ledger.accounts a where a.id = p_debit_account_id and ledger.in_book(a.tenant_id)
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
