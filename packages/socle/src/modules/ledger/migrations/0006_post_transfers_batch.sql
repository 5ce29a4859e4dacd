-- Several posted transfers of one organization in one statement, each with its own outcome: what
-- the service sends when concurrent callers each post one transfer outside a transaction of their
-- own (ledger.transfer(op) without `trx`), so that one round trip, one commit (one WAL flush) and
-- one set of tenant settings serve many transfers. It is not an atomic batch: every transfer is
-- decided on its own, in order, exactly as ledger.post_transfer decides it (which it calls), and a
-- refusal ('insufficient_debit', 'unit_mismatch', a replay…) is an outcome, not an error, so it
-- does not undo the others. An error (a bound crossed, the statement cancelled) rolls all of them
-- back; the service then posts each one alone.
--
-- Deadlock-free: every account the batch names is locked first, in ascending id order, in one
-- statement (the global order every path of the ledger locks in, see lockAccounts); the calls to
-- post_transfer then lock rows this transaction holds already.
create function post_transfers(
  p_ids text[],
  p_debit_account_ids uuid[],
  p_credit_account_ids uuid[],
  p_amounts bigint[],
  p_codes text[],
  p_metadata jsonb[],
  p_created_at timestamptz[]
) returns table (
  ordinal integer,
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
begin
  perform 1 from ledger.accounts a
   where a.id = any(p_debit_account_ids || p_credit_account_ids)
   order by a.id
     for no key update;
  for i in 1 .. coalesce(array_length(p_ids, 1), 0) loop
    return query select i, r.* from ledger.post_transfer(p_ids[i], p_debit_account_ids[i], p_credit_account_ids[i],
      p_amounts[i], p_codes[i], p_metadata[i], p_created_at[i]) r;
  end loop;
end
$$;
