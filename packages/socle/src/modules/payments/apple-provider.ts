import {
  Environment,
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
/** Product types credited as packs; auto-renewable subscriptions are not handled yet. */
const PACK_TYPES = new Set(['Consumable', 'Non-Consumable', 'Non-Renewing Subscription']);
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
      return purchaseOf(await decodeTransaction(jws), 'transaction');
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
