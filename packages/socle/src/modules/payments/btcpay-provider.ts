import { createHmac, timingSafeEqual } from 'node:crypto';
import type { OutboundClient } from '../outbound/index.js';
import { bip21Uri, btcToSats, minorToDecimal } from './bitcoin.js';
import { paymentsErrors } from './payments.errors.js';
import type { PaymentChange, PaymentProvider, VerifiedEvent } from './provider.js';
import { STRIPE_METADATA } from './stripe-provider.js';

export interface BtcpayProviderOptions {
  /** The outbound client of the BTCPay server (`defineProvider('btcpay', { baseUrl, auth })`). */
  readonly client: OutboundClient;
  readonly storeId: string;
  /** The webhook's secret: BTCPay signs each delivery `BTCPay-Sig: sha256=HMAC(secret, body)`. */
  readonly webhookSecret: string;
}

interface GreenfieldInvoice {
  id: string;
  status: 'New' | 'Processing' | 'Settled' | 'Expired' | 'Invalid';
  /** `None`, `PaidPartial`, `PaidOver`, `PaidLate`, `Marked`, `Invalid`. */
  additionalStatus?: string;
  checkoutLink?: string;
  expirationTime: number;
  metadata?: Record<string, unknown>;
}

interface GreenfieldPaymentMethod {
  /** Greenfield 2.x `BTC-CHAIN` / `BTC-LN`; 1.x `BTC` / `BTC-LightningNetwork` in `paymentMethod`. */
  paymentMethodId?: string;
  paymentMethod?: string;
  destination: string;
  /** BTC due in all (decimal strings, as Greenfield writes amounts). */
  amount: string;
  /** BTC received through every payment method, and still due. */
  totalPaid?: string;
  due?: string;
}

/** What an invoice received and still lacks, in sats (from any of its payment methods: each carries the totals). */
export interface InvoiceAmounts {
  readonly receivedSats: bigint;
  readonly missingSats: bigint;
}

/**
 * What an invoice's state means for its payment (events are hints; the state decides): settled
 * is paid (what it received, more than due when overpaid); expired having received something is
 * underpaid, never paid; open with less than due received is partially paid.
 */
export function changeOfInvoiceStatus(
  status: string,
  amounts: InvoiceAmounts = { receivedSats: 0n, missingSats: 0n },
): PaymentChange {
  const { receivedSats, missingSats } = amounts;
  if (status === 'Settled') return { kind: 'paid', receivedSats };
  // Expired having received all of it (paid late: `PaidLate`) is not underpaid: it expires as
  // before and BTCPay's later settlement, if it comes, is a late payment.
  if (status === 'Expired')
    return receivedSats > 0n && missingSats > 0n
      ? { kind: 'underpaid', receivedSats, missingSats }
      : { kind: 'expired' };
  if (status === 'Invalid') return { kind: 'failed', receivedSats };
  if (receivedSats > 0n && missingSats > 0n) return { kind: 'partially_paid', receivedSats, missingSats };
  return { kind: 'noted' };
}

/** The key of an invoice's state: a part payment is a state of its own (one per amount received). */
const stateKey = (invoice: GreenfieldInvoice, change: PaymentChange) =>
  change.kind === 'partially_paid'
    ? `${invoice.id}:${invoice.status}:received:${change.receivedSats}`
    : `${invoice.id}:${invoice.status}`;

const INVOICE_EVENTS = new Set([
  'InvoiceCreated',
  'InvoiceReceivedPayment',
  'InvoiceProcessing',
  'InvoicePaymentSettled',
  'InvoiceSettled',
  'InvoiceExpired',
  'InvoiceInvalid',
]);

/**
 * BTCPay Server through its Greenfield API (no official SDK): invoices with on-chain and
 * Lightning payment methods, webhooks checked with `BTCPay-Sig` over the raw body. A redelivery
 * carries a new delivery id, so an event's key is the invoice and the event type; the invoice is
 * read back from the API and its status, not the event's type, decides.
 */
