import type { Product } from './catalog.js';

/** The event type of a store's refund reversal (`refund_reversed`), as stored: later revocations look for it. */
export const REFUND_REVERSED_EVENT = 'notification.refund_reversed';

/** What a provider event changes about a payment, read from the object's state in the event. */
export type PaymentChange =
  /** Paid: credits the pack once (a subscription's checkout records its ids; invoices grant). */
  | {
      readonly kind: 'paid';
      readonly providerPaymentId?: string | undefined;
      readonly customerId?: string | undefined;
      readonly subscriptionId?: string | undefined;
      /** A Bitcoin invoice: what it received (more than due when overpaid). */
      readonly receivedSats?: bigint | undefined;
    }
  /** Recorded, nothing changes yet (a completed session still waiting for its money). */
  | { readonly kind: 'noted' }
  /**
   * A Bitcoin invoice still open that received less than due (`receivedSats` so far, `missingSats`
   * to go): the app and the buyer are told what is missing; nothing is credited.
   */
  | { readonly kind: 'partially_paid'; readonly receivedSats: bigint; readonly missingSats: bigint }
  /**
   * A Bitcoin invoice that expired having received less than due: final, never credited (the
   * merchant settles it by hand or refunds what came).
   */
  | { readonly kind: 'underpaid'; readonly receivedSats: bigint; readonly missingSats: bigint }
  | { readonly kind: 'failed'; readonly receivedSats?: bigint | undefined }
  | { readonly kind: 'expired' }
  /**
   * The provider's cumulative refunded amount (minor units): only ever grows. About a
   * subscription's charge, `invoiceId` names the invoice it paid (when the provider told it) and
   * `invoiceAmount` what that invoice was paid.
   */
  | {
      readonly kind: 'refunded';
      readonly refundedAmount: bigint;
      readonly providerPaymentId?: string;
      readonly invoiceId?: string | undefined;
      readonly invoiceAmount?: bigint | undefined;
    }
  /**
   * A chargeback's state (Stripe's dispute): opened or lost holds back the disputed share of the
   * credits; won gives it back. Applied when newer than the stored state; won and lost are final.
   */
  | {
      readonly kind: 'disputed';
      readonly disputeId: string;
      readonly amount: bigint;
      readonly status: string;
      /** The disputed charge's PaymentIntent, and (a subscription's charge) its invoice, as for refunds. */
      readonly providerPaymentId?: string | undefined;
      readonly invoiceId?: string | undefined;
      readonly invoiceAmount?: bigint | undefined;
    }
  /**
   * Refunded or revoked whole (an app store's refund, a voided purchase): reversed like a full
   * refund. About a store subscription, `invoiceId` names the period's transaction or order whose
   * grant it takes back.
   */
  | { readonly kind: 'revoked'; readonly invoiceId?: string | undefined }
  /**
   * A store's refund taken back (Apple's REFUND_REVERSED: the refund was granted, then reversed):
   * the purchase is whole again and the credits its refund reversed are given back. A refund
   * older than this event that arrives after it changes nothing. About a store subscription,
   * `invoiceId` names the period's transaction whose grant is given back.
   */
  | { readonly kind: 'refund_reversed'; readonly invoiceId?: string | undefined }
  /**
   * A subscription's state: applied when newer than the stored one. Canceled is final unless
   * `resumable`: the store brings the same subscription back after it ended (Apple: a
   * resubscription, or a refund of the current period reversed, under the same original
   * transaction id), and a newer state then applies after canceled too.
   */
  | {
      readonly kind: 'subscription';
      readonly subscriptionId: string;
      readonly status: string;
      readonly currentPeriodEnd: Date | null;
      readonly cancelAtPeriodEnd: boolean;
      readonly resumable?: boolean | undefined;
    }
  /**
   * A subscription invoice paid: grants the period's credits once per invoice, recorded as the
   * invoice's own payment (`amount`: what it was paid) that its refunds and disputes reverse.
   */
  | {
      readonly kind: 'renewal';
      readonly subscriptionId: string;
      readonly invoiceId: string;
      readonly amount?: bigint | undefined;
    }
  /** A subscription invoice that failed: the buyer is told. */
  | { readonly kind: 'renewal_failed'; readonly subscriptionId: string; readonly invoiceId: string };

/** A webhook (or a backfilled event) the provider's adapter verified and read. */
export interface VerifiedEvent {
  /** The key of the event's row: Stripe's `evt_…`; invoice + type where deliveries get new ids. */
  readonly eventId: string;
  readonly type: string;
  readonly occurredAt: Date;
  /** Our payment's id when the provider echoes it (metadata), else found by `references`. */
  readonly paymentId?: string | undefined;
  /** Provider ids that name the payment (session, PaymentIntent, subscription, invoice). */
  readonly references: readonly string[];
  readonly change: PaymentChange;
  /** The event as received, stored with it. */
  readonly payload: unknown;
  /**
   * Tells the store, once the event is applied, that the purchase was delivered (Play refunds a
   * purchase left unacknowledged for three days). A failure is logged; the next delivery or post
   * of the purchase acknowledges it again.
   */
  readonly acknowledge?: (() => Promise<void>) | undefined;
  /**
   * More events the same delivery tells, each stored and applied by its own id after this one (an
   * app store's renewal tells the subscription's new state and the paid period's grant at once).
   * A crash between them is mended by the store's redelivery: those applied are duplicates.
   */
  readonly related?: readonly VerifiedEvent[] | undefined;
}

