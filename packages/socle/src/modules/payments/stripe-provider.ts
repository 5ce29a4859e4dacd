import Stripe from 'stripe';
import { isSocleError } from '../../kernel/index.js';
import type { OutboundClient } from '../outbound/index.js';
import { paymentsErrors } from './payments.errors.js';
import type { PaymentChange, PaymentProvider, VerifiedEvent } from './provider.js';

/** Metadata keys payments puts on every Stripe object it creates (session, PaymentIntent, subscription). */
export const STRIPE_METADATA = { paymentId: 'socle_payment_id', orgId: 'socle_org_id' } as const;

export interface StripeProviderOptions {
  readonly secretKey: string;
  /** Endpoint signing secrets (`whsec_…`): several while one is rotated; any of them verifies. */
  readonly webhookSecrets: readonly string[];
  /** Seconds a signature's timestamp may be old (Stripe's default: 300). */
  readonly toleranceSeconds?: number;
  /**
   * The outbound client of Stripe's API (`defineProvider('stripe', { baseUrl: 'https://api.stripe.com' })`,
   * or a local fake's address): every request of the SDK goes through its timeouts, retries,
   * breaker, rate limit, metrics and logs.
   */
  readonly client: OutboundClient;
}

type Metadata = Record<string, string> | null | undefined;
const paymentIdIn = (metadata: Metadata) => metadata?.[STRIPE_METADATA.paymentId] || undefined;
const idOf = (value: string | { id: string } | null | undefined) =>
  value == null ? undefined : typeof value === 'string' ? value : value.id;

/**
 * Reads a Stripe event into what it changes, from the object's state carried in the event (not
 * from its type alone): a completed session that is still unpaid changes nothing yet.
 */
export function readStripeEvent(event: Stripe.Event): VerifiedEvent {
  const base = {
    eventId: event.id,
    type: event.type,
    occurredAt: new Date(event.created * 1000),
    payload: event,
  };
  const object = event.data.object as unknown as Record<string, unknown>;
  const make = (
    paymentId: string | undefined,
    references: (string | undefined)[],
    change: PaymentChange,
  ) => ({
    ...base,
    paymentId,
    references: references.filter((reference): reference is string => reference !== undefined),
    change,
  });
  switch (event.type) {
    case 'checkout.session.completed':
    case 'checkout.session.async_payment_succeeded':
    case 'checkout.session.async_payment_failed':
    case 'checkout.session.expired': {
      const session = event.data.object;
      const paid = session.payment_status === 'paid' || session.payment_status === 'no_payment_required';
      const change: PaymentChange =
        event.type === 'checkout.session.expired'
          ? { kind: 'expired' }
          : event.type === 'checkout.session.async_payment_failed'
            ? { kind: 'failed' }
            : paid
              ? {
                  kind: 'paid',
                  providerPaymentId: idOf(session.payment_intent),
                  customerId: idOf(session.customer),
                  subscriptionId: idOf(session.subscription),
                }
              : { kind: 'noted' };
      return make(
        paymentIdIn(session.metadata) ?? session.client_reference_id ?? undefined,
        [session.id],
        change,
      );
    }
    case 'charge.refunded': {
      const charge = event.data.object;
      const paymentIntent = idOf(charge.payment_intent);
      return make(paymentIdIn(charge.metadata), [paymentIntent], {
        kind: 'refunded',
        refundedAmount: BigInt(charge.amount_refunded),
        ...(paymentIntent === undefined ? {} : { providerPaymentId: paymentIntent }),
      });
    }
    case 'charge.dispute.created':
    case 'charge.dispute.updated':
    case 'charge.dispute.closed': {
      const dispute = event.data.object;
      const paymentIntent = idOf(dispute.payment_intent);
      return make(undefined, [paymentIntent], {
        kind: 'disputed',
        disputeId: dispute.id,
        amount: BigInt(dispute.amount),
        status: dispute.status,
        providerPaymentId: paymentIntent,
      });
    }
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted': {
      const subscription = event.data.object;
      const item = subscription.items?.data?.[0] as { current_period_end?: number } | undefined;
      const periodEnd = item?.current_period_end ?? (object.current_period_end as number | undefined);
      return make(paymentIdIn(subscription.metadata), [subscription.id], {
        kind: 'subscription',
        subscriptionId: subscription.id,
        status: event.type === 'customer.subscription.deleted' ? 'canceled' : subscription.status,
        currentPeriodEnd: periodEnd === undefined ? null : new Date(periodEnd * 1000),
        cancelAtPeriodEnd: subscription.cancel_at_period_end === true,
      });
    }
    case 'invoice.paid':
    case 'invoice.payment_failed': {
      const invoice = event.data.object;
      const details = invoice.parent?.subscription_details;
      const subscriptionId = idOf(details?.subscription as string | { id: string } | null | undefined);
      if (subscriptionId === undefined || invoice.id === undefined)
        throw paymentsErrors.unknownEvent('stripe', 'the invoice belongs to no subscription');
      return make(paymentIdIn(details?.metadata), [subscriptionId], {
        ...(event.type === 'invoice.paid'
          ? { kind: 'renewal', amount: BigInt(invoice.amount_paid) }
          : { kind: 'renewal_failed' }),
        subscriptionId,
        invoiceId: invoice.id,
      } as PaymentChange);
    }
    default:
      throw paymentsErrors.unknownEvent('stripe', `type ${event.type} is not handled`);
  }
}

