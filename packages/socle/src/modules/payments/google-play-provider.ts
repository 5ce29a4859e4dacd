import { timingSafeEqual } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
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
   * push URL, or `X-Webhook-Secret`). Checked when set; `push` or this (or both) must be.
   */
  readonly notificationSecret?: string | undefined;
  /**
   * Pub/Sub push authentication: each push carries `Authorization: Bearer <OIDC token>` signed by
   * Google for `audience`, naming the push subscription's service account `serviceAccountEmail`.
   * Checked when set (401 otherwise).
   */
  readonly push?:
    | {
        readonly audience: string;
        readonly serviceAccountEmail: string;
        /** Google's signing keys (JWKS): `https://www.googleapis.com/oauth2/v3/certs`; a fake's in tests. */
        readonly certsUrl: string;
      }
    | undefined;
}

/** `purchases.subscriptionsv2.get`: a subscription purchase (the fields payments reads). */
interface SubscriptionPurchaseV2 {
  kind?: string;
  /** `SUBSCRIPTION_STATE_ACTIVE`, `…_CANCELED`, `…_IN_GRACE_PERIOD`, `…_ON_HOLD`, `…_PAUSED`, `…_EXPIRED`, `…_PENDING`. */
  subscriptionState?: string;
  /** `ACKNOWLEDGEMENT_STATE_PENDING` or `ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED`. */
  acknowledgementState?: string;
  startTime?: string;
  latestOrderId?: string;
  /**
   * The purchase token this subscription replaces (an upgrade, a downgrade, a resubscription):
   * that token's subscription ended when this one started.
   */
  linkedPurchaseToken?: string;
  lineItems?: {
    productId?: string;
    expiryTime?: string;
    autoRenewingPlan?: { autoRenewEnabled?: boolean };
    /** The order of the latest paid period (renewals: `GPA.…..0`, `GPA.…..1`). */
    latestSuccessfulOrderId?: string;
  }[];
  externalAccountIdentifiers?: { obfuscatedExternalAccountId?: string };
}

