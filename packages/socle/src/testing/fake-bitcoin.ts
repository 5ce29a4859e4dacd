import { createHmac, randomBytes } from 'node:crypto';
import { type FaultyProvider, type ReceivedRequest, startFaultyProvider } from './faulty-provider.js';

/** The rate both fakes convert at: 1 BTC = 50,000 of the invoice's currency (12.50 EUR = 25,000 sats). */
export const FAKE_BTC_RATE = 50_000;

const satsFor = (amount: number) => Math.round((amount / FAKE_BTC_RATE) * 100_000_000);
const btc = (sats: number) => (sats / 100_000_000).toFixed(8);
const token = (prefix: string) => `${prefix}${randomBytes(10).toString('hex')}`;
const now = () => Math.floor(Date.now() / 1000);
const unauthorized = {
  status: 401,
  json: { code: 'unauthenticated', message: 'Authentication is required' },
};

async function post(url: string, headers: Record<string, string>, body: string): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  await response.arrayBuffer();
  return response.status;
}

/** A BTCPay Greenfield invoice as the fake keeps it. */
export interface FakeBtcpayInvoice {
  id: string;
  storeId: string;
  status: 'New' | 'Processing' | 'Settled' | 'Expired' | 'Invalid';
  amount: string;
  currency: string;
  checkoutLink: string;
  createdTime: number;
  expirationTime: number;
  metadata: Record<string, unknown>;
  sats: number;
  /** Greenfield's: `None`, `PaidPartial` (less than due received), `PaidOver`, `Invalid`… */
  additionalStatus: 'None' | 'PaidPartial' | 'PaidOver' | 'PaidLate' | 'Marked' | 'Invalid';
  /** The payments received so far (sats each), oldest first. */
  payments: { id: string; sats: number; receivedDate: number }[];
}

/** A local BTCPay Server (Greenfield API, one store) with signed webhook deliveries. */
export interface FakeBtcpay {
  readonly url: string;
  readonly apiKey: string;
  readonly storeId: string;
  readonly webhookSecret: string;
  /**
   * The payments module's settings that point Socle at this fake (URL, key, store, webhook secret):
   * `settings: { payments: { ...btcpay.paymentsSettings() } }`.
   */
  paymentsSettings(): {
    btcpayUrl: string;
    btcpayApiKey: string;
    btcpayStoreId: string;
    btcpayWebhookSecret: string;
  };
  /** Fault injection on the API. */
  readonly api: FaultyProvider;
  readonly invoices: Map<string, FakeBtcpayInvoice>;
  /** The invoice is paid and confirmed (`Settled`). */
  settle(invoiceId: string): void;
  /**
   * A wallet pays `sats` to the invoice (confirmed at once): less than what is due leaves it
   * `New` and `PaidPartial`; reaching it settles it (`PaidOver` past it). Returns the webhook
   * types BTCPay sends for it, in order (`InvoiceReceivedPayment`, then `InvoiceSettled`).
   */
  pay(invoiceId: string, sats: number): string[];
  /** The invoice expires (`PaidPartial` stays: `InvoiceExpired` then says `partiallyPaid`). */
  expire(invoiceId: string): void;
  /** The invoice is marked invalid. */
  invalidate(invoiceId: string): void;
  /**
   * POSTs a webhook of `type` about the invoice to `url`, signed `BTCPay-Sig: sha256=…` (with
   * `secret`, default the webhook's); every delivery has a new delivery id, as BTCPay's redeliveries do.
   */
  deliver(
    url: string,
    invoiceId: string,
    type: string,
    options?: { secret?: string; redelivery?: boolean },
  ): Promise<number>;
  /** The body and headers of such a delivery, for a test that sends it itself. */
  sign(
    invoiceId: string,
    type: string,
    options?: { secret?: string; redelivery?: boolean },
  ): { body: string; headers: Record<string, string> };
  /**
   * Where the hosted invoice page's pay step delivers `InvoiceSettled` (the server's
   * `/payments/webhooks/btcpay`); `socle start` with `PAYMENTS_FAKES=btcpay` sets it.
   */
  webhookUrl: string | undefined;
  /** The pay step's deliveries so far, with the status each was answered (0: unreachable). */
  readonly deliveries: { readonly invoiceId: string; readonly type: string; readonly status: number }[];
  close(): Promise<void>;
}

/**
 * Starts a fake BTCPay Server: `POST/GET /api/v1/stores/{store}/invoices[/{id}[/payment-methods]]`
 * behind `Authorization: token <apiKey>`, on-chain (`BTC-CHAIN`) and Lightning (`BTC-LN`) payment
 * methods at {@link FAKE_BTC_RATE}, and webhooks as BTCPay sends them.
 */
