import { generateKeyPairSync, type KeyObject, randomUUID, sign } from 'node:crypto';

/**
 * A minimal DER writer: enough X.509 to build a certificate chain shaped like Apple's (root CA →
 * intermediate CA with Apple's WWDR extension → leaf with Apple's receipt-signing extension).
 */
const der = {
  tlv(tag: number, content: Buffer): Buffer {
    const length = content.length;
    let head: Buffer;
    if (length < 0x80) head = Buffer.from([tag, length]);
    else {
      const bytes: number[] = [];
      for (let rest = length; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
      head = Buffer.from([tag, 0x80 | bytes.length, ...bytes]);
    }
    return Buffer.concat([head, content]);
  },
  seq: (...parts: Buffer[]) => der.tlv(0x30, Buffer.concat(parts)),
  set: (...parts: Buffer[]) => der.tlv(0x31, Buffer.concat(parts)),
  int(value: number): Buffer {
    const bytes: number[] = [];
    for (let rest = value; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
    if (bytes.length === 0 || (bytes[0] as number) >= 0x80) bytes.unshift(0);
    return der.tlv(0x02, Buffer.from(bytes));
  },
  oid(dotted: string): Buffer {
    const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
    const bytes = [first * 40 + second];
    for (const arc of rest) {
      const chunk = [arc & 0x7f];
      for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128))
        chunk.unshift((value & 0x7f) | 0x80);
      bytes.push(...chunk);
    }
    return der.tlv(0x06, Buffer.from(bytes));
  },
  utf8: (text: string) => der.tlv(0x0c, Buffer.from(text, 'utf8')),
  time(date: Date): Buffer {
    const iso = date.toISOString(); // 2026-12-07T05:00:00.000Z → 261207050000Z
    const text = `${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
    return der.tlv(0x17, Buffer.from(text, 'ascii'));
  },
  bool: (value: boolean) => der.tlv(0x01, Buffer.from([value ? 0xff : 0])),
  octets: (content: Buffer) => der.tlv(0x04, content),
  bits: (content: Buffer) => der.tlv(0x03, Buffer.concat([Buffer.from([0]), content])),
  explicit: (index: number, content: Buffer) => der.tlv(0xa0 + index, content),
  null: () => Buffer.from([0x05, 0x00]),
};

const ECDSA_SHA256 = '1.2.840.10045.4.3.2';
/** Apple's marker extensions, checked by `SignedDataVerifier`. */
const APPLE_INTERMEDIATE_OID = '1.2.840.113635.100.6.2.1';
const APPLE_LEAF_OID = '1.2.840.113635.100.6.11.1';

interface Issued {
  readonly der: Buffer;
  readonly key: KeyObject;
  readonly name: string;
}

function certificate(options: {
  readonly serial: number;
  readonly subject: string;
  readonly issuer?: Issued;
  readonly ca: boolean;
  readonly extensionOid?: string;
}): Issued {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const name = (commonName: string) => der.seq(der.set(der.seq(der.oid('2.5.4.3'), der.utf8(commonName))));
  const now = Date.now();
  const extensions: Buffer[] = [];
  if (options.ca)
    extensions.push(der.seq(der.oid('2.5.29.19'), der.bool(true), der.octets(der.seq(der.bool(true)))));
  if (options.extensionOid !== undefined)
    extensions.push(der.seq(der.oid(options.extensionOid), der.octets(der.null())));
  const tbs = der.seq(
    der.explicit(0, der.int(2)),
    der.int(options.serial),
    der.seq(der.oid(ECDSA_SHA256)),
    name(options.issuer?.name ?? options.subject),
    der.seq(der.time(new Date(now - 86_400_000)), der.time(new Date(now + 365 * 86_400_000))),
    name(options.subject),
    publicKey.export({ type: 'spki', format: 'der' }),
    ...(extensions.length === 0 ? [] : [der.explicit(3, der.seq(...extensions))]),
  );
  const signature = sign('sha256', tbs, { key: options.issuer?.key ?? privateKey, dsaEncoding: 'der' });
  return {
    der: der.seq(tbs, der.seq(der.oid(ECDSA_SHA256)), der.bits(signature)),
    key: privateKey,
    name: options.subject,
  };
}

const base64url = (value: Buffer | string) => Buffer.from(value).toString('base64url');

/** A StoreKit 2 transaction as the fake signs it (the fields payments reads, and a few more). */
export interface FakeAppStoreTransaction {
  transactionId: string;
  originalTransactionId: string;
  bundleId: string;
  productId: string;
  purchaseDate: number;
  originalPurchaseDate: number;
  quantity: number;
  type: 'Consumable' | 'Non-Consumable' | 'Non-Renewing Subscription' | 'Auto-Renewable Subscription';
  inAppOwnershipType: 'PURCHASED';
  signedDate: number;
  environment: 'Sandbox' | 'Production';
  transactionReason: 'PURCHASE';
  storefront: string;
  storefrontId: string;
  price: number;
  currency: string;
  appAccountToken?: string;
  revocationDate?: number;
  revocationReason?: number;
  /** Auto-renewable subscriptions: the end of the period this transaction paid. */
  expiresDate?: number;
  /** 1 introductory offer (with `offerDiscountType`: `FREE_TRIAL`, `PAY_AS_YOU_GO`, `PAY_UP_FRONT`). */
  offerType?: number;
  offerDiscountType?: string;
}

/** An auto-renewable subscription as the fake keeps it (what `Get All Subscription Statuses` tells). */
export interface FakeAppStoreSubscription {
  readonly originalTransactionId: string;
  /** The transaction of the latest period. */
  latestTransactionId: string;
  /** Apple's `status`: 1 active, 2 expired, 3 billing retry, 4 billing grace period, 5 revoked. */
  status: 1 | 2 | 3 | 4 | 5;
  /** 1 renews at the period's end, 0 the buyer turned renewal off. */
  autoRenewStatus: 0 | 1;
  gracePeriodExpiresDate?: number;
}

/** The Server Notifications V2 types the fake sends. */
export type NotificationType =
  | 'REFUND'
  | 'REVOKE'
  | 'REFUND_REVERSED'
  | 'ONE_TIME_CHARGE'
  | 'TEST'
  | 'SUBSCRIBED'
  | 'DID_RENEW'
  | 'DID_FAIL_TO_RENEW'
  | 'GRACE_PERIOD_EXPIRED'
  | 'EXPIRED'
  | 'DID_CHANGE_RENEWAL_STATUS';

/** A month, as the fake's subscriptions renew. */
const PERIOD_MS = 30 * 86_400_000;

/** The App Store, as far as a server sees it: signed transactions and Server Notifications V2. */
export interface FakeAppStore {
  readonly bundleId: string;
  readonly environment: 'Sandbox' | 'Production';
  /** The test root CA (DER, base64): `PAYMENTS_APPLE_ROOT_CERTIFICATES`. */
  readonly rootCertificate: string;
  readonly transactions: Map<string, FakeAppStoreTransaction>;
  /** A purchase in the app: the transaction and its JWS (`Transaction.jwsRepresentation`). */
  purchase(
    productId: string,
    options?: { appAccountToken?: string; type?: FakeAppStoreTransaction['type'] },
  ): { transactionId: string; signedTransaction: string };
  /** Apple refunds the transaction (`revocationDate` set); returns its new JWS. */
  refund(transactionId: string): string;
  /**
   * Apple takes the refund back (REFUND_REVERSED: the revocation is gone); returns the new JWS.
   * A subscription revoked by the refund of its latest period is active again.
   */
  reverseRefund(transactionId: string): string;
  /** The transaction's current JWS. */
  signedTransaction(transactionId: string): string;
  /** The JWS of any payload, signed by this store's chain (to test what the server refuses). */
  sign(payload: unknown): string;
  /** A Server Notification V2 body (`{ "signedPayload": … }`) about the transaction. */
  notification(type: NotificationType, transactionId: string): string;
  /** POSTs that notification to `url`; returns the status. */
  deliver(url: string, type: NotificationType, transactionId: string): Promise<number>;
  readonly subscriptions: Map<string, FakeAppStoreSubscription>;
  /**
   * A purchase of an auto-renewable subscription (a month from now, or a free trial): its first
   * transaction, whose id is the subscription's `originalTransactionId`.
   */
  subscribe(
    productId: string,
    options?: { appAccountToken?: string; freeTrial?: boolean },
  ): { originalTransactionId: string; transactionId: string; signedTransaction: string };
  /** The subscription renews (or recovers from billing retry): a new transaction for the next month. */
  renew(originalTransactionId: string): { transactionId: string; signedTransaction: string };
  /** The renewal's charge fails: billing retry, in the grace period when `gracePeriod` (access kept). */
  failRenewal(originalTransactionId: string, options?: { gracePeriod?: boolean }): void;
  /** The subscription ends (voluntarily, or billing retry gave up). */
  expire(originalTransactionId: string): void;
  /**
   * The buyer subscribes again after it expired (SUBSCRIBED, subtype RESUBSCRIBE): a new
   * transaction for a month from now, under the same original transaction id.
   */
  resubscribe(originalTransactionId: string): { transactionId: string; signedTransaction: string };
  /** The buyer turns auto-renewal off (false) or back on. */
  setAutoRenew(originalTransactionId: string, on: boolean): void;
  /**
   * A Server Notification V2 body about the subscription as it stands: its latest transaction, its
   * renewal info (both signed) and its `status`.
   */
  subscriptionNotification(type: NotificationType, originalTransactionId: string, subtype?: string): string;
}

/**
 * A fake App Store: a test root CA → intermediate → leaf chain made here (ECDSA P-256, Apple's
 * marker extensions), transactions and notifications signed ES256 with the leaf and the whole
 * chain in `x5c`, as Apple's are. The server trusts `rootCertificate` and verifies with Apple's own
 * `SignedDataVerifier` (online checks off: the test chain has no OCSP responder).
 *
 * @example
 * const store = createFakeAppStore({ bundleId: 'com.example.app' });
 * // PAYMENTS_APPLE_BUNDLE_ID=com.example.app PAYMENTS_APPLE_ENVIRONMENT=Sandbox
 * // PAYMENTS_APPLE_ROOT_CERTIFICATES=store.rootCertificate PAYMENTS_APPLE_ONLINE_CHECKS=false
 * const { signedTransaction } = store.purchase('coins-500', { appAccountToken: userId });
 * // the app: POST /payments/purchases/apple { signedTransaction }
 */
export function createFakeAppStore(
  options: { bundleId?: string; environment?: 'Sandbox' | 'Production'; appAppleId?: number } = {},
): FakeAppStore {
  const bundleId = options.bundleId ?? 'com.example.socle';
  const environment = options.environment ?? 'Sandbox';
  const root = certificate({ serial: 1, subject: 'Socle Test Root CA', ca: true });
  const intermediate = certificate({
    serial: 2,
    subject: 'Socle Test WWDR CA',
    issuer: root,
    ca: true,
    extensionOid: APPLE_INTERMEDIATE_OID,
  });
  const leaf = certificate({
    serial: 3,
    subject: 'Socle Test App Store Signing',
    issuer: intermediate,
    ca: false,
    extensionOid: APPLE_LEAF_OID,
  });
  const header = base64url(
    JSON.stringify({
      alg: 'ES256',
      x5c: [leaf, intermediate, root].map((cert) => cert.der.toString('base64')),
    }),
  );
  const transactions = new Map<string, FakeAppStoreTransaction>();
  const subscriptions = new Map<string, FakeAppStoreSubscription>();
  // Notifications signed in the same millisecond still carry increasing `signedDate`s, as Apple's do.
  let lastSignedDate = 0;
  const signedNow = () => {
    lastSignedDate = Math.max(Date.now(), lastSignedDate + 1);
    return lastSignedDate;
  };
  let next = 2_000_000_000_000_000 + Math.floor(Math.random() * 1_000_000) * 1_000;

  const signPayload = (payload: unknown) => {
    const input = `${header}.${base64url(JSON.stringify(payload))}`;
    const signature = sign('sha256', Buffer.from(input), { key: leaf.key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${base64url(signature)}`;
  };
  const find = (transactionId: string) => {
    const found = transactions.get(transactionId);
    if (found === undefined) throw new Error(`no transaction ${transactionId}`);
    return found;
  };
  const signedTransaction = (transactionId: string) =>
    signPayload({ ...find(transactionId), signedDate: signedNow() });
  const findSubscription = (originalTransactionId: string) => {
    const found = subscriptions.get(originalTransactionId);
    if (found === undefined) throw new Error(`no subscription ${originalTransactionId}`);
    return found;
  };
  const newTransaction = (fields: Partial<FakeAppStoreTransaction> & { productId: string }) => {
    next += 1;
    const transactionId = String(next);
    const now = Date.now();
    const transaction: FakeAppStoreTransaction = {
      originalTransactionId: transactionId,
      bundleId,
      purchaseDate: now,
      originalPurchaseDate: now,
      quantity: 1,
      type: 'Consumable',
      inAppOwnershipType: 'PURCHASED',
      signedDate: now,
      environment,
      transactionReason: 'PURCHASE',
      storefront: 'CHE',
      storefrontId: '143459',
      price: 4990,
      currency: 'EUR',
      ...fields,
      transactionId,
    };
    transactions.set(transactionId, transaction);
    return transaction;
  };
  const notification = (type: string, transactionId: string) => {
    // About a subscription's transaction (a period refunded), Apple also tells the subscription's status.
    const subscription = subscriptions.get(find(transactionId).originalTransactionId);
    return JSON.stringify({
      signedPayload: signPayload({
        notificationType: type,
        notificationUUID: randomUUID(),
        version: '2.0',
        signedDate: signedNow(),
        data: {
          bundleId,
          bundleVersion: '1',
          environment,
          ...(options.appAppleId === undefined ? {} : { appAppleId: options.appAppleId }),
          signedTransactionInfo: signedTransaction(transactionId),
          ...(subscription === undefined ? {} : { status: subscription.status }),
        },
      }),
    });
  };

  const subscriptionNotification = (type: string, originalTransactionId: string, subtype?: string) => {
    const subscription = findSubscription(originalTransactionId);
    const latest = find(subscription.latestTransactionId);
    const signedDate = signedNow();
    const renewalInfo = {
      originalTransactionId,
      productId: latest.productId,
      autoRenewProductId: latest.productId,
      autoRenewStatus: subscription.autoRenewStatus,
      isInBillingRetryPeriod: subscription.status === 3 || subscription.status === 4,
      ...(subscription.gracePeriodExpiresDate === undefined
        ? {}
        : { gracePeriodExpiresDate: subscription.gracePeriodExpiresDate }),
      ...(subscription.status === 2 ? { expirationIntent: subscription.autoRenewStatus === 0 ? 1 : 2 } : {}),
      recentSubscriptionStartDate: latest.originalPurchaseDate,
      renewalDate: latest.expiresDate,
      signedDate,
      environment,
    };
    return JSON.stringify({
      signedPayload: signPayload({
        notificationType: type,
        ...(subtype === undefined ? {} : { subtype }),
        notificationUUID: randomUUID(),
        version: '2.0',
        signedDate,
        data: {
          bundleId,
          bundleVersion: '1',
          environment,
          ...(options.appAppleId === undefined ? {} : { appAppleId: options.appAppleId }),
          signedTransactionInfo: signPayload({ ...latest, signedDate }),
          signedRenewalInfo: signPayload(renewalInfo),
          status: subscription.status,
        },
      }),
    });
  };

  return {
    bundleId,
    environment,
    rootCertificate: root.der.toString('base64'),
    transactions,
    subscriptions,
    purchase(productId, purchase = {}) {
      const { transactionId } = newTransaction({
        productId,
        type: purchase.type ?? 'Consumable',
        ...(purchase.appAccountToken === undefined ? {} : { appAccountToken: purchase.appAccountToken }),
      });
      return { transactionId, signedTransaction: signedTransaction(transactionId) };
    },
    subscribe(productId, purchase = {}) {
      const now = Date.now();
      const transaction = newTransaction({
        productId,
        type: 'Auto-Renewable Subscription',
        expiresDate: now + PERIOD_MS,
        ...(purchase.freeTrial === true ? { offerType: 1, offerDiscountType: 'FREE_TRIAL', price: 0 } : {}),
        ...(purchase.appAccountToken === undefined ? {} : { appAccountToken: purchase.appAccountToken }),
      });
      const { transactionId } = transaction;
      subscriptions.set(transactionId, {
        originalTransactionId: transactionId,
        latestTransactionId: transactionId,
        status: 1,
        autoRenewStatus: 1,
      });
      return {
        originalTransactionId: transactionId,
        transactionId,
        signedTransaction: signedTransaction(transactionId),
      };
    },
    renew(originalTransactionId) {
      const subscription = findSubscription(originalTransactionId);
      const previous = find(subscription.latestTransactionId);
      const start = previous.expiresDate ?? Date.now();
      const {
        offerType: _offer,
        offerDiscountType: _discount,
        revocationDate: _revoked,
        revocationReason: _reason,
        ...kept
      } = previous;
      const transaction = newTransaction({
        ...kept,
        originalTransactionId,
        purchaseDate: start,
        expiresDate: start + PERIOD_MS,
        transactionReason: 'PURCHASE',
        price: 4990,
      });
      subscription.latestTransactionId = transaction.transactionId;
      subscription.status = 1;
      delete subscription.gracePeriodExpiresDate;
      return {
        transactionId: transaction.transactionId,
        signedTransaction: signedTransaction(transaction.transactionId),
      };
    },
    failRenewal(originalTransactionId, failure = {}) {
      const subscription = findSubscription(originalTransactionId);
      const latest = find(subscription.latestTransactionId);
      subscription.status = failure.gracePeriod === true ? 4 : 3;
      if (failure.gracePeriod === true)
        subscription.gracePeriodExpiresDate = (latest.expiresDate ?? Date.now()) + 16 * 86_400_000;
    },
    expire(originalTransactionId) {
      const subscription = findSubscription(originalTransactionId);
      subscription.status = 2;
      delete subscription.gracePeriodExpiresDate;
    },
    resubscribe(originalTransactionId) {
      const subscription = findSubscription(originalTransactionId);
      const previous = find(subscription.latestTransactionId);
      const {
        offerType: _offer,
        offerDiscountType: _discount,
        revocationDate: _revoked,
        revocationReason: _reason,
        ...kept
      } = previous;
      const now = Date.now();
      const transaction = newTransaction({
        ...kept,
        originalTransactionId,
        purchaseDate: now,
        expiresDate: now + PERIOD_MS,
        transactionReason: 'PURCHASE',
        price: 4990,
      });
      subscription.latestTransactionId = transaction.transactionId;
      subscription.status = 1;
      subscription.autoRenewStatus = 1;
      delete subscription.gracePeriodExpiresDate;
      return {
        transactionId: transaction.transactionId,
        signedTransaction: signedTransaction(transaction.transactionId),
      };
    },
    setAutoRenew(originalTransactionId, on) {
      findSubscription(originalTransactionId).autoRenewStatus = on ? 1 : 0;
    },
    subscriptionNotification,
    refund(transactionId) {
      const transaction = find(transactionId);
      transaction.revocationDate = Date.now();
      transaction.revocationReason = 0;
      // The latest period of a subscription refunded: the subscription is revoked.
      const subscription = subscriptions.get(transaction.originalTransactionId);
      if (subscription?.latestTransactionId === transactionId) subscription.status = 5;
      return signedTransaction(transactionId);
    },
    reverseRefund(transactionId) {
      const transaction = find(transactionId);
      delete transaction.revocationDate;
      delete transaction.revocationReason;
      const subscription = subscriptions.get(transaction.originalTransactionId);
      if (subscription?.latestTransactionId === transactionId && subscription.status === 5)
        subscription.status = 1;
      return signedTransaction(transactionId);
    },
    signedTransaction,
    sign: signPayload,
    notification,
    async deliver(url, type, transactionId) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: notification(type, transactionId),
      });
      await response.arrayBuffer();
      return response.status;
    },
  };
}
