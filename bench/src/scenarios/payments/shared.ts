import { createHmac } from 'node:crypto';

/** The Stripe webhook endpoint secret both servers verify with (the harness signs each delivery). */
export const WEBHOOK_SECRET = 'whsec_socle_bench_payments_0123456789';
/** The configured realtime app whose private user channels the buyers listen on. */
export const PAYMENTS_APP = Object.freeze({
  id: 'bench-payments',
  key: 'bench-payments-key',
  secret: 'bench-payments-secret',
});
/** Buyers, one organization each (a subscription each, renewed by the load's `invoice.paid`). */
export const BUYERS = 20;

/** `Stripe-Signature` for `body` at `timestamp` (seconds): `t=…,v1=HMAC-SHA256(secret, "t.body")`. */
export function stripeSignature(body: string, timestamp = Math.floor(Date.now() / 1000)): string {
  const signature = createHmac('sha256', WEBHOOK_SECRET).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${signature}`;
}

/** One renewal to deliver: its buyer (told on `private-user-{userId}`), its invoice and the event's JSON. */
export interface Renewal {
  readonly userId: string;
  readonly invoiceId: string;
  readonly body: string;
}