export async function startFakeBtcpay(): Promise<FakeBtcpay> {
  const api = await startFaultyProvider();
  const apiKey = token('btcpay_');
  const storeId = token('store').slice(0, 20);
  const webhookSecret = token('whs_');
  const invoices = new Map<string, FakeBtcpayInvoice>();
  const view = ({ sats: _sats, payments: _payments, ...invoice }: FakeBtcpayInvoice) => invoice;
  const paidSats = (invoice: FakeBtcpayInvoice) =>
    invoice.payments.reduce((total, payment) => total + payment.sats, 0);
  /** One payment method's Greenfield view: what is due, what it and all methods received. */
  const paymentMethod = (invoice: FakeBtcpayInvoice, paymentMethodId: string, destination: string) => {
    const paid = paidSats(invoice);
    return {
      paymentMethodId,
      destination,
      rate: String(FAKE_BTC_RATE),
      amount: btc(invoice.sats),
      paymentMethodPaid: paymentMethodId === 'BTC-CHAIN' ? btc(paid) : btc(0),
      totalPaid: btc(paid),
      due: btc(Math.max(0, invoice.sats - paid)),
      payments:
        paymentMethodId === 'BTC-CHAIN'
          ? invoice.payments.map((payment) => ({
              id: payment.id,
              receivedDate: payment.receivedDate,
              value: btc(payment.sats),
              fee: '0.00000000',
              status: 'Settled',
              destination,
            }))
          : [],
    };
  };

  let webhookUrl: string | undefined;
  const deliveries: FakeBtcpay['deliveries'] = [];

  /**
   * The invoice page BTCPay shows at `checkoutLink` (the buyer's browser, no API key) and its pay
   * step: the invoice is settled and `InvoiceSettled` is delivered to `webhookUrl` in the
   * background, as a wallet paying it would cause.
   */
  const hostedInvoice = (request: ReceivedRequest) => {
    const match = /^\/i\/([^/]+)(\/pay)?$/.exec(new URL(request.url, api.url).pathname);
    const invoice = match?.[1] === undefined ? undefined : invoices.get(decodeURIComponent(match[1]));
    if (match === null || invoice === undefined) return undefined;
    if (request.method === 'GET' && match[2] === undefined)
      return {
        status: 200,
        headers: { 'content-type': 'text/html; charset=utf-8' },
        body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake BTCPay invoice</title></head><body>
<h1>Fake BTCPay invoice (regtest)</h1><p>${invoice.id}: ${btc(invoice.sats)} BTC (${invoice.amount} ${invoice.currency}), ${invoice.status}</p>
${invoice.status === 'New' ? `<form method="post" action="/i/${invoice.id}/pay"><button type="submit">Pay from a test wallet</button></form>` : ''}
</body></html>`,
      };
    if (request.method === 'POST' && match[2] === '/pay') {
      if (invoice.status !== 'New')
        return {
          status: 400,
          json: { code: 'invoice-not-payable', message: `The invoice is ${invoice.status}` },
        };
      invoice.status = 'Settled';
      invoice.payments.push({ id: token('tx'), sats: invoice.sats - paidSats(invoice), receivedDate: now() });
      const url = webhookUrl;
      if (url !== undefined) {
        const { body, headers } = fake.sign(invoice.id, 'InvoiceSettled');
        void post(url, headers, body).then(
          (status) => deliveries.push({ invoiceId: invoice.id, type: 'InvoiceSettled', status }),
          () => deliveries.push({ invoiceId: invoice.id, type: 'InvoiceSettled', status: 0 }),
        );
      }
      return { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: '<p>Paid.</p>' };
    }
    return undefined;
  };

  api.answer((request: ReceivedRequest) => {
    if (request.url.startsWith('/i/')) {
      const page = hostedInvoice(request);
      if (page !== undefined) return page;
    }
    if (request.headers.authorization !== `token ${apiKey}`) return unauthorized;
    const url = new URL(request.url, api.url);
    const prefix = `/api/v1/stores/${storeId}/invoices`;
    if (!url.pathname.startsWith(prefix))
      return { status: 404, json: { code: 'store-not-found', message: 'Store not found' } };
    const rest = url.pathname.slice(prefix.length).split('/').filter(Boolean);
    if (request.method === 'POST' && rest.length === 0) {
      const body = JSON.parse(request.body || '{}') as {
        amount?: string;
        currency?: string;
        metadata?: Record<string, unknown>;
        checkout?: { expirationMinutes?: number };
      };
      const amount = Number(body.amount);
      if (!(amount > 0))
        return { status: 422, json: [{ path: 'amount', message: 'Amount should be positive' }] };
      const now = Math.floor(Date.now() / 1000);
      const id = token('inv').slice(0, 22);
      const invoice: FakeBtcpayInvoice = {
        additionalStatus: 'None',
        payments: [],
        id,
        storeId,
        status: 'New',
        amount: String(body.amount),
        currency: body.currency ?? 'EUR',
        checkoutLink: `${api.url}/i/${id}`,
        createdTime: now,
        expirationTime: now + 60 * (body.checkout?.expirationMinutes ?? 15),
        metadata: body.metadata ?? {},
        sats: satsFor(amount),
      };
      invoices.set(id, invoice);
      return { json: view(invoice) };
    }
    const invoice = invoices.get(rest[0] ?? '');
    if (invoice === undefined)
      return { status: 404, json: { code: 'invoice-not-found', message: 'The invoice was not found' } };
    if (request.method === 'GET' && rest.length === 1) return { json: view(invoice) };
    if (request.method === 'GET' && rest[1] === 'payment-methods')
      return {
        json: [
          paymentMethod(invoice, 'BTC-CHAIN', `bcrt1q${invoice.id.toLowerCase().slice(3, 23)}`),
          paymentMethod(invoice, 'BTC-LN', `lnbcrt${invoice.sats}n1p${invoice.id.toLowerCase()}`),
        ],
      };
    return { status: 404, json: { code: 'not-found', message: 'Not found' } };
  });

  const get = (invoiceId: string) => {
    const invoice = invoices.get(invoiceId);
    if (invoice === undefined) throw new Error(`fake BTCPay: no invoice ${invoiceId}`);
    return invoice;
  };

  const fake: FakeBtcpay = {
    url: api.url,
    apiKey,
    storeId,
    webhookSecret,
    paymentsSettings: () => ({
      btcpayUrl: api.url,
      btcpayApiKey: apiKey,
      btcpayStoreId: storeId,
      btcpayWebhookSecret: webhookSecret,
    }),
    api,
    invoices,
    settle(invoiceId) {
      const invoice = get(invoiceId);
      if (paidSats(invoice) < invoice.sats)
        invoice.payments.push({
          id: token('tx'),
          sats: invoice.sats - paidSats(invoice),
          receivedDate: now(),
        });
      invoice.status = 'Settled';
    },
    pay(invoiceId, sats) {
      const invoice = get(invoiceId);
      if (invoice.status !== 'New') throw new Error(`fake BTCPay: invoice ${invoiceId} is ${invoice.status}`);
      invoice.payments.push({ id: token('tx'), sats, receivedDate: now() });
      const paid = paidSats(invoice);
      if (paid < invoice.sats) {
        invoice.additionalStatus = 'PaidPartial';
        return ['InvoiceReceivedPayment'];
      }
      invoice.status = 'Settled';
      invoice.additionalStatus = paid > invoice.sats ? 'PaidOver' : 'None';
      return ['InvoiceReceivedPayment', 'InvoiceSettled'];
    },
    expire(invoiceId) {
      get(invoiceId).status = 'Expired';
    },
    invalidate(invoiceId) {
      const invoice = get(invoiceId);
      invoice.status = 'Invalid';
      invoice.additionalStatus = 'Marked';
    },
    sign(invoiceId, type, options = {}) {
      const invoice = get(invoiceId);
      const deliveryId = token('dlv');
      // The fields each type adds to Greenfield's webhook body (WebhookInvoice*Event).
      const last = invoice.payments.at(-1);
      const destination = `bcrt1q${invoice.id.toLowerCase().slice(3, 23)}`;
      const specific: Record<string, unknown> =
        type === 'InvoiceReceivedPayment' || type === 'InvoicePaymentSettled'
          ? {
              afterExpiration: invoice.status === 'Expired',
              paymentMethodId: 'BTC-CHAIN',
              payment:
                last === undefined
                  ? null
                  : {
                      id: last.id,
                      receivedDate: last.receivedDate,
                      value: btc(last.sats),
                      fee: '0.00000000',
                      status: 'Settled',
                      destination,
                    },
            }
          : type === 'InvoiceExpired'
            ? { partiallyPaid: invoice.additionalStatus === 'PaidPartial' }
            : type === 'InvoiceSettled'
              ? { manuallyMarked: false, overPaid: invoice.additionalStatus === 'PaidOver' }
              : type === 'InvoiceInvalid'
                ? { manuallyMarked: invoice.additionalStatus === 'Marked' }
                : {};
      const body = JSON.stringify({
        deliveryId,
        webhookId: 'wh_fake',
        originalDeliveryId: options.redelivery === true ? token('dlv') : deliveryId,
        isRedelivery: options.redelivery === true,
        type,
        timestamp: Math.floor(Date.now() / 1000),
        storeId,
        invoiceId,
        metadata: invoice.metadata,
        ...specific,
      });
      const signature = createHmac('sha256', options.secret ?? webhookSecret)
        .update(body)
        .digest('hex');
      return { body, headers: { 'content-type': 'application/json', 'btcpay-sig': `sha256=${signature}` } };
    },
    deliver(url, invoiceId, type, options = {}) {
      const { body, headers } = fake.sign(invoiceId, type, options);
      return post(url, headers, body);
    },
    get webhookUrl() {
      return webhookUrl;
    },
    set webhookUrl(url) {
      webhookUrl = url;
    },
    deliveries,
    close: () => api.close(),
  };
  return fake;
}

/** A Swiss Bitcoin Pay checkout as the fake keeps it. */
export interface FakeSwissCheckout {
  id: string;
  title: string;
  amount: number;
  unit: string;
  pr: string;
  onChainAddr: string;
  checkoutUrl: string;
  expiry: number;
  isPaid: boolean;
  isExpired: boolean;
  extra: Record<string, unknown>;
  webhook?: { url: string; headers?: Record<string, string> };
}

/** A local Swiss Bitcoin Pay API whose webhooks, like the real ones, carry no signature. */
export interface FakeSwissBitcoinPay {
  readonly url: string;
  readonly apiKey: string;
  readonly api: FaultyProvider;
  readonly checkouts: Map<string, FakeSwissCheckout>;
  pay(checkoutId: string): void;
  expire(checkoutId: string): void;
  /**
   * Where the hosted checkout page's pay step delivers the checkout's webhook when the checkout
   * was created without one (`socle start` with `PAYMENTS_FAKES=swiss-bitcoin-pay` sets it, with
   * `webhookHeaders`: the server's secret header); a checkout's own webhook comes first.
   */
  webhookUrl: string | undefined;
  webhookHeaders: Record<string, string>;
  /** The pay step's deliveries so far, with the status each was answered (0: unreachable). */
  readonly deliveries: { readonly checkoutId: string; readonly status: number }[];
  /**
   * POSTs the checkout as its webhook to the URL and headers given at creation (or `url`), with
   * `body` overriding fields (a forged "isPaid": true) and `headers` replacing the given ones.
   */
  deliver(
    checkoutId: string,
    options?: { url?: string; body?: Record<string, unknown>; headers?: Record<string, string> },
  ): Promise<number>;
  close(): Promise<void>;
}

/**
 * Starts a fake Swiss Bitcoin Pay: `POST /checkout` and `GET /checkout/{id}` behind the `api-key`
 * header, a Lightning invoice and an on-chain address per checkout at {@link FAKE_BTC_RATE}.
 * The checkout's `checkoutUrl` is a page a browser can use (no key): its **Pay from a test
 * wallet** button (`#pay`) marks the checkout paid and delivers its webhook in the background,
 * as a wallet paying the Lightning invoice would cause; paying a paid or expired checkout is
 * refused (400) and delivers nothing.
 */
export async function startFakeSwissBitcoinPay(): Promise<FakeSwissBitcoinPay> {
  const api = await startFaultyProvider();
  const apiKey = token('sbp_');
  const checkouts = new Map<string, FakeSwissCheckout>();
  const view = ({ webhook: _webhook, ...checkout }: FakeSwissCheckout) => checkout;
  let webhookUrl: string | undefined;
  let webhookHeaders: Record<string, string> = {};
  const deliveries: { checkoutId: string; status: number }[] = [];

  /** The checkout's webhook (its own, else the fake's default), or undefined when it has none. */
  const webhookOf = (checkout: FakeSwissCheckout) =>
    checkout.webhook ?? (webhookUrl === undefined ? undefined : { url: webhookUrl, headers: webhookHeaders });

  const hostedCheckout = (request: ReceivedRequest) => {
    const match = /^\/c\/([^/]+)(\/pay)?$/.exec(new URL(request.url, api.url).pathname);
    const checkout = match?.[1] === undefined ? undefined : checkouts.get(decodeURIComponent(match[1]));
    if (match === null || checkout === undefined) return undefined;
    const state = checkout.isPaid ? 'paid' : checkout.isExpired ? 'expired' : 'waiting for payment';
    const html = (status: number, body: string) => ({
      status,
      headers: { 'content-type': 'text/html; charset=utf-8' },
      body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake Swiss Bitcoin Pay checkout</title></head><body>
<h1>Fake Swiss Bitcoin Pay checkout (test)</h1>${body}</body></html>`,
    });
    if (request.method === 'GET' && match[2] === undefined)
      return html(
        200,
        `<p id="checkout">${checkout.id}: ${checkout.amount} sats</p><p id="status">${state}</p>` +
          (state === 'waiting for payment'
            ? `<form method="post" action="/c/${checkout.id}/pay"><button id="pay" type="submit">Pay from a test wallet</button></form>`
            : ''),
      );
    if (request.method === 'POST' && match[2] === '/pay') {
      if (checkout.isPaid || checkout.isExpired)
        return html(400, `<p id="status">This checkout is ${state}.</p>`);
      checkout.isPaid = true;
      const webhook = webhookOf(checkout);
      if (webhook !== undefined)
        void post(webhook.url, webhook.headers ?? {}, JSON.stringify(view(checkout))).then(
          (status) => deliveries.push({ checkoutId: checkout.id, status }),
          () => deliveries.push({ checkoutId: checkout.id, status: 0 }),
        );
      return html(200, '<p id="status">paid</p>');
    }
    return undefined;
  };

  api.answer((request: ReceivedRequest) => {
    if (request.url.startsWith('/c/')) {
      const page = hostedCheckout(request);
      if (page !== undefined) return page;
    }
    if (request.headers['api-key'] !== apiKey) return { status: 401, json: { message: 'Invalid api key' } };
    const url = new URL(request.url, api.url);
    if (request.method === 'POST' && url.pathname === '/checkout') {
      const body = JSON.parse(request.body || '{}') as {
        title?: string;
        amount?: number;
        unit?: string;
        delay?: number;
        extra?: Record<string, unknown>;
        webhook?: FakeSwissCheckout['webhook'];
      };
      if (typeof body.amount !== 'number' || !(body.amount > 0))
        return { status: 400, json: { message: 'amount must be positive' } };
      const id = token('').slice(0, 24);
      const sats = body.unit === 'sat' ? body.amount : satsFor(body.amount);
      const checkout: FakeSwissCheckout = {
        id,
        title: body.title ?? '',
        amount: sats,
        unit: body.unit ?? 'sat',
        pr: `lnbc${sats}n1p${id}`,
        onChainAddr: `bc1q${id.slice(0, 20)}`,
        checkoutUrl: `${api.url}/c/${id}`,
        expiry: Math.floor(Date.now() / 1000) + 60 * (body.delay ?? 10),
        isPaid: false,
        isExpired: false,
        extra: body.extra ?? {},
        ...(body.webhook === undefined ? {} : { webhook: body.webhook }),
      };
      checkouts.set(id, checkout);
      return { status: 201, json: view(checkout) };
    }
    const match = /^\/checkout\/([^/]+)$/.exec(url.pathname);
    const checkout = checkouts.get(match?.[1] ?? '');
    if (request.method === 'GET' && checkout !== undefined) return { json: view(checkout) };
    return { status: 404, json: { message: 'Not found' } };
  });

  const get = (checkoutId: string) => {
    const checkout = checkouts.get(checkoutId);
    if (checkout === undefined) throw new Error(`fake Swiss Bitcoin Pay: no checkout ${checkoutId}`);
    return checkout;
  };

  return {
    url: api.url,
    apiKey,
    api,
    checkouts,
    get webhookUrl() {
      return webhookUrl;
    },
    set webhookUrl(url) {
      webhookUrl = url;
    },
    get webhookHeaders() {
      return webhookHeaders;
    },
    set webhookHeaders(headers) {
      webhookHeaders = headers;
    },
    deliveries,
    pay(checkoutId) {
      get(checkoutId).isPaid = true;
    },
    expire(checkoutId) {
      get(checkoutId).isExpired = true;
    },
    deliver(checkoutId, options = {}) {
      const checkout = get(checkoutId);
      const url = options.url ?? webhookOf(checkout)?.url;
      if (url === undefined) throw new Error('fake Swiss Bitcoin Pay: no webhook URL');
      return post(
        url,
        options.headers ?? webhookOf(checkout)?.headers ?? {},
        JSON.stringify({ ...view(checkout), ...options.body }),
      );
    },
    close: () => api.close(),
  };
}
