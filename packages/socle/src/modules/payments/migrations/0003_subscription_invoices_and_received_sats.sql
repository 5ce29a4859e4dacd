-- Each paid invoice of a subscription is a payment of its own (kind 'subscription_invoice',
-- provider_reference = the provider's invoice id, provider_payment_id = the PaymentIntent that
-- paid it), naming its subscription's payment: its period's credit grant is that row's transfer,
-- so a refund or a dispute of the invoice's charge reverses that grant exactly as it reverses a
-- pack (refunded_amount, reversed_credits, restored_credits, disputes by payment_id).
alter table payments drop constraint payments_kind_check;
alter table payments add constraint payments_kind_check
  check (kind in ('pack', 'subscription', 'invoice', 'subscription_invoice'));
alter table payments add column parent_payment_id uuid references payments (id) on delete cascade;
create index payments_parent on payments (parent_payment_id, provider_payment_id)
  where parent_payment_id is not null;

-- A Bitcoin invoice can be paid in part: `partially_paid` while it is open with less than due
-- received, `underpaid` once it expired so (final: never credited, for the merchant to settle
-- by hand or refund); received_sats is what the processor says it received, read back from its
-- API (an overpaid invoice is `succeeded` with more than amount_sats).
alter table payments drop constraint payments_status_check;
alter table payments add constraint payments_status_check
  check (status in ('pending', 'partially_paid', 'succeeded', 'failed', 'expired', 'underpaid'));
alter table payments add column received_sats bigint check (received_sats >= 0);
