import type { Generated } from 'kysely';

/** Postgres `bigint`: a string from `pg`, a bigint from PGlite; read it with `BigInt(value)`. */
export type SqlBigint = string | bigint;

/** The ledger module's tables as Kysely sees them. */
export interface LedgerTables {
  'ledger.accounts': {
    id: string;
    /** Null: an account outside organizations (the platform's book, migration 0007). */
    tenant_id: string | null;
    owner_kind: string;
    owner_user_id: string | null;
    unit: string;
    scale: number;
    code: string | null;
    debits_must_not_exceed_credits: boolean;
    credits_must_not_exceed_debits: boolean;
    debits_pending: Generated<SqlBigint>;
    debits_posted: Generated<SqlBigint>;
    credits_pending: Generated<SqlBigint>;
    credits_posted: Generated<SqlBigint>;
    metadata: Generated<unknown>;
    created_at: Date;
  };
  'ledger.transfers': {
    /** The book: an organization, or the nil UUID for the platform's (migration 0007). */
    tenant_id: string;
    id: string;
    seq: Generated<SqlBigint>;
    kind: string;
    debit_account_id: string;
    credit_account_id: string;
    amount: SqlBigint;
    unit: string;
    hold_id: string | null;
    reverses_id: string | null;
    expires_at: Date | null;
    code: string | null;
    metadata: Generated<unknown>;
    created_at: Date;
  };
}
