import { generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import { type FaultyProvider, type ReceivedRequest, startFaultyProvider } from './faulty-provider.js';

/** A one-time product purchase as the fake keeps it (`purchases.products` resource fields). */
export interface FakePlayPurchase {
  readonly productId: string;
  readonly purchaseToken: string;
  orderId: string;
  /** 0 purchased, 1 canceled (voided, refunded), 2 pending. */
  purchaseState: 0 | 1 | 2;
  acknowledgementState: 0 | 1;
  consumptionState: 0 | 1;
  purchaseTimeMillis: string;
  obfuscatedExternalAccountId?: string;
  voidedTimeMillis?: string;
}

/** A subscription purchase as the fake keeps it (`purchases.subscriptionsv2` resource fields). */
export interface FakePlaySubscription {
  readonly productId: string;
  readonly purchaseToken: string;
  /** `SUBSCRIPTION_STATE_ACTIVE`, `…_CANCELED`, `…_IN_GRACE_PERIOD`, `…_ON_HOLD`, `…_EXPIRED`, … */
  subscriptionState: string;
  acknowledgementState: 'ACKNOWLEDGEMENT_STATE_PENDING' | 'ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED';
  startTime: string;
  expiryTime: string;
  autoRenewEnabled: boolean;
  /** Paid orders, oldest first: `GPA.x`, then `GPA.x..0`, `GPA.x..1` at each renewal. */
  readonly orders: string[];
  /** The `GPA.x` its renewals' order ids are made from. */
  readonly orderBase: string;
  /** The token this subscription replaced (an upgrade or downgrade): `linkedPurchaseToken`. */
  readonly linkedPurchaseToken?: string;
  obfuscatedExternalAccountId?: string;
  /** Orders voided (refunded), with when. */
  readonly voided: Map<string, string>;
}

/** RTDN `subscriptionNotification` types the fake sends (Google's numbers). */
export const PLAY_SUBSCRIPTION_NOTIFICATIONS = {
  SUBSCRIPTION_RECOVERED: 1,
  SUBSCRIPTION_RENEWED: 2,
  SUBSCRIPTION_CANCELED: 3,
  SUBSCRIPTION_PURCHASED: 4,
  SUBSCRIPTION_ON_HOLD: 5,
  SUBSCRIPTION_IN_GRACE_PERIOD: 6,
  SUBSCRIPTION_REVOKED: 12,
  SUBSCRIPTION_EXPIRED: 13,
} as const;

/** Google Play's Android Publisher API and OAuth token endpoint, with RTDN pushes. */
export interface FakeGooglePlay {
  /** The API's address: `PAYMENTS_GOOGLE_PLAY_API_URL`. */
  readonly url: string;
  readonly packageName: string;
  /** A service account JSON key whose `token_uri` is the fake's: `PAYMENTS_GOOGLE_PLAY_SERVICE_ACCOUNT`. */
  readonly serviceAccount: string;
  /** Fault injection (token endpoint and API). */
  readonly api: FaultyProvider;
  readonly purchases: Map<string, FakePlayPurchase>;
  /** Access tokens issued so far (one per JWT grant). */
  readonly tokensIssued: number;
  /** A purchase in the app; returns its purchase token. */
  purchase(productId: string, options?: { accountId?: string; pending?: boolean }): string;
  /** A pending purchase is paid. */
  complete(purchaseToken: string): void;
  /** Google voids the purchase (refund, chargeback): canceled, listed in voided purchases. */
  voidPurchase(purchaseToken: string): void;
  /** POSTs a Real-time developer notification (Pub/Sub push JSON) about the purchase to `url`. */
  notify(url: string, purchaseToken: string, kind: 'purchased' | 'canceled' | 'voided'): Promise<number>;
  readonly subscriptions: Map<string, FakePlaySubscription>;
  /** A subscription bought in the app (a month, renewing); returns its purchase token. */
  subscribe(productId: string, options?: { accountId?: string }): string;
  /** The subscription renews, or recovers from its grace period or hold: a new paid order, a month more. */
  renew(purchaseToken: string): string;
  /** Sets the subscription's state (`SUBSCRIPTION_STATE_IN_GRACE_PERIOD`, `…_ON_HOLD`, `…_EXPIRED`, …). */
  setState(purchaseToken: string, state: string): void;
  /** The buyer turns renewal off (`SUBSCRIPTION_STATE_CANCELED`, paid to its expiry). */
  cancel(purchaseToken: string): void;
  /** Google refunds the latest order and revokes the subscription (expired, its order voided). */
  revoke(purchaseToken: string): string;
  /**
   * The buyer upgrades or downgrades to `productId` (`BillingFlowParams.SubscriptionUpdateParams`):
   * a new purchase token whose `linkedPurchaseToken` is the old one, which expires now. `charge`
   * (CHARGE_FULL_PRICE): a new order pays a month from now; otherwise (WITH_TIME_PRORATION,
   * WITHOUT_PRORATION) no charge now: the new token carries on the old one's paid period (its
   * latest order) to the old expiry. Returns the new token.
   */
  replace(purchaseToken: string, productId: string, options?: { charge?: boolean }): string;
  /**
   * The Pub/Sub push body of a subscription notification (`SUBSCRIPTION_RENEWED`, …) about the
   * purchase token, a new message id each time (a redelivery is the same body again).
   */
  subscriptionPush(purchaseToken: string, type: keyof typeof PLAY_SUBSCRIPTION_NOTIFICATIONS): string;
  /** The Pub/Sub push body of a subscription order voided (`voidedPurchaseNotification`, productType 1). */
  voidedOrderPush(purchaseToken: string, orderId: string): string;
  /** Google's OIDC signing keys (JWKS), as `https://www.googleapis.com/oauth2/v3/certs` serves them. */
  readonly certsUrl: string;
  /** The push subscription's service account (the `email` of its OIDC tokens). */
  readonly pushServiceAccount: string;
  /**
   * The OIDC token Pub/Sub puts in `Authorization: Bearer …` of a push: RS256 by Google's key (or,
   * `foreignKey`, by a key Google never published), for `audience`, of `email`.
   */
  pushToken(options: { audience: string; email?: string; foreignKey?: boolean }): Promise<string>;
  close(): Promise<void>;
}

const unauthorized = {
  status: 401,
  json: { error: { code: 401, message: 'Request is missing valid credentials' } },
};
const notFound = (message: string) => ({ status: 404, json: { error: { code: 404, message } } });

/**
 * A fake Google Play: an OAuth token endpoint that accepts only the JWT bearer grant signed RS256
 * by its service account's key, and the Android Publisher API calls payments makes
 * (`purchases.products.get`, `:acknowledge`, `purchases.voidedpurchases.list`) behind that token;
 * Real-time developer notifications are pushed as Pub/Sub does (`{ message: { data: base64 } }`).
 *
 * @example
 * const play = await startFakeGooglePlay();
 * const token = play.purchase('coins-500', { accountId: userId });
 * // the app: POST /payments/purchases/google-play { productId: 'coins-500', purchaseToken: token }
 */
export async function startFakeGooglePlay(options: { packageName?: string } = {}): Promise<FakeGooglePlay> {
  const packageName = options.packageName ?? 'com.example.socle';
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const clientEmail = 'payments@socle-test.iam.gserviceaccount.com';
  const api = await startFaultyProvider();
  const tokenUri = `${api.url}/token`;
  const purchases = new Map<string, FakePlayPurchase>();
  const accessTokens = new Set<string>();
  const prefix = `/androidpublisher/v3/applications/${encodeURIComponent(packageName)}/purchases/`;
  const subscriptions = new Map<string, FakePlaySubscription>();
  // Google's OIDC key for push tokens, published at /oauth2/v3/certs; another one it never published.
  const google = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const googleKeyId = randomBytes(20).toString('hex');
  const jwks = {
    keys: [{ ...(await exportJWK(google.publicKey)), kid: googleKeyId, alg: 'RS256', use: 'sig' }],
  };
  const pushServiceAccount = 'rtdn-push@socle-test.iam.gserviceaccount.com';
  const MONTH_MS = 30 * 86_400_000;
  const subscriptionResource = (subscription: FakePlaySubscription) => ({
    kind: 'androidpublisher#subscriptionPurchaseV2',
    regionCode: 'CH',
    startTime: subscription.startTime,
    subscriptionState: subscription.subscriptionState,
    latestOrderId: subscription.orders.at(-1),
    acknowledgementState: subscription.acknowledgementState,
    ...(subscription.linkedPurchaseToken === undefined
      ? {}
      : { linkedPurchaseToken: subscription.linkedPurchaseToken }),
    lineItems: [
      {
        productId: subscription.productId,
        expiryTime: subscription.expiryTime,
        autoRenewingPlan: { autoRenewEnabled: subscription.autoRenewEnabled },
        offerDetails: { basePlanId: 'monthly' },
        latestSuccessfulOrderId: subscription.orders.at(-1),
      },
    ],
    ...(subscription.obfuscatedExternalAccountId === undefined
      ? {}
      : {
          externalAccountIdentifiers: {
            obfuscatedExternalAccountId: subscription.obfuscatedExternalAccountId,
          },
        }),
  });

  /** Checks the grant: RS256 by the account's key, issued by it, for this endpoint, not expired. */
  const grant = (request: ReceivedRequest) => {
    const form = new URLSearchParams(request.body);
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return undefined;
    const [head = '', body = '', signature = ''] = (form.get('assertion') ?? '').split('.');
    const valid = verify(
      'sha256',
      Buffer.from(`${head}.${body}`),
      publicKey,
      Buffer.from(signature, 'base64url'),
    );
    if (!valid) return undefined;
    let claims: Record<string, unknown>;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      return undefined;
    }
    const now = Date.now() / 1000;
    if (claims.iss !== clientEmail || claims.aud !== tokenUri || typeof claims.exp !== 'number')
      return undefined;
    if (claims.exp < now || claims.scope !== 'https://www.googleapis.com/auth/androidpublisher')
      return undefined;
    const token = `ya29.${randomBytes(16).toString('hex')}`;
    accessTokens.add(token);
    return token;
  };

  api.answer((request) => {
    const url = new URL(request.url, api.url);
    if (request.method === 'POST' && url.pathname === '/token') {
      const token = grant(request);
      return token === undefined
        ? { status: 400, json: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } }
        : { json: { access_token: token, expires_in: 3599, token_type: 'Bearer' } };
    }
    if (request.method === 'GET' && url.pathname === '/oauth2/v3/certs') return { json: jwks };
    const bearer = String(request.headers.authorization ?? '').replace(/^Bearer /, '');
    if (!accessTokens.has(bearer)) return unauthorized;
    if (!url.pathname.startsWith(prefix)) return notFound('Package not found');
    const rest = url.pathname.slice(prefix.length);
    if (request.method === 'GET' && rest === 'voidedpurchases') {
      const since = Number(url.searchParams.get('startTime') ?? 0);
      return {
        json: {
          voidedPurchases: [...purchases.values()]
            .filter(
              (purchase) =>
                purchase.voidedTimeMillis !== undefined && Number(purchase.voidedTimeMillis) >= since,
            )
            .map((purchase) => ({
              kind: 'androidpublisher#voidedPurchase',
              purchaseToken: purchase.purchaseToken,
              orderId: purchase.orderId,
              purchaseTimeMillis: purchase.purchaseTimeMillis,
              voidedTimeMillis: purchase.voidedTimeMillis,
              voidedSource: 0,
              voidedReason: 1,
            }))
            .concat(
              [...subscriptions.values()].flatMap((subscription) =>
                [...subscription.voided]
                  .filter(([, at]) => Number(at) >= since)
                  .map(([orderId, at]) => ({
                    kind: 'androidpublisher#voidedPurchase',
                    purchaseToken: subscription.purchaseToken,
                    orderId,
                    purchaseTimeMillis: subscription.startTime,
                    voidedTimeMillis: at,
                    voidedSource: 0,
                    voidedReason: 1,
                  })),
              ),
            ),
        },
      };
    }
    const v2 = /^subscriptionsv2\/tokens\/([^/]+)$/.exec(rest);
    if (v2 !== null) {
      const subscription = subscriptions.get(decodeURIComponent(v2[1] ?? ''));
      if (subscription === undefined || request.method !== 'GET')
        return { status: 400, json: { error: { code: 400, message: 'Invalid Value' } } };
      return { json: subscriptionResource(subscription) };
    }
    const acknowledged = /^subscriptions\/([^/]+)\/tokens\/([^/]+):acknowledge$/.exec(rest);
    if (acknowledged !== null) {
      const subscription = subscriptions.get(decodeURIComponent(acknowledged[2] ?? ''));
      if (subscription?.productId !== decodeURIComponent(acknowledged[1] ?? '') || request.method !== 'POST')
        return { status: 400, json: { error: { code: 400, message: 'Invalid Value' } } };
      subscription.acknowledgementState = 'ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED';
      return { status: 204, body: '' };
    }
    const match = /^products\/([^/]+)\/tokens\/([^/]+?)(:acknowledge)?$/.exec(rest);
    if (match === null) return notFound('Not found');
    const purchase = purchases.get(decodeURIComponent(match[2] ?? ''));
    if (purchase === undefined || purchase.productId !== decodeURIComponent(match[1] ?? ''))
      return { status: 400, json: { error: { code: 400, message: 'Invalid Value' } } };
    if (match[3] !== undefined) {
      if (request.method !== 'POST') return notFound('Not found');
      purchase.acknowledgementState = 1;
      return { status: 204, body: '' };
    }
    if (request.method !== 'GET') return notFound('Not found');
    const { productId: _product, purchaseToken: _token, voidedTimeMillis: _voided, ...fields } = purchase;
    return { json: { kind: 'androidpublisher#productPurchase', regionCode: 'CH', quantity: 1, ...fields } };
  });

  const findSubscription = (token: string) => {
    const found = subscriptions.get(token);
    if (found === undefined) throw new Error(`no subscription ${token}`);
    return found;
  };
  const newOrderId = () =>
    `GPA.${randomBytes(2).toString('hex')}-${randomBytes(2).toString('hex')}-${randomBytes(3).toString('hex')}`;
  const newToken = () =>
    `${randomBytes(24)
      .toString('base64url')
      .replace(/[^A-Za-z0-9]/g, 'x')}.AO-J1O${randomBytes(8).toString('hex')}`;
  /** A Pub/Sub push body carrying a developer notification (a new message id each call). */
  const pushBody = (fields: object) =>
    JSON.stringify({
      message: {
        data: Buffer.from(
          JSON.stringify({ version: '1.0', packageName, eventTimeMillis: String(Date.now()), ...fields }),
        ).toString('base64'),
        messageId: randomBytes(8).toString('hex'),
        publishTime: new Date().toISOString(),
      },
      subscription: 'projects/socle-test/subscriptions/play-rtdn',
    });
  const find = (token: string) => {
    const found = purchases.get(token);
    if (found === undefined) throw new Error(`no purchase ${token}`);
    return found;
  };

  return {
    url: api.url,
    packageName,
    serviceAccount: JSON.stringify({
      type: 'service_account',
      client_email: clientEmail,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      token_uri: tokenUri,
    }),
    api,
    purchases,
    get tokensIssued() {
      return accessTokens.size;
    },
    purchase(productId, purchase = {}) {
      const purchaseToken = `${randomBytes(24)
        .toString('base64url')
        .replace(/[^A-Za-z0-9]/g, 'x')}.AO-J1O${randomBytes(8).toString('hex')}`;
      purchases.set(purchaseToken, {
        productId,
        purchaseToken,
        orderId: `GPA.${randomBytes(2).toString('hex')}-${randomBytes(2).toString('hex')}-${randomBytes(3).toString('hex')}`,
        purchaseState: purchase.pending === true ? 2 : 0,
        acknowledgementState: 0,
        consumptionState: 0,
        purchaseTimeMillis: String(Date.now()),
        ...(purchase.accountId === undefined ? {} : { obfuscatedExternalAccountId: purchase.accountId }),
      });
      return purchaseToken;
    },
    complete(purchaseToken) {
      find(purchaseToken).purchaseState = 0;
    },
    voidPurchase(purchaseToken) {
      const purchase = find(purchaseToken);
      purchase.purchaseState = 1;
      purchase.voidedTimeMillis = String(Date.now());
    },
    async notify(url, purchaseToken, kind) {
      const purchase = find(purchaseToken);
      const notification = {
        version: '1.0',
        packageName,
        eventTimeMillis: String(Date.now()),
        ...(kind === 'voided'
          ? {
              voidedPurchaseNotification: {
                purchaseToken,
                orderId: purchase.orderId,
                productType: 2,
                refundType: 1,
              },
            }
          : {
              oneTimeProductNotification: {
                version: '1.0',
                notificationType: kind === 'purchased' ? 1 : 2,
                purchaseToken,
                sku: purchase.productId,
              },
            }),
      };
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          message: {
            data: Buffer.from(JSON.stringify(notification)).toString('base64'),
            messageId: randomBytes(8).toString('hex'),
            publishTime: new Date().toISOString(),
          },
          subscription: 'projects/socle-test/subscriptions/play-rtdn',
        }),
      });
      await response.arrayBuffer();
      return response.status;
    },
    subscriptions,
    certsUrl: `${api.url}/oauth2/v3/certs`,
    pushServiceAccount,
    subscribe(productId, subscribing = {}) {
      const purchaseToken = newToken();
      const now = Date.now();
      const first = newOrderId();
      subscriptions.set(purchaseToken, {
        productId,
        purchaseToken,
        subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE',
        acknowledgementState: 'ACKNOWLEDGEMENT_STATE_PENDING',
        startTime: new Date(now).toISOString(),
        expiryTime: new Date(now + MONTH_MS).toISOString(),
        autoRenewEnabled: true,
        orders: [first],
        orderBase: first,
        voided: new Map(),
        ...(subscribing.accountId === undefined
          ? {}
          : { obfuscatedExternalAccountId: subscribing.accountId }),
      });
      return purchaseToken;
    },
    renew(purchaseToken) {
      const subscription = findSubscription(purchaseToken);
      const renewals = subscription.orders.filter((order) =>
        order.startsWith(`${subscription.orderBase}..`),
      ).length;
      const orderId = `${subscription.orderBase}..${renewals}`;
      subscription.orders.push(orderId);
      subscription.subscriptionState = 'SUBSCRIPTION_STATE_ACTIVE';
      subscription.expiryTime = new Date(Date.parse(subscription.expiryTime) + MONTH_MS).toISOString();
      return orderId;
    },
    setState(purchaseToken, state) {
      findSubscription(purchaseToken).subscriptionState = state;
    },
    cancel(purchaseToken) {
      const subscription = findSubscription(purchaseToken);
      subscription.subscriptionState = 'SUBSCRIPTION_STATE_CANCELED';
      subscription.autoRenewEnabled = false;
    },
    revoke(purchaseToken) {
      const subscription = findSubscription(purchaseToken);
      const orderId = subscription.orders.at(-1) as string;
      subscription.subscriptionState = 'SUBSCRIPTION_STATE_EXPIRED';
      subscription.autoRenewEnabled = false;
      subscription.expiryTime = new Date().toISOString();
      subscription.voided.set(orderId, String(Date.now()));
      return orderId;
    },
    replace(purchaseToken, productId, replacing = {}) {
      const old = findSubscription(purchaseToken);
      const now = Date.now();
      const token = newToken();
      const base = newOrderId();
      const carried = old.orders.at(-1) as string;
      subscriptions.set(token, {
        productId,
        purchaseToken: token,
        subscriptionState: 'SUBSCRIPTION_STATE_ACTIVE',
        acknowledgementState: 'ACKNOWLEDGEMENT_STATE_PENDING',
        startTime: new Date(now).toISOString(),
        expiryTime: replacing.charge === true ? new Date(now + MONTH_MS).toISOString() : old.expiryTime,
        autoRenewEnabled: true,
        orders: replacing.charge === true ? [base] : [carried],
        orderBase: base,
        linkedPurchaseToken: purchaseToken,
        voided: new Map(),
        ...(old.obfuscatedExternalAccountId === undefined
          ? {}
          : { obfuscatedExternalAccountId: old.obfuscatedExternalAccountId }),
      });
      old.subscriptionState = 'SUBSCRIPTION_STATE_EXPIRED';
      old.autoRenewEnabled = false;
      old.expiryTime = new Date(now).toISOString();
      return token;
    },
    subscriptionPush(purchaseToken, type) {
      const subscription = findSubscription(purchaseToken);
      return pushBody({
        subscriptionNotification: {
          version: '1.0',
          notificationType: PLAY_SUBSCRIPTION_NOTIFICATIONS[type],
          purchaseToken,
          subscriptionId: subscription.productId,
        },
      });
    },
    voidedOrderPush(purchaseToken, orderId) {
      return pushBody({
        voidedPurchaseNotification: { purchaseToken, orderId, productType: 1, refundType: 1 },
      });
    },
    pushToken({ audience, email = pushServiceAccount, foreignKey = false }) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ email, email_verified: true, sub: '1234567890' })
        .setProtectedHeader({ alg: 'RS256', kid: googleKeyId, typ: 'JWT' })
        .setIssuer('https://accounts.google.com')
        .setAudience(audience)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(foreignKey ? stranger.privateKey : google.privateKey);
    },
    close: () => api.close(),
  };
}
