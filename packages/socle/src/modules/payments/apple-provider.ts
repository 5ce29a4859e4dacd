import {
  Environment,
  type JWSRenewalInfoDecodedPayload,
  type JWSTransactionDecodedPayload,
  SignedDataVerifier,
  VerificationException,
} from '@apple/app-store-server-library';
import { paymentsErrors } from './payments.errors.js';
import {
  type PaymentProvider,
  REFUND_REVERSED_EVENT,
  type StorePurchase,
  type StorePurchaseProof,
  type VerifiedEvent,
} from './provider.js';

export interface AppleProviderOptions {
  /** The app's bundle id (`com.example.app`): a transaction of another app does not verify. */
  readonly bundleId: string;
  /** `Production` or `Sandbox` (TestFlight, sandbox testers). */
  readonly environment: 'Production' | 'Sandbox';
  /** The app's Apple id (App Store Connect → App Information); required in Production. */
  readonly appAppleId?: number | undefined;
  /** DER bytes of the trusted roots: Apple Root CA G3 (apple.com/certificateauthority); a test root in tests. */
  readonly rootCertificates: readonly Buffer[];
  /** OCSP revocation checks and validity at the current date (on in production; off for test chains). */
  readonly onlineChecks: boolean;
}

/** Notification types (App Store Server Notifications V2) payments applies; others answer 400. */
const REVOKING = new Set(['REFUND', 'REVOKE']);
/** A refund taken back: the transaction it names carries no revocation any more. */
const REFUND_REVERSED = 'REFUND_REVERSED';
const PURCHASING = new Set(['ONE_TIME_CHARGE']);
/** Product types credited as packs. */
const PACK_TYPES = new Set(['Consumable', 'Non-Consumable', 'Non-Renewing Subscription']);
const SUBSCRIPTION_TYPE = 'Auto-Renewable Subscription';
/**
 * Notifications about an auto-renewable subscription payments applies. Each is read by the state
 * it carries (`data.status`, the latest transaction, the renewal info), not by its type, so a
 * replayed or late one changes nothing a newer one said. SUBSCRIBED covers a resubscription
 * (subtype RESUBSCRIBE: the same original transaction id after it expired); REFUND_REVERSED
 * gives a refunded period's grant back.
 */
const SUBSCRIPTION_NOTIFICATIONS = new Set([
  REFUND_REVERSED,
  'SUBSCRIBED',
  'DID_RENEW',
  'DID_FAIL_TO_RENEW',
  'GRACE_PERIOD_EXPIRED',
  'EXPIRED',
  'DID_CHANGE_RENEWAL_STATUS',
  'REFUND',
  'REVOKE',
]);
/** Apple's `status` of a subscription (App Store Server API `Status`). */
const APPLE_STATUS = { active: 1, expired: 2, billingRetry: 3, gracePeriod: 4, revoked: 5 } as const;
/**
 * The reference of an auto-renewable subscription's payment: its original transaction id, marked
 * apart from the transaction ids that name its periods (the first period's is the same id).
 */
const subscriptionReference = (originalTransactionId: string) => `original:${originalTransactionId}`;
const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/**
 * Apple in-app purchases: StoreKit 2 signed transactions posted by the app, and App Store Server
 * Notifications V2, both JWS verified with Apple's `SignedDataVerifier` against the configured
 * root certificates (the `x5c` chain leaf → intermediate → root, Apple's extension OIDs, the
 * signature, the bundle id and environment). A transaction's event key is its id and state
 * (`transaction:<id>:purchased|revoked`), the same whether the app or the notification tells it,
 * so a purchase is credited once and a refund reversed once, whoever says it first or again.
 */
