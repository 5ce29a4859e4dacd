import { randomBytes } from 'node:crypto';
import {
  type FakeBtcpay,
  type FakeSwissBitcoinPay,
  startFakeBtcpay,
  startFakeSwissBitcoinPay,
} from '../testing/fake-bitcoin.js';
import { type FakeStripe, startFakeStripe } from '../testing/fake-stripe.js';

/** The providers `PAYMENTS_FAKES` can stand in for. */
export const PAYMENT_FAKES = ['stripe', 'btcpay', 'swiss-bitcoin-pay'] as const;
export type PaymentFakeName = (typeof PAYMENT_FAKES)[number];

/** Fakes running in this process, and the settings that point the payments adapters at them. */
export interface RunningPaymentFakes {
  readonly names: readonly PaymentFakeName[];
  /** Settings to put over the environment's (`PAYMENTS_STRIPE_API_URL`, keys, webhook secrets…). */
  readonly env: Readonly<Record<string, string>>;
  /** Once the server listens: where each fake's pay step delivers its webhooks. */
  attach(serverUrl: string): void;
  close(): Promise<void>;
}

/**
 * Reads `PAYMENTS_FAKES` (`stripe,btcpay`): the providers to fake, or a message saying what is
 * wrong with it. Empty when it is unset.
 */
export function readPaymentFakes(value: string | undefined): PaymentFakeName[] | string {
  if (value === undefined || value.trim() === '') return [];
  const names = value.split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(PAYMENT_FAKES as readonly string[]).includes(name));
  if (unknown.length > 0)
    return `PAYMENTS_FAKES lists ${unknown.join(', ')}: it takes ${PAYMENT_FAKES.join(', ')} (comma-separated).`;
  return [...new Set(names)] as PaymentFakeName[];
}

/**
 * Starts the local fakes of `socle/testing` in this process for `socle start` in embedded mode,
 * so a newcomer buys coins end to end without a provider account: the adapters are pointed at
 * them, and their hosted pages (the checkout URL, the invoice link) have a pay step that delivers
 * the signed webhook to this server. The fakes accept any payment: never in production.
 * `environment` may hold the Swiss Bitcoin Pay webhook secret (ours, not the processor's: the
 * fake only presents it back), kept so a script can post to the webhook itself.
 */
export async function startPaymentFakes(
  names: readonly PaymentFakeName[],
  environment: Readonly<Record<string, string | undefined>> = {},
): Promise<RunningPaymentFakes> {
  const env: Record<string, string> = {};
  let stripe: FakeStripe | undefined;
  let btcpay: FakeBtcpay | undefined;
  let swiss: FakeSwissBitcoinPay | undefined;
  const swissSecret =
    environment.PAYMENTS_SWISS_BITCOIN_PAY_WEBHOOK_SECRET || `sbp_whs_${randomBytes(16).toString('hex')}`;
  try {
    if (names.includes('stripe')) {
      stripe = await startFakeStripe();
      Object.assign(env, {
        PAYMENTS_STRIPE_API_URL: stripe.url,
        PAYMENTS_STRIPE_SECRET_KEY: stripe.secretKey,
        PAYMENTS_STRIPE_WEBHOOK_SECRETS: stripe.webhookSecret,
      });
    }
    if (names.includes('btcpay')) {
      btcpay = await startFakeBtcpay();
      Object.assign(env, {
        PAYMENTS_BTCPAY_URL: btcpay.url,
        PAYMENTS_BTCPAY_API_KEY: btcpay.apiKey,
        PAYMENTS_BTCPAY_STORE_ID: btcpay.storeId,
        PAYMENTS_BTCPAY_WEBHOOK_SECRET: btcpay.webhookSecret,
      });
    }
    if (names.includes('swiss-bitcoin-pay')) {
      swiss = await startFakeSwissBitcoinPay();
      swiss.webhookHeaders = { 'X-Webhook-Secret': swissSecret };
      Object.assign(env, {
        PAYMENTS_SWISS_BITCOIN_PAY_URL: swiss.url,
        PAYMENTS_SWISS_BITCOIN_PAY_API_KEY: swiss.apiKey,
        PAYMENTS_SWISS_BITCOIN_PAY_WEBHOOK_SECRET: swissSecret,
      });
    }
  } catch (error) {
    await Promise.all([stripe?.close(), btcpay?.close(), swiss?.close()]);
    throw error;
  }
  return {
    names: [...names],
    env,
    attach(serverUrl) {
      const base = serverUrl.endsWith('/') ? serverUrl : `${serverUrl}/`;
      if (stripe !== undefined) stripe.webhookUrl = new URL('payments/webhooks/stripe', base).href;
      if (btcpay !== undefined) btcpay.webhookUrl = new URL('payments/webhooks/btcpay', base).href;
      if (swiss !== undefined) swiss.webhookUrl = new URL('payments/webhooks/swiss-bitcoin-pay', base).href;
    },
    async close() {
      await Promise.all([stripe?.close(), btcpay?.close(), swiss?.close()]);
    },
  };
}
