import { timingSafeEqual } from 'node:crypto';
import type { OutboundClient } from '../outbound/index.js';
import { bip21Uri, minorToDecimal } from './bitcoin.js';
import { paymentsErrors } from './payments.errors.js';
import type { PaymentChange, PaymentProvider, VerifiedEvent } from './provider.js';
import { STRIPE_METADATA } from './stripe-provider.js';

export interface SwissBitcoinPayProviderOptions {
  /** The outbound client of the API (`defineProvider('swiss-bitcoin-pay', { baseUrl, auth: api-key header })`). */
  readonly client: OutboundClient;
  /** Shared secret of our webhook URL (`?secret=` or `X-Webhook-Secret`): the processor signs nothing. */
  readonly webhookSecret: string;
  /** Our webhook's public URL, given to each checkout; without it the backfill re-fetch finds settlements. */
  readonly webhookUrl?: string | undefined;
}

interface SwissCheckout {
  id: string;
  isPaid: boolean;
  isExpired: boolean;
  /** Sats. */
  amount: number;
  pr?: string;
  onChainAddr?: string;
  checkoutUrl?: string;
  expiry?: number;
  extra?: Record<string, unknown>;
}

const changeOf = (checkout: SwissCheckout): PaymentChange =>
  checkout.isPaid ? { kind: 'paid' } : checkout.isExpired ? { kind: 'expired' } : { kind: 'noted' };
const stateOf = (checkout: SwissCheckout) =>
  checkout.isPaid ? 'paid' : checkout.isExpired ? 'expired' : 'pending';

const sameSecret = (given: string, expected: string) => {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
};

/**
 * Swiss Bitcoin Pay (Lightning, and on-chain when enabled). Its webhooks carry no documented
 * signature: a delivery is authenticated by the secret of our URL (query `secret` or header
 * `X-Webhook-Secret`), and even then is only a hint: the checkout is read back from the API with
 * our key, and its state (paid, expired) is what is applied, once per checkout and state.
 */
export function createSwissBitcoinPayProvider(options: SwissBitcoinPayProviderOptions): PaymentProvider {
  const { client } = options;
  const fetchCheckout = async (id: string) =>
    (
      await client.request({
        method: 'GET',
        path: `checkout/${encodeURIComponent(id)}`,
        operation: 'checkout.get',
      })
    ).json<SwissCheckout>();
  const eventOf = (checkout: SwissCheckout, payload: unknown): VerifiedEvent => ({
    eventId: `${checkout.id}:${stateOf(checkout)}`,
    type: `checkout.${stateOf(checkout)}`,
    occurredAt: new Date(),
    paymentId:
      typeof checkout.extra?.[STRIPE_METADATA.paymentId] === 'string'
        ? (checkout.extra[STRIPE_METADATA.paymentId] as string)
        : undefined,
    references: [checkout.id],
    change: changeOf(checkout),
    payload,
  });

  return {
    name: 'swiss-bitcoin-pay',

    async verifyWebhook(rawBody, headers, query) {
      const header = headers['x-webhook-secret'];
      const given = typeof header === 'string' ? header : query.secret;
      if (given === undefined || !sameSecret(given, options.webhookSecret))
        throw paymentsErrors.invalidSignature('swiss-bitcoin-pay', 'the webhook secret is missing or wrong');
      let body: { id?: unknown };
      try {
        body = JSON.parse(rawBody.toString('utf8')) as typeof body;
      } catch {
        throw paymentsErrors.unknownEvent('swiss-bitcoin-pay', 'the body is not JSON');
      }
      if (typeof body.id !== 'string' || !/^[A-Za-z0-9_-]{1,128}$/.test(body.id))
        throw paymentsErrors.unknownEvent('swiss-bitcoin-pay', 'the body names no checkout');
      // Never believe the body: the checkout's state comes from the API.
      return eventOf(await fetchCheckout(body.id), body);
    },

    async createInvoice(request) {
      const checkout = (
        await client.request({
          method: 'POST',
          path: 'checkout',
          operation: 'checkout.create',
          json: {
            title: request.description ?? request.orderId,
            description: request.description ?? request.orderId,
            amount: Number(minorToDecimal(request.amount, request.currency)),
            unit: request.currency,
            onChain: true,
            delay: Math.max(1, Math.ceil(request.expiresInSeconds / 60)),
            extra: {
              orderId: request.orderId,
              [STRIPE_METADATA.paymentId]: request.paymentId,
              [STRIPE_METADATA.orgId]: request.orgId,
            },
            ...(options.webhookUrl === undefined
              ? {}
              : {
                  webhook: {
                    url: options.webhookUrl,
                    headers: { 'X-Webhook-Secret': options.webhookSecret },
                  },
                }),
          },
        })
      ).json<SwissCheckout>();
      const sats = BigInt(checkout.amount);
      return {
        reference: checkout.id,
        amountSats: sats,
        paymentUri: bip21Uri({ address: checkout.onChainAddr, sats, lightning: checkout.pr }),
        checkoutUrl: checkout.checkoutUrl,
        expiresAt: new Date(
          (checkout.expiry ?? Math.floor(Date.now() / 1000) + request.expiresInSeconds) * 1000,
        ),
      };
    },

    async invoiceEvent(reference) {
      const checkout = await fetchCheckout(reference);
      return stateOf(checkout) === 'pending' ? undefined : eventOf(checkout, checkout);
    },
  };
}