/**
 * Turns the SDK's errors into payments' (the outbound client already retried what is safe to
 * retry). What the client gave up on (an open circuit, the rate limit, 5xx or 429 after its
 * retries, a timeout) reaches the SDK as a connection error carrying the `outbound.*` error: that
 * error is thrown as is, with its `Retry-After` and, from a job, its postponement.
 */
async function callStripe<T>(operation: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof Stripe.errors.StripeError)) throw error;
    if (error.type === 'StripeConnectionError' && isSocleError(error.detail)) throw error.detail;
    const status = error.statusCode;
    if (status === undefined || status === 429 || status >= 500 || error.type === 'StripeConnectionError')
      throw paymentsErrors.providerUnavailable('stripe', operation, status);
    throw paymentsErrors.providerRejected('stripe', operation, status, error.message);
  }
}

/**
 * Stripe through its official SDK: Checkout Sessions for packs (`mode: payment`) and
 * subscriptions, the customer portal, refunds, the events list, and webhooks verified with
 * `stripe.webhooks.constructEvent` on the raw body against every configured secret (rotation).
 * Every create carries an idempotency key derived from our payment id: the SDK's own random keys
 * would not survive a retried request or job.
 */
export function createStripeProvider(options: StripeProviderOptions): PaymentProvider {
  const { client } = options;
  const api = client.provider.baseUrl;
  if (api.pathname !== '/')
    throw paymentsErrors.notConfigured(
      'stripe',
      'PAYMENTS_STRIPE_API_URL without a path (the SDK adds /v1/…)',
    );
  const stripe = new Stripe(options.secretKey, {
    // The SDK's own code path, its requests sent by the declared client's `fetch`. Its retries are
    // off: the client retries what is safe (the SDK keys every POST; payments' keys are
    // deterministic) and its breaker must see every attempt. Its timer outlasts the client's.
    httpClient: Stripe.createFetchHttpClient(client.fetch as typeof fetch),
    maxNetworkRetries: 0,
    timeout: client.provider.totalTimeoutMs + 1_000,
    host: api.hostname,
    port: Number(api.port || (api.protocol === 'https:' ? 443 : 80)),
    protocol: api.protocol === 'https:' ? 'https' : 'http',
  });
  const tolerance = options.toleranceSeconds ?? 300;

  return {
    name: 'stripe',

    async verifyWebhook(rawBody, headers) {
      const signature = headers['stripe-signature'];
      if (typeof signature !== 'string' || signature === '')
        throw paymentsErrors.invalidSignature('stripe', 'the Stripe-Signature header is missing');
      if (options.webhookSecrets.length === 0)
        throw paymentsErrors.notConfigured('stripe', 'PAYMENTS_STRIPE_WEBHOOK_SECRETS');
      let event: Stripe.Event | undefined;
      let failure = 'no signature matches';
      for (const secret of options.webhookSecrets) {
        try {
          event = stripe.webhooks.constructEvent(rawBody, signature, secret, tolerance);
          break;
        } catch (error) {
          // The SDK says why (no v1, timestamp outside the tolerance, no match): keep its reason.
          failure = error instanceof Error ? (error.message.split('\n')[0] ?? failure) : failure;
        }
      }
      if (event === undefined) throw paymentsErrors.invalidSignature('stripe', failure);
      return readStripeEvent(event);
    },

    async createCheckout(request) {
      const { product } = request;
      const metadata = {
        [STRIPE_METADATA.paymentId]: request.paymentId,
        [STRIPE_METADATA.orgId]: request.orgId,
      };
      const session = await callStripe('checkout.sessions.create', () =>
        stripe.checkout.sessions.create(
          {
            mode: product.kind === 'pack' ? 'payment' : 'subscription',
            client_reference_id: request.paymentId,
            success_url: request.successUrl,
            cancel_url: request.cancelUrl,
            line_items: [
              {
                quantity: 1,
                price_data: {
                  currency: product.currency.toLowerCase(),
                  unit_amount: product.price,
                  product_data: { name: product.name, metadata: { socle_product_id: product.id } },
                  ...(product.kind === 'subscription' ? { recurring: { interval: product.interval } } : {}),
                },
              },
            ],
            metadata,
            ...(request.customerId === undefined
              ? request.email === undefined
                ? {}
                : { customer_email: request.email }
              : { customer: request.customerId }),
            ...(product.kind === 'pack'
              ? {
                  payment_intent_data: { metadata },
                  ...(request.customerId === undefined ? { customer_creation: 'always' as const } : {}),
                }
              : { subscription_data: { metadata } }),
          },
          { idempotencyKey: `socle-checkout-${request.paymentId}` },
        ),
      );
      if (session.url == null) throw paymentsErrors.unknownEvent('stripe', 'the Checkout Session has no url');
      return {
        reference: session.id,
        url: session.url,
        customerId: idOf(session.customer),
        expiresAt: new Date(session.expires_at * 1000),
      };
    },

    async portalUrl(customerId, returnUrl) {
      const session = await callStripe('billing_portal.sessions.create', () =>
        stripe.billingPortal.sessions.create({ customer: customerId, return_url: returnUrl }),
      );
      return session.url;
    },

    async refund(payment, amount, key) {
      await callStripe('refunds.create', () =>
        stripe.refunds.create(
          {
            payment_intent: payment.providerPaymentId,
            amount: Number(amount),
            metadata: { [STRIPE_METADATA.paymentId]: payment.id },
          },
          { idempotencyKey: key },
        ),
      );
    },

    async invoicePayment(invoiceId) {
      // Since API version 2025-03-31 an invoice no longer names its PaymentIntent: its payments do.
      const { data } = await callStripe('invoice_payments.list', () =>
        stripe.invoicePayments.list({ invoice: invoiceId, limit: 10 }),
      );
      const paid = data.find((entry) => entry.status === 'paid' && entry.payment.type === 'payment_intent');
      return idOf(paid?.payment.payment_intent as string | { id: string } | undefined);
    },

    async resolveEvent(event) {
      const { change } = event;
      if (
        (change.kind !== 'refunded' && change.kind !== 'disputed') ||
        change.providerPaymentId === undefined
      )
        return undefined;
      const paymentIntent = change.providerPaymentId;
      // Since API version 2025-03-31 a charge no longer names its invoice: the invoice payments
      // list finds the invoice a PaymentIntent paid, and the invoice its subscription (whose
      // metadata carries our payment).
      const [invoicePayment] = (
        await callStripe('invoice_payments.list', () =>
          stripe.invoicePayments.list({
            payment: { type: 'payment_intent', payment_intent: paymentIntent },
            limit: 1,
          }),
        )
      ).data;
      const invoiceId = idOf(invoicePayment?.invoice as string | { id: string } | undefined);
      if (invoicePayment === undefined || invoiceId === undefined) return undefined;
      const invoice = await callStripe('invoices.retrieve', () => stripe.invoices.retrieve(invoiceId));
      const details = invoice.parent?.subscription_details;
      const subscriptionId = idOf(details?.subscription as string | { id: string } | null | undefined);
      if (subscriptionId === undefined) return undefined;
      return {
        ...event,
        paymentId: paymentIdIn(details?.metadata) ?? event.paymentId,
        references: [...event.references, invoiceId, subscriptionId],
        change: {
          ...change,
          invoiceId,
          invoiceAmount: BigInt(invoicePayment.amount_paid ?? invoice.amount_paid),
        },
      };
    },

    async *eventsSince(since) {
      const events: Stripe.Event[] = [];
      // Stripe lists newest first; collect, then apply oldest first.
      await callStripe('events.list', async () => {
        for await (const event of stripe.events.list({
          created: { gte: Math.floor(since.getTime() / 1000) },
          limit: 100,
        }))
          events.push(event);
      });
      for (const event of events.reverse()) {
        try {
          yield readStripeEvent(event);
        } catch {
          // An event type payments does not handle: nothing to backfill.
        }
      }
    },
  };
}