export function createBtcpayProvider(options: BtcpayProviderOptions): PaymentProvider {
  const { client, storeId } = options;
  const base = `api/v1/stores/${encodeURIComponent(storeId)}/invoices`;

  const fetchInvoice = async (invoiceId: string) =>
    (
      await client.request({
        method: 'GET',
        path: `${base}/${encodeURIComponent(invoiceId)}`,
        operation: 'invoices.get',
      })
    ).json<GreenfieldInvoice>();

  /** What the invoice received and lacks, read back from its payment methods. */
  const amountsOf = async (invoiceId: string): Promise<InvoiceAmounts> => {
    const methods = (
      await client.request({
        method: 'GET',
        path: `${base}/${encodeURIComponent(invoiceId)}/payment-methods`,
        operation: 'invoices.payment_methods',
      })
    ).json<GreenfieldPaymentMethod[]>();
    const totals = methods.find((method) => method.totalPaid !== undefined);
    return {
      receivedSats: totals?.totalPaid === undefined ? 0n : btcToSats(totals.totalPaid),
      missingSats: totals?.due === undefined ? 0n : btcToSats(totals.due),
    };
  };

  /** The invoice read back, with what it received unless it is new and untouched. */
  const stateOf = async (invoiceId: string) => {
    const invoice = await fetchInvoice(invoiceId);
    const untouched = invoice.status === 'New' && (invoice.additionalStatus ?? 'None') === 'None';
    const change = changeOfInvoiceStatus(invoice.status, untouched ? undefined : await amountsOf(invoice.id));
    return { invoice, change };
  };

  const eventOf = (
    { invoice, change }: { invoice: GreenfieldInvoice; change: PaymentChange },
    type: string,
    payload: unknown,
  ): VerifiedEvent => ({
    eventId: stateKey(invoice, change),
    type,
    occurredAt: new Date(),
    paymentId:
      typeof invoice.metadata?.[STRIPE_METADATA.paymentId] === 'string'
        ? (invoice.metadata[STRIPE_METADATA.paymentId] as string)
        : undefined,
    references: [invoice.id],
    change,
    payload,
  });

  return {
    name: 'btcpay',

    async verifyWebhook(rawBody, headers) {
      const header = headers['btcpay-sig'];
      if (typeof header !== 'string' || !header.startsWith('sha256='))
        throw paymentsErrors.invalidSignature('btcpay', 'the BTCPay-Sig header is missing');
      const expected = createHmac('sha256', options.webhookSecret).update(rawBody).digest();
      const given = Buffer.from(header.slice('sha256='.length), 'hex');
      if (given.length !== expected.length || !timingSafeEqual(given, expected))
        throw paymentsErrors.invalidSignature('btcpay', 'the signature does not match the body');
      let body: { type?: unknown; invoiceId?: unknown; storeId?: unknown };
      try {
        body = JSON.parse(rawBody.toString('utf8')) as typeof body;
      } catch {
        throw paymentsErrors.unknownEvent('btcpay', 'the body is not JSON');
      }
      if (
        typeof body.type !== 'string' ||
        !INVOICE_EVENTS.has(body.type) ||
        typeof body.invoiceId !== 'string'
      )
        throw paymentsErrors.unknownEvent(
          'btcpay',
          `type ${String(body.type)} is not an invoice event payments handles`,
        );
      if (body.storeId !== storeId)
        throw paymentsErrors.unknownEvent('btcpay', 'the event is of another store');
      // Believe the state, not the delivery: read the invoice back (and what it received: the
      // body's `partiallyPaid`, `overPaid` and payment value are hints too).
      // Keyed by the state read back, not the delivery's type: a delivery that came before the
      // state it names (reordered, or forged) is noted under the state it found and does not
      // swallow the real one; redeliveries of any type about one state apply once.
      return eventOf(await stateOf(body.invoiceId), body.type, body);
    },

    async createInvoice(request) {
      const created = (
        await client.request({
          method: 'POST',
          path: base,
          operation: 'invoices.create',
          json: {
            amount: minorToDecimal(request.amount, request.currency),
            currency: request.currency,
            metadata: {
              orderId: request.orderId,
              itemDesc: request.description,
              [STRIPE_METADATA.paymentId]: request.paymentId,
              [STRIPE_METADATA.orgId]: request.orgId,
            },
            checkout: {
              expirationMinutes: Math.max(1, Math.ceil(request.expiresInSeconds / 60)),
              paymentMethods: ['BTC', 'BTC-LN'],
            },
          },
        })
      ).json<GreenfieldInvoice>();
      const methods = (
        await client.request({
          method: 'GET',
          path: `${base}/${encodeURIComponent(created.id)}/payment-methods`,
          operation: 'invoices.payment_methods',
        })
      ).json<GreenfieldPaymentMethod[]>();
      const methodId = (method: GreenfieldPaymentMethod) =>
        method.paymentMethodId ?? method.paymentMethod ?? '';
      const chain = methods.find((method) => ['BTC-CHAIN', 'BTC', 'BTC-OnChain'].includes(methodId(method)));
      const lightning = methods.find((method) =>
        ['BTC-LN', 'BTC-LightningNetwork'].includes(methodId(method)),
      );
      const amountBtc = chain?.amount ?? lightning?.amount;
      if (amountBtc === undefined)
        throw paymentsErrors.providerRejected(
          'btcpay',
          'invoices.create',
          undefined,
          'the invoice has no BTC payment method',
        );
      const sats = btcToSats(amountBtc);
      return {
        reference: created.id,
        amountSats: sats,
        paymentUri: bip21Uri({ address: chain?.destination, sats, lightning: lightning?.destination }),
        checkoutUrl: created.checkoutLink,
        expiresAt: new Date(created.expirationTime * 1000),
      };
    },

    async invoiceEvent(reference) {
      const state = await stateOf(reference);
      if (state.change.kind === 'noted') return undefined;
      const type =
        state.change.kind === 'partially_paid' ? 'InvoiceReceivedPayment' : `Invoice${state.invoice.status}`;
      return eventOf(state, type, state.invoice);
    },
  };
}