/** RTDN `subscriptionNotification.notificationType` of a revocation (refunded, access taken back). */
const SUBSCRIPTION_REVOKED = 12;
/** `voidedPurchaseNotification.productType` of a subscription. */
const VOIDED_SUBSCRIPTION = 1;
/** Play's subscription states as the subscription state apps read; pending ones say nothing yet. */
const SUBSCRIPTION_STATUS: Readonly<Record<string, string>> = {
  SUBSCRIPTION_STATE_ACTIVE: 'active',
  // Renewal turned off: paid until its expiry.
  SUBSCRIPTION_STATE_CANCELED: 'active',
  SUBSCRIPTION_STATE_IN_GRACE_PERIOD: 'past_due',
  SUBSCRIPTION_STATE_ON_HOLD: 'past_due',
  SUBSCRIPTION_STATE_PAUSED: 'past_due',
  SUBSCRIPTION_STATE_EXPIRED: 'canceled',
};

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
  subscriptionNotification?: { notificationType?: number; purchaseToken?: string; subscriptionId?: string };
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

  /** A purchase read back from the API; a token Google never issued (or of another product or app) is refused. */
  const readFromPlay = async <T>(path: string, operation: string): Promise<T> => {
    try {
      const response = await client.request({ method: 'GET', path, operation });
      return response.json<T>();
    } catch (error) {
      // Google answers 400/404 for a token it never issued (or of another product or app).
      if (isSocleError(error) && error.code === 'outbound.rejected')
        throw paymentsErrors.invalidSignature('google-play', 'Google Play does not know this purchase token');
      throw error;
    }
  };
  const readPurchase = (productId: string, token: string) =>
    readFromPlay<ProductPurchase>(productPath(productId, token), 'purchases.products.get');

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

  /** `purchases.voidedpurchases.list` from a day before the notification. */
  const voidedSince = async (notification: DeveloperNotification) => {
    const since = Number(notification.eventTimeMillis ?? Date.now()) - 86_400_000;
    const response = await client.request({
      method: 'GET',
      path: `${app}/purchases/voidedpurchases`,
      query: { startTime: Math.max(0, since) },
      operation: 'purchases.voidedpurchases.list',
    });
    return (
      response.json<{
        voidedPurchases?: { purchaseToken?: string; orderId?: string; voidedTimeMillis?: string }[];
      }>().voidedPurchases ?? []
    );
  };
  const subscriptionPath = (token: string) =>
    `${app}/purchases/subscriptionsv2/tokens/${encodeURIComponent(token)}`;
  const readSubscription = (token: string) =>
    readFromPlay<SubscriptionPurchaseV2>(subscriptionPath(token), 'purchases.subscriptionsv2.get');
  const acknowledgeSubscription = async (productId: string, token: string) => {
    await client.request({
      method: 'POST',
      path: `${app}/purchases/subscriptions/${encodeURIComponent(productId)}/tokens/${encodeURIComponent(token)}:acknowledge`,
      json: {},
      operation: 'purchases.subscriptions.acknowledge',
      idempotencyKey: `ack-${token.slice(0, 64)}`,
    });
  };

  /**
   * The events a subscription's state (read back from the API) tells, about the subscription's
   * payment (its purchase token): the latest paid period's grant (its order id, once whoever tells
   * it) or, revoked, that grant taken back; and the state apps read.
   */
  const subscriptionEvents = (
    token: string,
    subscription: SubscriptionPurchaseV2,
    told: { readonly source: string; readonly at: Date; readonly key: string; readonly revoked: boolean },
  ): VerifiedEvent[] => {
    const line = subscription.lineItems?.[0];
    const orderId = line?.latestSuccessfulOrderId ?? subscription.latestOrderId;
    const payload = { purchaseToken: token, ...subscription };
    const events: VerifiedEvent[] = [];
    const state = subscription.subscriptionState ?? '';
    if (orderId !== undefined && told.revoked)
      events.push({
        eventId: `order:${orderId}:revoked`,
        type: `${told.source}.revoked`,
        occurredAt: told.at,
        references: [token, orderId],
        change: { kind: 'revoked', invoiceId: orderId },
        payload,
      });
    else if (orderId !== undefined && SUBSCRIPTION_STATUS[state] !== undefined)
      events.push({
        eventId: `order:${orderId}:renewal`,
        type: `${told.source}.renewed`,
        occurredAt: told.at,
        references: [token, orderId],
        change: { kind: 'renewal', subscriptionId: token, invoiceId: orderId },
        payload,
      });
    const status = told.revoked ? 'canceled' : SUBSCRIPTION_STATUS[state];
    if (status !== undefined) {
      const expiry = line?.expiryTime === undefined ? null : new Date(line.expiryTime);
      events.push({
        eventId: `subscription:${token}:state:${told.key}`,
        type: `${told.source}.subscription_${status}`,
        occurredAt: told.at,
        references: [token],
        change: {
          kind: 'subscription',
          subscriptionId: token,
          status,
          currentPeriodEnd: expiry === null || Number.isNaN(expiry.getTime()) ? null : expiry,
          cancelAtPeriodEnd: status !== 'canceled' && line?.autoRenewingPlan?.autoRenewEnabled === false,
        },
        payload,
      });
    }
    return events;
  };
  /** The first event, with the others as `related`; the purchase acknowledged once applied. */
  const together = (
    events: VerifiedEvent[],
    productId: string,
    token: string,
    subscription: SubscriptionPurchaseV2,
  ): VerifiedEvent => {
    const [first, ...rest] = events;
    if (first === undefined)
      throw paymentsErrors.unknownEvent('google-play', 'the subscription is pending: nothing to apply');
    return {
      ...first,
      ...(rest.length === 0 ? {} : { related: rest }),
      ...(subscription.acknowledgementState === 'ACKNOWLEDGEMENT_STATE_PENDING' &&
      SUBSCRIPTION_STATUS[subscription.subscriptionState ?? ''] !== undefined
        ? { acknowledge: () => acknowledgeSubscription(productId, token) }
        : {}),
    };
  };

  const keys = options.push === undefined ? undefined : createRemoteJWKSet(new URL(options.push.certsUrl));
  /** Pub/Sub push authentication: Google's OIDC token for our endpoint, of our service account. */
  const authenticatePush = async (headers: Parameters<PaymentProvider['verifyWebhook']>[1]) => {
    if (options.push === undefined || keys === undefined) return;
    const header = headers.authorization;
    const token = typeof header === 'string' ? /^Bearer (\S+)$/.exec(header)?.[1] : undefined;
    if (token === undefined)
      throw paymentsErrors.unauthenticatedPush(
        'google-play',
        'no Bearer token (Pub/Sub push authentication)',
      );
    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jwtVerify(token, keys, {
        issuer: ['https://accounts.google.com', 'accounts.google.com'],
        audience: options.push.audience,
        algorithms: ['RS256'],
      }));
    } catch (error) {
      if (error instanceof joseErrors.JOSEError)
        throw paymentsErrors.unauthenticatedPush('google-play', `the token does not verify (${error.code})`);
      throw error;
    }
    if (claims.email !== options.push.serviceAccountEmail || claims.email_verified !== true)
      throw paymentsErrors.unauthenticatedPush('google-play', 'the token is of another service account');
  };

  return {
    name: 'google-play',
    async verifyPurchase(proof: StorePurchaseProof, catalog) {
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
      if (catalog.isSubscription(productId)) {
        const subscription = await readSubscription(purchaseToken);
        if (!subscription.lineItems?.some((line) => line.productId === productId))
          throw paymentsErrors.invalidSignature(
            'google-play',
            'the purchase token is of another subscription',
          );
        const events = subscriptionEvents(purchaseToken, subscription, {
          source: 'purchase',
          at: new Date(),
          key: `claim:${subscription.subscriptionState}:${subscription.lineItems?.[0]?.expiryTime}:${subscription.lineItems?.[0]?.autoRenewingPlan?.autoRenewEnabled}`,
          revoked: false,
        });
        const paid: VerifiedEvent = {
          eventId: `subscription:${purchaseToken}:purchased`,
          type: 'purchase.subscribed',
          occurredAt: new Date(subscription.startTime ?? Date.now()),
          references: [purchaseToken],
          change:
            SUBSCRIPTION_STATUS[subscription.subscriptionState ?? ''] === undefined
              ? { kind: 'noted' }
              : { kind: 'paid', subscriptionId: purchaseToken },
          payload: { purchaseToken, ...subscription },
        };
        const linked = subscription.linkedPurchaseToken;
        const startedAt = new Date(subscription.startTime ?? Date.now());
        return {
          reference: purchaseToken,
          storeProductId: productId,
          accountToken: subscription.externalAccountIdentifiers?.obfuscatedExternalAccountId || undefined,
          // The replaced token's subscription ends where this one starts: canceled (final), so
          // nothing it tells later revives it. A period it paid that this one carries on without
          // a new charge keeps its order id, whose grant is given once whichever token tells it.
          ...(linked === undefined ||
          !TOKEN.test(linked) ||
          linked === purchaseToken ||
          paid.change.kind === 'noted'
            ? {}
            : {
                replaces: {
                  reference: linked,
                  event: {
                    eventId: `subscription:${linked}:replaced_by:${purchaseToken}`,
                    type: 'purchase.subscription_replaced',
                    occurredAt: startedAt,
                    references: [linked],
                    change: {
                      kind: 'subscription',
                      subscriptionId: linked,
                      status: 'canceled',
                      currentPeriodEnd: startedAt,
                      cancelAtPeriodEnd: false,
                    },
                    payload: { purchaseToken: linked, replacedBy: purchaseToken },
                  },
                },
              }),
          event: together(
            paid.change.kind === 'noted' ? [paid] : [paid, ...events],
            productId,
            purchaseToken,
            subscription,
          ),
        };
      }
      return purchaseOf(productId, purchaseToken, await readPurchase(productId, purchaseToken), 'purchase');
    },

    async verifyWebhook(rawBody, headers, query) {
      await authenticatePush(headers);
      if (options.notificationSecret !== undefined) {
        const header = headers['x-webhook-secret'];
        const given = query.secret ?? (typeof header === 'string' ? header : undefined);
        if (given === undefined || !sameSecret(given, options.notificationSecret))
          throw paymentsErrors.invalidSignature('google-play', 'the push does not carry our secret');
      }
      let notification: DeveloperNotification;
      let messageId: string | undefined;
      try {
        const push = JSON.parse(rawBody.toString('utf8')) as {
          message?: { data?: unknown; messageId?: unknown };
        };
        messageId = typeof push.message?.messageId === 'string' ? push.message.messageId : undefined;
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
      const renewing = notification.subscriptionNotification;
      if (renewing?.purchaseToken !== undefined && renewing.subscriptionId !== undefined) {
        const { purchaseToken: token, subscriptionId: productId } = renewing;
        if (!PRODUCT.test(productId) || !TOKEN.test(token))
          throw paymentsErrors.unknownEvent('google-play', 'the notification names no valid subscription');
        // A hint: the state is read back from the API, never believed from the push.
        const subscription = await readSubscription(token);
        const at = new Date(Number(notification.eventTimeMillis ?? Date.now()));
        return together(
          subscriptionEvents(token, subscription, {
            source: 'notification',
            at,
            // Pub/Sub's redeliveries of a message keep its id.
            key: messageId ?? `${renewing.notificationType}:${notification.eventTimeMillis}`,
            revoked: renewing.notificationType === SUBSCRIPTION_REVOKED,
          }),
          productId,
          token,
          subscription,
        );
      }
      const voided = notification.voidedPurchaseNotification;
      if (voided?.productType === VOIDED_SUBSCRIPTION && voided.purchaseToken !== undefined) {
        // A subscription's order refunded or charged back: that period's grant is taken back.
        const { purchaseToken: token, orderId } = voided;
        if (orderId === undefined || !TOKEN.test(token))
          throw paymentsErrors.unknownEvent('google-play', 'the notification names no valid order');
        const listed = await voidedSince(notification);
        if (!listed.some((entry) => entry.purchaseToken === token && entry.orderId === orderId))
          throw paymentsErrors.unknownEvent('google-play', 'Google Play does not list this order as voided');
        return {
          eventId: `order:${orderId}:revoked`,
          type: 'notification.revoked',
          occurredAt: new Date(Number(notification.eventTimeMillis ?? Date.now())),
          references: [token, orderId],
          change: { kind: 'revoked', invoiceId: orderId },
          payload: notification,
        };
      }
      if (voided?.purchaseToken !== undefined) {
        const token = voided.purchaseToken;
        const found = (await voidedSince(notification)).find((entry) => entry.purchaseToken === token);
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
        'only one-time product, subscription and voided purchase notifications are handled',
      );
    },
  };
}
