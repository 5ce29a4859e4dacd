import { timingSafeEqual } from 'node:crypto';
import { isSocleError } from '../../kernel/index.js';
import type { OutboundClient } from '../outbound/index.js';
import { paymentsErrors } from './payments.errors.js';
import type {
  PaymentChange,
  PaymentProvider,
  StorePurchase,
  StorePurchaseProof,
  VerifiedEvent,
} from './provider.js';

export interface GooglePlayProviderOptions {
  /**
   * The outbound client of the Android Publisher API (`https://androidpublisher.googleapis.com`),
   * authenticated as the service account (`auth: { type: 'service-account', … }`).
   */
  readonly client: OutboundClient;
  /** The app's package name (`com.example.app`). */
  readonly packageName: string;
  /**
   * Secret of the Pub/Sub push endpoint of Real-time developer notifications (`?secret=` in the
   * push URL, or `X-Webhook-Secret`): Pub/Sub signs nothing of its own here.
   */
  readonly notificationSecret: string;
}

/** `purchases.products.get`: a one-time product purchase (the fields payments reads). */
interface ProductPurchase {
  kind?: string;
  /** 0 purchased, 1 canceled (refunded, voided), 2 pending. */
  purchaseState?: number;
  /** 0 yet to be acknowledged, 1 acknowledged. */
  acknowledgementState?: number;
  orderId?: string;
  purchaseTimeMillis?: string;
  obfuscatedExternalAccountId?: string;
}

/** A Real-time developer notification, the `data` of a Pub/Sub push message (base64 JSON). */
interface DeveloperNotification {
  packageName?: string;
  eventTimeMillis?: string;
  oneTimeProductNotification?: { notificationType?: number; purchaseToken?: string; sku?: string };
  voidedPurchaseNotification?: { purchaseToken?: string; orderId?: string; productType?: number };
}

const TOKEN = /^[A-Za-z0-9._:-]{10,512}$/;
const PRODUCT = /^[a-z0-9][a-z0-9_.-]{0,148}$/;

const sameSecret = (given: string, expected: string) => {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
};

/**
 * Google Play in-app purchases (one-time products): the purchase token the app posts is read back
 * from the Android Publisher API (`purchases.products.get`) with the service account's token,
 * never believed from the client; Real-time developer notifications (Pub/Sub push, authenticated
 * by the secret of the push URL) are hints too: the purchase is read back again, and a voided
 * purchase is confirmed in `purchases.voidedpurchases.list`. The event key is the token and the
 * state read back, the same whether the app or the notification tells it.
 */