export function createAppleProvider(options: AppleProviderOptions): PaymentProvider {
  const environment = options.environment === 'Production' ? Environment.PRODUCTION : Environment.SANDBOX;
  const verifier = new SignedDataVerifier(
    [...options.rootCertificates],
    options.onlineChecks,
    environment,
    options.bundleId,
    options.appAppleId,
  );
  const refused = (error: unknown, what: string): never => {
    if (error instanceof VerificationException)
      throw paymentsErrors.invalidSignature('apple', `the ${what} does not verify (status ${error.status})`);
    throw error;
  };
  const decodeTransaction = async (jws: string) => {
    try {
      return await verifier.verifyAndDecodeTransaction(jws);
    } catch (error) {
      return refused(error, 'signed transaction');
    }
  };
  const eventOf = (transaction: JWSTransactionDecodedPayload, source: string): VerifiedEvent => {
    const id = transaction.transactionId;
    if (id === undefined || transaction.productId === undefined)
      throw paymentsErrors.unknownEvent('apple', 'the transaction has no id or product');
    if (!PACK_TYPES.has(String(transaction.type)))
      throw paymentsErrors.unknownEvent('apple', `${transaction.type} transactions are not handled`);
    const revoked = transaction.revocationDate !== undefined;
    return {
      // A revocation is keyed by its date: a refund reversed (REFUND_REVERSED) and then granted
      // again is a new revocation, applied again.
      eventId: `transaction:${id}:${revoked ? `revoked:${transaction.revocationDate}` : 'purchased'}`,
      type: `${source}.${revoked ? 'revoked' : 'purchased'}`,
      occurredAt: new Date(
        (revoked ? transaction.revocationDate : transaction.purchaseDate) ?? transaction.signedDate ?? 0,
      ),
      references: [id],
      change: revoked ? { kind: 'revoked' } : { kind: 'paid', providerPaymentId: id },
      payload: transaction,
    };
  };
  const purchaseOf = (transaction: JWSTransactionDecodedPayload, source: string): StorePurchase => {
    const event = eventOf(transaction, source);
    return {
      reference: transaction.transactionId as string,
      storeProductId: transaction.productId as string,
      accountToken: transaction.appAccountToken || undefined,
      event,
    };
  };

  const decodeRenewalInfo = async (jws: string | undefined) => {
    if (jws === undefined) return undefined;
    try {
      return await verifier.verifyAndDecodeRenewalInfo(jws);
    } catch (error) {
      return refused(error, 'signed renewal info');
    }
  };

  /**
   * The events an auto-renewable subscription's transaction tells, keyed by the original
   * transaction id (the subscription's id, the same at every renewal): the period's grant (its
   * transaction id, once whoever tells it) or, revoked, that grant taken back; and the
   * subscription's state when known: from the notification's `status` and renewal info, or (an
   * app's claim) active until `expiresDate` when it has not passed.
   */
  const subscriptionEvents = (
    transaction: JWSTransactionDecodedPayload,
    source: string,
    notification?: {
      readonly type: string;
      readonly uuid: string | undefined;
      readonly signedDate: number;
      readonly status: number | undefined;
      readonly renewal: JWSRenewalInfoDecodedPayload | undefined;
    },
  ): VerifiedEvent[] => {
    const id = transaction.transactionId;
    const original = transaction.originalTransactionId ?? id;
    if (id === undefined || original === undefined || transaction.productId === undefined)
      throw paymentsErrors.unknownEvent('apple', 'the transaction has no id or product');
    const events: VerifiedEvent[] = [];
    const references = [subscriptionReference(original), id];
    const revokedAt = transaction.revocationDate;
    if (revokedAt !== undefined)
      events.push({
        eventId: `transaction:${id}:revoked:${revokedAt}`,
        type: `${source}.revoked`,
        occurredAt: new Date(revokedAt),
        references,
        change: { kind: 'revoked', invoiceId: id },
        payload: transaction,
      });
    else
      events.push({
        eventId: `transaction:${id}:renewal`,
        type: `${source}.renewed`,
        occurredAt: new Date(transaction.purchaseDate ?? transaction.signedDate ?? 0),
        references,
        change: { kind: 'renewal', subscriptionId: original, invoiceId: id },
        payload: transaction,
      });
    if (notification?.type === REFUND_REVERSED) {
      if (revokedAt !== undefined)
        throw paymentsErrors.unknownEvent('apple', 'a REFUND_REVERSED about a transaction still revoked');
      // After the period's grant (a duplicate when it was given before): what its refund took
      // back is given back, once (Apple's redeliveries keep the notification's UUID).
      events.push({
        eventId: `transaction:${id}:refund_reversed:${notification.uuid}`,
        type: REFUND_REVERSED_EVENT,
        occurredAt: new Date(notification.signedDate),
        references,
        change: { kind: 'refund_reversed', invoiceId: id },
        payload: transaction,
      });
    }
    const signedDate = notification?.signedDate ?? transaction.signedDate ?? 0;
    const expires = transaction.expiresDate;
    const status =
      notification?.status ??
      (revokedAt !== undefined
        ? // A past period refunded says nothing of the current one.
          expires !== undefined && expires > revokedAt
          ? APPLE_STATUS.revoked
          : undefined
        : notification !== undefined && expires !== undefined && expires <= signedDate
          ? APPLE_STATUS.expired
          : expires !== undefined && expires > signedDate
            ? APPLE_STATUS.active
            : undefined);
    // An app's claim of a transaction already ended says nothing of now (billing retry or over).
    if (status === undefined) return events;
    const trial = String(transaction.offerDiscountType) === 'FREE_TRIAL';
    const renewal = notification?.renewal;
    const grace = status === APPLE_STATUS.gracePeriod ? renewal?.gracePeriodExpiresDate : undefined;
    const periodEnd = grace ?? expires;
    const ours =
      status === APPLE_STATUS.active
        ? trial
          ? 'trialing'
          : 'active'
        : status === APPLE_STATUS.billingRetry || status === APPLE_STATUS.gracePeriod
          ? 'past_due'
          : 'canceled';
    events.push({
      // Apple's redeliveries of a notification keep its UUID; a claim's state is its JWS's.
      eventId: `subscription:${original}:state:${notification?.uuid ?? `claim:${id}:${signedDate}`}`,
      type: `${source}.subscription_${ours}`,
      occurredAt: new Date(signedDate),
      references,
      change: {
        kind: 'subscription',
        subscriptionId: original,
        status: ours,
        currentPeriodEnd: periodEnd === undefined ? null : new Date(periodEnd),
        // AutoRenewStatus 0: the buyer turned renewal off; the period runs to its end.
        cancelAtPeriodEnd: ours !== 'canceled' && Number(renewal?.autoRenewStatus ?? 1) === 0,
        // An expired or revoked subscription comes back under the same original transaction id
        // (a resubscription, a refund reversed): a newer state applies after canceled.
        resumable: true,
      },
      payload: { transaction, ...(renewal === undefined ? {} : { renewal }) },
    });
    return events;
  };
  /** The first event, with the others it tells as `related`. */
  const together = (events: VerifiedEvent[]): VerifiedEvent => {
    const [first, ...rest] = events;
    if (first === undefined) throw paymentsErrors.unknownEvent('apple', 'the notification tells nothing');
    return rest.length === 0 ? first : { ...first, related: rest };
  };

  return {
    name: 'apple',
    async verifyPurchase(proof: StorePurchaseProof) {
      const jws = proof.signedTransaction;
      if (jws === undefined || !JWS.test(jws))
        throw paymentsErrors.invalidInput(
          'payments.invalid_purchase',
          'body/signedTransaction',
          'must be the JWS of a StoreKit transaction',
        );
      const transaction = await decodeTransaction(jws);
      if (String(transaction.type) !== SUBSCRIPTION_TYPE) return purchaseOf(transaction, 'transaction');
      const events = subscriptionEvents(transaction, 'transaction');
      const original = transaction.originalTransactionId ?? (transaction.transactionId as string);
      const reference = subscriptionReference(original);
      // The subscription's payment is the original transaction's: paid once, whichever period's
      // transaction the app posts first; each period's grant follows as its own event.
      const paid: VerifiedEvent = {
        eventId: `subscription:${original}:purchased`,
        type: 'transaction.subscribed',
        occurredAt: new Date(transaction.originalPurchaseDate ?? transaction.purchaseDate ?? 0),
        references: [reference],
        change: { kind: 'paid', subscriptionId: original },
        payload: transaction,
      };
      return {
        reference,
        storeProductId: transaction.productId as string,
        accountToken: transaction.appAccountToken || undefined,
        event: transaction.revocationDate === undefined ? together([paid, ...events]) : together(events),
      };
    },
    async verifyWebhook(rawBody) {
      let signedPayload: unknown;
      try {
        signedPayload = (JSON.parse(rawBody.toString('utf8')) as { signedPayload?: unknown }).signedPayload;
      } catch {
        throw paymentsErrors.invalidSignature('apple', 'the body is not JSON with a signedPayload');
      }
      if (typeof signedPayload !== 'string' || !JWS.test(signedPayload))
        throw paymentsErrors.invalidSignature('apple', 'the body has no signedPayload JWS');
      let notification: Awaited<ReturnType<SignedDataVerifier['verifyAndDecodeNotification']>>;
      try {
        notification = await verifier.verifyAndDecodeNotification(signedPayload);
      } catch (error) {
        return refused(error, 'notification');
      }
      const type = String(notification.notificationType);
      const signedTransaction = notification.data?.signedTransactionInfo;
      if (SUBSCRIPTION_NOTIFICATIONS.has(type) && signedTransaction !== undefined) {
        const transaction = await decodeTransaction(signedTransaction);
        if (String(transaction.type) === SUBSCRIPTION_TYPE) {
          const renewal = await decodeRenewalInfo(notification.data?.signedRenewalInfo);
          return together(
            subscriptionEvents(transaction, 'notification', {
              type,
              uuid: notification.notificationUUID,
              signedDate: notification.signedDate ?? transaction.signedDate ?? 0,
              status: notification.data?.status,
              renewal,
            }),
          );
        }
        // About a pack: a refund, or its reversal, handled below as a pack's.
        if (!REVOKING.has(type) && type !== REFUND_REVERSED)
          throw paymentsErrors.unknownEvent('apple', `notification ${type} is not handled`);
      }
      if (
        (!REVOKING.has(type) && !PURCHASING.has(type) && type !== REFUND_REVERSED) ||
        signedTransaction === undefined
      )
        throw paymentsErrors.unknownEvent('apple', `notification ${type} is not handled`);
      const transaction = await decodeTransaction(signedTransaction);
      const revoked = transaction.revocationDate !== undefined;
      if (type === REFUND_REVERSED) {
        if (revoked)
          throw paymentsErrors.unknownEvent('apple', 'a REFUND_REVERSED about a transaction still revoked');
        const purchased = eventOf(transaction, 'notification');
        return {
          ...purchased,
          // Apple's redeliveries of one notification keep its UUID; the state makes a second
          // notification of the same reversal change nothing.
          eventId: `transaction:${transaction.transactionId}:refund_reversed:${notification.notificationUUID}`,
          type: REFUND_REVERSED_EVENT,
          occurredAt: new Date(notification.signedDate ?? transaction.signedDate ?? 0),
          change: { kind: 'refund_reversed' },
        };
      }
      if (REVOKING.has(type) !== revoked)
        throw paymentsErrors.unknownEvent(
          'apple',
          `a ${type} notification about a transaction that says otherwise`,
        );
      return purchaseOf(transaction, 'notification').event;
    },
  };
}
