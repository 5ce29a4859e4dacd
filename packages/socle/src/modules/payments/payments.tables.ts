import type { Generated } from 'kysely';

/** Postgres `bigint`: a string from `pg`, a bigint from PGlite; read it with `BigInt(value)`. */
export type SqlBigint = string | bigint;

/** The payments module's tables as Kysely sees them. */
export interface PaymentsTables {
  'payments.payments': {
    id: string;
    tenant_id: Generated<string>;
    user_id: string | null;
    provider: string;
    provider_reference: string;
    provider_payment_id: string | null;
    provider_subscription_id: string | null;
    provider_customer_id: string | null;
    kind: string;
    product_id: string | null;
    order_id: string | null;
    status: string;
    amount: SqlBigint;
    currency: string;
    refunded_amount: Generated<SqlBigint>;
    credits: Generated<SqlBigint>;
    unit: string | null;
    transfer_id: string | null;
    reversed_credits: Generated<SqlBigint>;
    restored_credits: Generated<SqlBigint>;
    amount_sats: SqlBigint | null;
    payment_uri: string | null;
    checkout_url: string | null;
    expires_at: Date | null;
    metadata: Generated<unknown>;
    created_at: Date;
    updated_at: Date;
    settled_at: Date | null;
    /** A subscription invoice's payment: its subscription's payment. */
    parent_payment_id: Generated<string | null>;
    /** Bitcoin invoices: what the processor received, in sats (read back from its API). */
    received_sats: Generated<SqlBigint | null>;
  };
  'payments.events': {
    provider: string;
    event_id: string;
    tenant_id: Generated<string>;
    type: string;
    payment_id: string | null;
    occurred_at: Date;
    received_at: Date;
    outcome: string;
    payload: unknown;
  };
  'payments.subscriptions': {
    id: string;
    tenant_id: Generated<string>;
    user_id: string | null;
    provider: string;
    provider_subscription_id: string;
    product_id: string;
    status: string;
    current_period_end: Date | null;
    cancel_at_period_end: boolean;
    state_at: Date;
    created_at: Date;
    updated_at: Date;
  };
  'payments.wallets': {
    tenant_id: Generated<string>;
    owner: string;
    unit: string;
    account_id: string;
  };
  'payments.disputes': {
    provider: string;
    dispute_id: string;
    tenant_id: Generated<string>;
    payment_id: string;
    amount: SqlBigint;
    status: string;
    state_at: Date;
  };
  'payments.provider_references': {
    provider: string;
    reference: string;
    tenant_id: string;
    payment_id: string;
  };
  'payments.event_failures': {
    provider: string;
    event_id: string;
    tenant_id: Generated<string>;
    payment_id: string;
    type: string;
    error_code: string;
    error_message: string;
    attempts: Generated<number>;
    first_seen_at: Date;
    last_seen_at: Date;
    verified: unknown;
  };
}