export function createGooglePlayProvider(options: GooglePlayProviderOptions): PaymentProvider {
  const { client, packageName } = options;
  const app = `androidpublisher/v3/applications/${encodeURIComponent(packageName)}`;
  const productPath = (productId: string, token: string) =>
    `${app}/purchases/products/${encodeURIComponent(productId)}/tokens/${encodeURIComponent(token)}`;

  const readPurchase = async (productId: string, token: string): Promise<ProductPurchase> => {
    try {
      const response = await client.request({
        method: 'GET',
        path: productPath(productId, token),
        operation: 'purchases.products.get',
      });
      return response.json<ProductPurchase>();
    } catch (error) {
      // Google answers 400/404 for a token it never issued (or of another product or app).
      if (isSocleError(error) && error.code === 'outbound.rejected')
        throw paymentsErrors.invalidSignature('google-play', 'Google Play does not know this purchase token');
      throw error;
    }
  };

  const acknowledge = async (productId: string, token: string) => {
    await client.request({
      method: 'POST',
      path: `${productPath(productId, token)}:acknowledge`,
      json: {},
      operation: 'purchases.products.acknowledge',
      // Acknowledging twice is harmless: safe to retry.
      idempotencyKey: `ack-${token.slice(0, 64)}`,
    });
  };

  const purchaseOf = (
    productId: string,
    token: string,
    purchase: ProductPurchase,
    source: string,
  ): StorePurchase => {
    const state =
      purchase.purchaseState === 0 ? 'purchased' : purchase.purchaseState === 1 ? 'revoked' : 'pending';
    const change: PaymentChange =
      state === 'purchased'
        ? { kind: 'paid', ...(purchase.orderId === undefined ? {} : { providerPaymentId: purchase.orderId }) }
        : state === 'revoked'
          ? { kind: 'revoked' }
          : { kind: 'noted' };
    const event: VerifiedEvent = {
      eventId: `purchase:${token}:${state}`,
      type: `${source}.${state}`,
      occurredAt: new Date(Number(purchase.purchaseTimeMillis ?? Date.now())),
      references: [token],
      change,
      payload: { productId, ...purchase },
      ...(state === 'purchased' && purchase.acknowledgementState === 0
        ? { acknowledge: () => acknowledge(productId, token) }
        : {}),
    };
    return {
      reference: token,
      storeProductId: productId,
      accountToken: purchase.obfuscatedExternalAccountId || undefined,
      event,
    };
  };

  return {
    name: 'google-play',
    async verifyPurchase(proof: StorePurchaseProof) {
      const { productId, purchaseToken } = proof;
      if (productId === undefined || !PRODUCT.test(productId))
        throw paymentsErrors.invalidInput(
          'payments.invalid_purchase',
          'body/productId',
          'must be a Play product id',
        );
      if (purchaseToken === undefined || !TOKEN.test(purchaseToken))
        throw paymentsErrors.invalidInput(
          'payments.invalid_purchase',
          'body/purchaseToken',
          'must be a Play purchase token',
        );
      return purchaseOf(productId, purchaseToken, await readPurchase(productId, purchaseToken), 'purchase');
    },

    async verifyWebhook(rawBody, headers, query) {
      const header = headers['x-webhook-secret'];
      const given = query.secret ?? (typeof header === 'string' ? header : undefined);
      if (given === undefined || !sameSecret(given, options.notificationSecret))
        throw paymentsErrors.invalidSignature('google-play', 'the push does not carry our secret');
      let notification: DeveloperNotification;
      try {
        const push = JSON.parse(rawBody.toString('utf8')) as { message?: { data?: unknown } };
        if (typeof push.message?.data !== 'string') throw new Error('no message data');
        notification = JSON.parse(Buffer.from(push.message.data, 'base64').toString('utf8'));
        if (typeof notification !== 'object' || notification === null) throw new Error('not an object');
      } catch {
        throw paymentsErrors.unknownEvent('google-play', 'the body is not a Pub/Sub push of a notification');
      }
      if (notification.packageName !== packageName)
        throw paymentsErrors.unknownEvent('google-play', 'the notification is about another app');
      const oneTime = notification.oneTimeProductNotification;
      if (oneTime?.sku !== undefined && oneTime.purchaseToken !== undefined) {
        if (!PRODUCT.test(oneTime.sku) || !TOKEN.test(oneTime.purchaseToken))
          throw paymentsErrors.unknownEvent('google-play', 'the notification names no valid purchase');
        const purchase = await readPurchase(oneTime.sku, oneTime.purchaseToken);
        return purchaseOf(oneTime.sku, oneTime.purchaseToken, purchase, 'notification').event;
      }
      const voided = notification.voidedPurchaseNotification;
      if (voided?.purchaseToken !== undefined) {
        const token = voided.purchaseToken;
        const since = Number(notification.eventTimeMillis ?? Date.now()) - 86_400_000;
        const response = await client.request({
          method: 'GET',
          path: `${app}/purchases/voidedpurchases`,
          query: { startTime: Math.max(0, since) },
          operation: 'purchases.voidedpurchases.list',
        });
        const listed = response.json<{
          voidedPurchases?: { purchaseToken?: string; voidedTimeMillis?: string }[];
        }>();
        const found = listed.voidedPurchases?.find((entry) => entry.purchaseToken === token);
        if (found === undefined)
          throw paymentsErrors.unknownEvent(
            'google-play',
            'Google Play does not list this purchase as voided',
          );
        return {
          eventId: `purchase:${token}:revoked`,
          type: 'notification.revoked',
          occurredAt: new Date(Number(found.voidedTimeMillis ?? Date.now())),
          references: [token],
          change: { kind: 'revoked' },
          payload: notification,
        };
      }
      throw paymentsErrors.unknownEvent(
        'google-play',
        'only one-time product and voided purchase notifications are handled',
      );
    },
  };
}