/** A checkout to open at the provider for one payment. */
export interface CheckoutRequest {
  readonly paymentId: string;
  readonly orgId: string;
  readonly userId: string;
  readonly product: Product;
  readonly successUrl: string;
  readonly cancelUrl: string;
  readonly customerId?: string | undefined;
  readonly email?: string | undefined;
}

export interface CheckoutCreated {
  /** The provider's object (a Checkout Session id): the payment's reference. */
  readonly reference: string;
  readonly url: string;
  readonly customerId?: string | undefined;
  readonly expiresAt?: Date | undefined;
}

/** An invoice to open at a processor (Bitcoin): an amount in a currency, for an order. */
export interface InvoiceRequest {
  readonly paymentId: string;
  readonly orgId: string;
  readonly amount: bigint;
  readonly currency: string;
  readonly orderId: string;
  readonly description?: string | undefined;
  readonly expiresInSeconds: number;
}

export interface InvoiceCreated {
  readonly reference: string;
  readonly amountSats: bigint;
  /** BIP21, with `lightning=` when the processor gave a Lightning invoice. */
  readonly paymentUri: string;
  readonly checkoutUrl?: string | undefined;
  readonly expiresAt: Date;
}

/** What an app posts after a purchase in a store (StoreKit 2, Play Billing). */
export interface StorePurchaseProof {
  /** Apple: the JWS `signedTransaction` (StoreKit 2 `Transaction.jwsRepresentation`). */
  readonly signedTransaction?: string | undefined;
  /** Google Play: the product id of the purchase and its purchase token. */
  readonly productId?: string | undefined;
  readonly purchaseToken?: string | undefined;
}

/** A store purchase the provider verified (a signature checked, or the store's API asked). */
export interface StorePurchase {
  /** The store's id of this purchase (Apple transaction id, Play purchase token): the payment's reference. */
  readonly reference: string;
  /** The store's product id, mapped to the catalog by `storeProductIds` (or equal to the catalog id). */
  readonly storeProductId: string;
  /** The buyer id the app bound to the purchase (Apple `appAccountToken`, Play `obfuscatedExternalAccountId`). */
  readonly accountToken?: string | undefined;
  /** The purchase's state as an event (paid, revoked, or noted while pending). */
  readonly event: VerifiedEvent;
  /**
   * The purchase this one replaces (Play's `linkedPurchaseToken`: an upgrade, a downgrade, a
   * resubscription under a new token): its `reference`, and the event that ends its
   * subscription, applied once this purchase is, when that purchase is known here (it must then
   * be the same buyer's).
   */
  readonly replaces?: { readonly reference: string; readonly event: VerifiedEvent } | undefined;
}

/** What a store adapter asks of the catalog before it reads a purchase (Play has one API per kind). */
export interface StoreCatalog {
  /** Whether the store's product id is a subscription of the catalog. */
  isSubscription(storeProductId: string): boolean;
}

/** Headers as Fastify gives them. */
export type WebhookHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * One payment provider, as payments sees it. An adapter verifies and reads webhooks (never
 * trusting an unsigned body), opens checkouts or invoices, refunds, and lists recent events for
 * the backfill. Calls that create something carry a key derived from our payment's id, so a
 * retried job or request never creates it twice.
 */
export interface PaymentProvider {
  readonly name: string;
  /**
   * Verifies the raw body (signature, timestamp) and reads it. Throws `payments.invalid_signature`
   * or `payments.unknown_event` (400, nothing stored).
   */
  verifyWebhook(
    rawBody: Buffer,
    headers: WebhookHeaders,
    query: Readonly<Record<string, string>>,
  ): Promise<VerifiedEvent>;
  createCheckout?(request: CheckoutRequest): Promise<CheckoutCreated>;
  createInvoice?(request: InvoiceRequest): Promise<InvoiceCreated>;
  portalUrl?(customerId: string, returnUrl: string): Promise<string>;
  /** Asks for a refund of `amount` (minor units); its effect arrives as an event. */
  refund?(
    payment: { readonly id: string; readonly providerPaymentId: string },
    amount: bigint,
    key: string,
  ): Promise<void>;
  /**
   * The provider's payment that paid a subscription invoice (Stripe: its PaymentIntent), which a
   * refund of that invoice names; undefined when the invoice was not paid through one.
   */
  invoicePayment?(invoiceId: string): Promise<string | undefined>;
  /** The current state of an invoice as an event (undefined while it is still open): the backfill. */
  invoiceEvent?(reference: string): Promise<VerifiedEvent | undefined>;
  /** Verifies a purchase an app made in a store (signature or the store's API): `POST /payments/purchases/{provider}`. */
  verifyPurchase?(proof: StorePurchaseProof, catalog: StoreCatalog): Promise<StorePurchase>;
  /**
   * An event whose references name no payment here, completed from the provider's API (Stripe: a
   * refunded or disputed charge names only its PaymentIntent; the invoice it paid names the
   * subscription): undefined when the API knows no more. Called only on that miss.
   */
  resolveEvent?(event: VerifiedEvent): Promise<VerifiedEvent | undefined>;
  /** Events since `since`, oldest first, read through the API (authenticated, not signed). */
  eventsSince?(since: Date): AsyncIterable<VerifiedEvent>;
}
