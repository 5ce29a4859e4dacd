import pg from 'pg';

/**
 * The plain-SQL baseline: one PL/pgSQL function per transfer, the design research measured
 * fastest here (lock both rows first in id order FOR NO KEY UPDATE, insert the transfer with
 * ON CONFLICT DO NOTHING for idempotency, update the balances with the overdraft condition).
 */
export const BASELINE_SCHEMA_SQL = `
create schema if not exists bench_ledger;
drop table if exists bench_ledger.transfers;
drop table if exists bench_ledger.accounts;
create table bench_ledger.accounts (id bigint primary key, balance bigint not null check (balance >= 0));
create table bench_ledger.transfers (
  id text primary key, debit_account_id bigint not null, credit_account_id bigint not null,
  amount bigint not null check (amount > 0), created_at timestamptz not null default now());
create or replace function bench_ledger.transfer(p_id text, p_debit bigint, p_credit bigint, p_amount bigint)
  returns boolean language plpgsql as $$
begin
  perform 1 from bench_ledger.accounts where id in (p_debit, p_credit) order by id for no key update;
  insert into bench_ledger.transfers (id, debit_account_id, credit_account_id, amount)
    values (p_id, p_debit, p_credit, p_amount) on conflict do nothing;
  if not found then return true; end if;
  update bench_ledger.accounts set balance = balance - p_amount where id = p_debit and balance >= p_amount;
  if not found then raise exception 'insufficient funds' using errcode = 'P0001'; end if;
  update bench_ledger.accounts set balance = balance + p_amount where id = p_credit;
  return true;
end $$;
`;

/** The baseline's sessions, as `pg_stat_activity` names them (the bench reads their CPU). */
export const BASELINE_APPLICATION_NAME = 'bench_ledger_baseline';

/** A pool on the run's database with the baseline's schema and `accounts` funded accounts. */
export async function openBaseline(url: string, poolMax: number, accounts: number, funds: bigint) {
  const pool = new pg.Pool({
    connectionString: url,
    max: poolMax,
    application_name: BASELINE_APPLICATION_NAME,
  });
  pool.on('error', () => undefined);
  await pool.query(BASELINE_SCHEMA_SQL);
  await pool.query(
    'insert into bench_ledger.accounts (id, balance) select g, $2::bigint from generate_series(1, $1::int) g',
    [accounts, funds.toString()],
  );
  return {
    async transfer(id: string, debit: number, credit: number, amount: number): Promise<void> {
      await pool.query({
        name: 'bench_ledger_transfer',
        text: 'select bench_ledger.transfer($1, $2, $3, $4)',
        values: [id, debit, credit, amount],
      });
    },
    close: () => pool.end(),
  };
}
