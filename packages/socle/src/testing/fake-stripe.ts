import { createHmac, randomBytes } from 'node:crypto';
import { type FaultyProvider, type ReceivedRequest, startFaultyProvider } from './faulty-provider.js';

/** A Stripe object as the fake keeps it: the JSON Stripe's API would answer. */
export type StripeObject = Record<string, unknown> & { id: string };

/** An event as Stripe sends it (`evt_…`), with the object's state at the time. */
export interface StripeEvent {
  readonly id: string;
  readonly object: 'event';
  readonly api_version: string;
  readonly created: number;
  readonly type: string;
  readonly livemode: false;
  readonly pending_webhooks: number;
  readonly request: { id: string | null; idempotency_key: string | null };
  readonly data: { object: StripeObject };
}

/** How a delivery is signed: the secrets whose `v1` it carries, and its timestamp (seconds). */
export interface StripeDeliveryOptions {
  readonly secrets?: readonly string[];
  readonly timestamp?: number;
}

/** How a fake Stripe starts: fixed address and secrets for a demo, where its checkout page delivers. */
export interface FakeStripeOptions {
  /** The loopback port (default: any free one). */
  readonly port?: number;
  /** The secret API key it accepts (default: a random `sk_test_…`). */
  readonly secretKey?: string;
  /** The webhook endpoint's signing secret (default: a random `whsec_…`). */
  readonly webhookSecret?: string;
  /** Where its hosted checkout page delivers a paid session's events (`…/payments/webhooks/stripe`). */
  readonly webhookUrl?: string;
}

/** A local Stripe API for tests and demos, driven by the official `stripe` SDK. */
export interface FakeStripe {
  /** Give it to the SDK (`PAYMENTS_STRIPE_API_URL`). */
  readonly url: string;
  readonly secretKey: string;
  /** The webhook endpoint's signing secret (`whsec_…`). */
  readonly webhookSecret: string;
  /**
   * The payments module's settings that point Socle at this fake (its key, URL and current webhook
   * secret): `settings: { payments: { ...stripe.paymentsSettings() } }`.
   */
  paymentsSettings(): { stripeSecretKey: string; stripeWebhookSecrets: string[]; stripeApiUrl: string };
  /** Fault injection on the API: `failNext(2, { status: 500 })`, `{ status: 429 }`, `{ hang: true }`. */
  readonly api: FaultyProvider;
  /** Every event created, oldest first (what `GET /v1/events` lists, newest first). */
  readonly events: StripeEvent[];
  /** Objects by id: sessions, customers, payment intents, charges, subscriptions, invoices, refunds. */
  readonly objects: Map<string, StripeObject>;
  /**
   * Where the hosted checkout page (`GET /checkout/{session}`, the session's `url`) delivers the
   * events of a session the buyer pays there (the server's `/payments/webhooks/stripe`; `socle
   * start` with `PAYMENTS_FAKES=stripe` sets it); undefined: paid, not delivered (the test delivers).
   */
  webhookUrl: string | undefined;
  /**
   * The hosted page's deliveries so far, in order: each event (and its id and type) and the
   * status it was answered (0: unreachable).
   */
  readonly deliveries: {
    readonly event: StripeEvent;
    readonly eventId: string;
    readonly type: string;
    readonly status: number;
  }[];
  /** The buyer pays a Checkout Session: its events (completion; subscription and first invoice). */
  completeCheckout(sessionId: string): StripeEvent[];
  /** The charge of a paid one-off session (to script refunds made in Stripe's dashboard). */
  chargeOf(sessionId: string): StripeObject;
  /** The charge that paid a subscription invoice (each paid invoice has its PaymentIntent and charge). */
  chargeOfInvoice(invoiceId: string): StripeObject;
  /**
   * A subscription invoice refunded (all that remains by default), as from Stripe's dashboard:
   * `charge.refunded` about the invoice's charge (which names its PaymentIntent, not the invoice).
   */
  refundInvoice(invoiceId: string, amount?: number): StripeEvent[];
  /** The buyer's bank disputes the paid session's charge (all of it by default): `charge.dispute.created`. */
  dispute(sessionId: string, amount?: number): StripeEvent[];
  /** The buyer's bank disputes a subscription invoice's charge: `charge.dispute.created`. */
  disputeInvoice(invoiceId: string, amount?: number): StripeEvent[];
  /** The dispute closes `won` or `lost`: `charge.dispute.closed`. */
  closeDispute(disputeId: string, outcome: 'won' | 'lost'): StripeEvent[];
  /** The session expires unpaid. */
  expireCheckout(sessionId: string): StripeEvent[];
  /** A new period of a subscription is paid: `invoice.paid` and `customer.subscription.updated`. */
  renewSubscription(subscriptionId: string): StripeEvent[];
  /** A renewal fails: `invoice.payment_failed`, then the subscription goes `past_due`. */
  failRenewal(subscriptionId: string): StripeEvent[];
  /** The subscription ends: `customer.subscription.deleted`. */
  cancelSubscription(subscriptionId: string): StripeEvent[];
  /** A new signing secret; the old one stays valid, deliveries carry a `v1` for each (Stripe's rotation). */
  rotateWebhookSecret(): string;
  /** The body and `Stripe-Signature` header of a delivery of `event`. */
  sign(
    event: StripeEvent,
    options?: StripeDeliveryOptions,
  ): { body: string; headers: Record<string, string> };
  /** POSTs `event` to `url`, signed; resolves with the status code. */
  deliver(url: string, event: StripeEvent, options?: StripeDeliveryOptions): Promise<number>;
  close(): Promise<void>;
}

const API_VERSION = '2026-11-18.endive';

/** Stripe's form encoding (`line_items[0][price_data][currency]=eur`) into nested objects. */
function parseForm(body: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const [key, value] of new URLSearchParams(body)) {
    const path = key.split(/\[|\]\[|\]/).filter((part) => part !== '');
    let node: Record<string, unknown> = root;
    path.forEach((part, index) => {
      if (index === path.length - 1) node[part] = value;
      else {
        if (node[part] === undefined) node[part] = /^\d+$/.test(path[index + 1] ?? '') ? [] : {};
        node = node[part] as Record<string, unknown>;
      }
    });
  }
  return root;
}

const stripeError = (status: number, type: string, message: string) => ({
  status,
  json: { error: { type, message } },
});

/**
 * Starts a fake Stripe on a loopback port: Checkout Sessions (payment and subscription), customers,
 * the billing portal, refunds, the events list, idempotency keys (a repeated key answers the first
 * answer; other parameters under one key are refused), and signed webhook deliveries (`t=…,v1=…`,
 * one `v1` per secret while rotating). Faults come from {@link startFaultyProvider} (`api`).
 *
 * A session's `url` is a hosted checkout page a browser can use: its Pay button completes the
 * session, delivers its events to `webhookUrl` (signed, in order) and redirects to the session's
 * `success_url`, as Stripe Checkout does; Cancel goes to its `cancel_url`.
 *
 * @example
 * const stripe = await startFakeStripe();
 * // PAYMENTS_STRIPE_API_URL=stripe.url PAYMENTS_STRIPE_SECRET_KEY=stripe.secretKey
 * // PAYMENTS_STRIPE_WEBHOOK_SECRETS=stripe.webhookSecret
 * const [completed] = stripe.completeCheckout(sessionId);
 * await stripe.deliver(`${baseUrl}/payments/webhooks/stripe`, completed);
 */
export async function startFakeStripe(options: FakeStripeOptions = {}): Promise<FakeStripe> {
  const api = await startFaultyProvider(options.port === undefined ? {} : { port: options.port });
  const secretKey = options.secretKey ?? `sk_test_${randomBytes(12).toString('hex')}`;
  const secrets = [options.webhookSecret ?? `whsec_${randomBytes(16).toString('hex')}`];
  let webhookUrl = options.webhookUrl;
  const deliveries: FakeStripe['deliveries'] = [];
  const objects = new Map<string, StripeObject>();
  const events: StripeEvent[] = [];
  const idempotent = new Map<string, { body: string; answer: { status: number; json: unknown } }>();
  let counter = 0;
  // Event times advance a second per event, so objects' states order as they happened.
  let clock = Math.floor(Date.now() / 1000);
  const id = (prefix: string) =>
    `${prefix}_test_${(++counter).toString(36).padStart(6, '0')}${randomBytes(4).toString('hex')}`;
  const put = (object: StripeObject) => {
    objects.set(object.id, object);
    return object;
  };
  const snapshot = (object: StripeObject) => structuredClone(publicView(object)) as StripeObject;
  const emit = (type: string, object: StripeObject): StripeEvent => {
    const event: StripeEvent = {
      id: id('evt'),
      object: 'event',
      api_version: API_VERSION,
      created: ++clock,
      type,
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      data: { object: snapshot(object) },
    };
    events.push(event);
    return event;
  };
  const get = (objectId: string, what: string) => {
    const object = objects.get(objectId);
    if (object === undefined) throw new Error(`fake Stripe: no ${what} ${objectId}`);
    return object;
  };

  /**
   * A paid invoice's PaymentIntent, charge and InvoicePayment (the link between them: since API
   * version 2025-03-31 a charge no longer names its invoice, and `GET /v1/invoice_payments`
   * finds the invoice of a PaymentIntent). Stripe puts no subscription metadata on them.
   */
  const payInvoice = (invoice: StripeObject) => {
    const intent = put({
      id: id('pi'),
      object: 'payment_intent',
      amount: invoice.amount_paid,
      currency: invoice.currency,
      status: 'succeeded',
      customer: invoice.customer,
      metadata: {},
    });
    const charge = put({
      id: id('ch'),
      object: 'charge',
      amount: invoice.amount_paid,
      amount_refunded: 0,
      refunded: false,
      currency: invoice.currency,
      payment_intent: intent.id,
      customer: invoice.customer,
      metadata: {},
    });
    intent.latest_charge = charge.id;
    put({
      id: id('inpay'),
      object: 'invoice_payment',
      amount_paid: invoice.amount_paid,
      amount_requested: invoice.amount_due,
      created: clock,
      currency: invoice.currency,
      invoice: invoice.id,
      is_default: true,
      livemode: false,
      payment: { type: 'payment_intent', payment_intent: intent.id },
      status: 'paid',
      status_transitions: { canceled_at: null, paid_at: clock },
    });
    invoice._payment_intent = intent.id;
  };

  const newInvoice = (subscription: StripeObject, reason: string, paid: boolean) => {
    const item = (subscription.items as { data: Record<string, number>[] }).data[0] as Record<string, number>;
    const invoice = put({
      id: id('in'),
      object: 'invoice',
      status: paid ? 'paid' : 'open',
      billing_reason: reason,
      customer: subscription.customer,
      amount_due: subscription.amount,
      amount_paid: paid ? subscription.amount : 0,
      currency: subscription.currency,
      period_start: item.current_period_start,
      period_end: item.current_period_end,
      parent: {
        type: 'subscription_details',
        quote_details: null,
        subscription_details: { subscription: subscription.id, metadata: subscription.metadata },
      },
    });
    if (paid) payInvoice(invoice);
    return invoice;
  };

  function createSession(params: Record<string, unknown>) {
    const lineItems = params.line_items as { price_data: Record<string, unknown> }[] | undefined;
    const price = lineItems?.[0]?.price_data;
    if (price === undefined)
      return stripeError(400, 'invalid_request_error', 'Missing required param: line_items.');
    const mode = params.mode as string;
    if (mode !== 'payment' && mode !== 'subscription')
      return stripeError(400, 'invalid_request_error', `Invalid mode: ${String(mode)}`);
    const session = put({
      id: id('cs'),
      object: 'checkout.session',
      mode,
      status: 'open',
      payment_status: 'unpaid',
      client_reference_id: params.client_reference_id ?? null,
      metadata: params.metadata ?? {},
      customer: params.customer ?? null,
      customer_email: params.customer_email ?? null,
      payment_intent: null,
      subscription: null,
      amount_total: Number(price.unit_amount),
      currency: price.currency,
      success_url: params.success_url,
      cancel_url: params.cancel_url,
      created: clock,
      expires_at: clock + 86_400,
      livemode: false,
      _payment_intent_data: params.payment_intent_data ?? {},
      _subscription_data: params.subscription_data ?? {},
      _recurring: price.recurring ?? null,
      _line_item: { name: (price.product_data as { name?: unknown } | undefined)?.name },
    });
    session.url = `${api.url}/checkout/${session.id}`;
    return { status: 200, json: publicView(session) };
  }

  /** Hides the fake's own bookkeeping (fields starting with `_`). */
  const publicView = (object: StripeObject) =>
    Object.fromEntries(Object.entries(object).filter(([key]) => !key.startsWith('_')));

  function route(request: ReceivedRequest): { status: number; json: unknown } {
    if (request.headers.authorization !== `Bearer ${secretKey}`)
      return stripeError(401, 'invalid_request_error', 'Invalid API Key provided.');
    const url = new URL(request.url, api.url);
    const params = parseForm(request.method === 'GET' ? url.search.slice(1) : request.body);
    if (request.method === 'POST' && url.pathname === '/v1/checkout/sessions') return createSession(params);
    if (request.method === 'POST' && url.pathname === '/v1/customers') {
      const customer = put({
        id: id('cus'),
        object: 'customer',
        email: params.email ?? null,
        metadata: params.metadata ?? {},
      });
      return { status: 200, json: customer };
    }
    if (request.method === 'POST' && url.pathname === '/v1/billing_portal/sessions') {
      if (typeof params.customer !== 'string' || !objects.has(params.customer))
        return stripeError(400, 'invalid_request_error', `No such customer: '${String(params.customer)}'`);
      const portal = {
        id: id('bps'),
        object: 'billing_portal.session',
        customer: params.customer,
        return_url: params.return_url,
      };
      return { status: 200, json: { ...portal, url: `${api.url}/portal/${portal.id}` } };
    }
    if (request.method === 'POST' && url.pathname === '/v1/refunds') return createRefund(params);
    if (request.method === 'GET' && url.pathname === '/v1/events') {
      const created = params.created as Record<string, string> | undefined;
      const gte = Number(created?.gte ?? 0);
      const limit = Math.min(Number(params.limit ?? 10), 100);
      let newestFirst = [...events].reverse().filter((event) => event.created >= gte);
      if (typeof params.starting_after === 'string') {
        const index = newestFirst.findIndex((event) => event.id === params.starting_after);
        newestFirst = newestFirst.slice(index + 1);
      }
      return {
        status: 200,
        json: {
          object: 'list',
          url: '/v1/events',
          has_more: newestFirst.length > limit,
          data: newestFirst.slice(0, limit),
        },
      };
    }
    if (request.method === 'GET' && url.pathname === '/v1/invoice_payments') {
      const payment = params.payment as { type?: string; payment_intent?: string } | undefined;
      const found = [...objects.values()].filter(
        (object) =>
          object.object === 'invoice_payment' &&
          (typeof params.invoice !== 'string' || object.invoice === params.invoice) &&
          (payment?.payment_intent === undefined ||
            (object.payment as { payment_intent?: string }).payment_intent === payment.payment_intent),
      );
      return {
        status: 200,
        json: { object: 'list', url: '/v1/invoice_payments', has_more: false, data: found.reverse() },
      };
    }
    const retrieve =
      /^\/v1\/(checkout\/sessions|customers|payment_intents|charges|subscriptions|invoices)\/([^/]+)$/.exec(
        url.pathname,
      );
    if (request.method === 'GET' && retrieve?.[2] !== undefined) {
      const object = objects.get(decodeURIComponent(retrieve[2]));
      return object === undefined
        ? stripeError(404, 'invalid_request_error', `No such object: '${retrieve[2]}'`)
        : { status: 200, json: publicView(object) };
    }
    return stripeError(
      404,
      'invalid_request_error',
      `Unrecognized request URL (${request.method}: ${url.pathname}).`,
    );
  }

  function createRefund(params: Record<string, unknown>) {
    const intent = typeof params.payment_intent === 'string' ? objects.get(params.payment_intent) : undefined;
    if (intent === undefined)
      return stripeError(
        400,
        'invalid_request_error',
        `No such payment_intent: '${String(params.payment_intent)}'`,
      );
    return refundCharge(
      get(intent.latest_charge as string, 'charge'),
      params.amount === undefined ? undefined : Number(params.amount),
      params.metadata,
    );
  }

  function refundCharge(charge: StripeObject, asked: number | undefined, metadata: unknown = {}) {
    const remaining = (charge.amount as number) - (charge.amount_refunded as number);
    const amount = asked ?? remaining;
    if (!(amount > 0 && amount <= remaining))
      return stripeError(
        400,
        'invalid_request_error',
        `Refund amount (${amount}) is greater than unrefunded amount on charge (${remaining})`,
      );
    charge.amount_refunded = (charge.amount_refunded as number) + amount;
    charge.refunded = charge.amount_refunded === charge.amount;
    const refund = put({
      id: id('re'),
      object: 'refund',
      amount,
      charge: charge.id,
      payment_intent: charge.payment_intent,
      status: 'succeeded',
      metadata: metadata ?? {},
    });
    emit('charge.refunded', charge);
    return { status: 200, json: refund };
  }

  function disputeCharge(charge: StripeObject, amount: number | undefined) {
    const dispute = put({
      id: id('dp'),
      object: 'dispute',
      amount: amount ?? charge.amount,
      currency: charge.currency,
      charge: charge.id,
      payment_intent: charge.payment_intent,
      reason: 'fraudulent',
      status: 'needs_response',
      created: clock,
      metadata: {},
    });
    charge.disputed = true;
    return [emit('charge.dispute.created', dispute)];
  }

  /** Delivers a paid session's events one after the other, in the background (the page answered already, as Stripe's does). */
  async function deliverInOrder(events: readonly StripeEvent[]) {
    for (const event of events) {
      const target = webhookUrl;
      if (target === undefined) return;
      const status = await fake.deliver(target, event).catch(() => 0);
      deliveries.push({ event, eventId: event.id, type: event.type, status });
    }
  }

  /**
   * Stripe Checkout's hosted page at the session's `url`, for a browser (no API key): the product,
   * the amount, Pay and Cancel. Pay completes the session, delivers its events to `webhookUrl` and
   * sends the buyer to the success URL. Pay again on a paid session (a double click, a reload)
   * pays nothing more and goes to the success URL too; on an expired one it is refused (400).
   */
  function hostedCheckout(
    request: ReceivedRequest,
  ): { status: number; body: string; headers: Record<string, string> } | undefined {
    const match = /^\/checkout\/([^/]+)(\/pay)?$/.exec(new URL(request.url, api.url).pathname);
    if (match === null) return undefined;
    const session = objects.get(decodeURIComponent(match[1] as string));
    const html = (status: number, body: string) => ({
      status,
      body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Checkout (fake Stripe, test mode)</title></head><body>${body}</body></html>`,
      headers: { 'content-type': 'text/html; charset=utf-8' },
    });
    if (session === undefined || session.object !== 'checkout.session')
      return html(404, '<h1>No such checkout session</h1>');
    if (request.method === 'POST' && match[2] !== undefined) {
      if (session.status === 'open') void deliverInOrder(fake.completeCheckout(session.id));
      else if (session.status !== 'complete')
        return html(400, `<p id="status">This checkout is ${escapeHtml(String(session.status))}.</p>`);
      return { status: 303, body: '', headers: { location: String(session.success_url) } };
    }
    if (request.method !== 'GET') return html(405, '<h1>Method not allowed</h1>');
    const product = (session._line_item as { name?: string } | undefined)?.name ?? 'Your order';
    const amount = `${((session.amount_total as number) / 100).toFixed(2)} ${String(session.currency).toUpperCase()}`;
    return html(
      200,
      `<h1>Checkout (fake Stripe, test mode)</h1><p id="session">${escapeHtml(session.id)}</p>` +
        `<p id="product">${escapeHtml(product)}</p><p id="amount">${escapeHtml(amount)}</p>` +
        (session.status === 'open'
          ? `<form method="post" action="/checkout/${encodeURIComponent(session.id)}/pay"><button id="pay" type="submit">Pay ${escapeHtml(amount)}</button></form>` +
            `<p><a id="cancel" href="${escapeHtml(String(session.cancel_url))}">Cancel</a></p>`
          : `<p id="status">This checkout is ${escapeHtml(String(session.status))}.</p>`),
    );
  }

  api.answer((request) => {
    const page = hostedCheckout(request);
    if (page !== undefined) return page;
    const key = request.headers['idempotency-key'];
    if (request.method !== 'POST' || typeof key !== 'string') return route(request);
    const seen = idempotent.get(key);
    if (seen !== undefined)
      return seen.body === request.body
        ? { ...seen.answer, headers: { 'idempotent-replayed': 'true' } }
        : stripeError(
            400,
            'idempotency_error',
            'Keys for idempotent requests can only be used with the same parameters they were first used with.',
          );
    const answer = route(request);
    if (answer.status < 500) idempotent.set(key, { body: request.body, answer });
    return answer;
  });

  const sign = (event: StripeEvent, options: StripeDeliveryOptions = {}) => {
    const body = JSON.stringify(event, null, 2);
    const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
    const signatures = (options.secrets ?? secrets).map(
      (secret) => `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`,
    );
    return {
      body,
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'stripe-signature': `t=${timestamp},${signatures.join(',')}`,
      },
    };
  };

  const fake: FakeStripe = {
    url: api.url,
    secretKey,
    get webhookSecret() {
      return secrets[secrets.length - 1] as string;
    },
    paymentsSettings() {
      return {
        stripeSecretKey: secretKey,
        stripeWebhookSecrets: [fake.webhookSecret],
        stripeApiUrl: api.url,
      };
    },
    api,
    events,
    objects,
    get webhookUrl() {
      return webhookUrl;
    },
    set webhookUrl(url) {
      webhookUrl = url;
    },
    deliveries,

    completeCheckout(sessionId) {
      const session = get(sessionId, 'checkout session');
      if (session.status !== 'open')
        throw new Error(`fake Stripe: session ${sessionId} is ${String(session.status)}`);
      const customer =
        (session.customer as string | null) ??
        put({ id: id('cus'), object: 'customer', email: session.customer_email, metadata: {} }).id;
      session.customer = customer;
      session.status = 'complete';
      session.payment_status = 'paid';
      if (session.mode === 'payment') {
        const metadata = (session._payment_intent_data as { metadata?: unknown }).metadata ?? {};
        const intent = put({
          id: id('pi'),
          object: 'payment_intent',
          amount: session.amount_total,
          currency: session.currency,
          status: 'succeeded',
          customer,
          metadata,
        });
        // Stripe copies the PaymentIntent's metadata to its charges.
        const charge = put({
          id: id('ch'),
          object: 'charge',
          amount: session.amount_total,
          amount_refunded: 0,
          refunded: false,
          currency: session.currency,
          payment_intent: intent.id,
          customer,
          metadata,
        });
        intent.latest_charge = charge.id;
        session.payment_intent = intent.id;
        return [emit('checkout.session.completed', session)];
      }
      const metadata = (session._subscription_data as { metadata?: unknown }).metadata ?? {};
      const start = clock;
      const subscription = put({
        id: id('sub'),
        object: 'subscription',
        status: 'active',
        customer,
        metadata,
        cancel_at_period_end: false,
        amount: session.amount_total,
        currency: session.currency,
        items: {
          object: 'list',
          data: [
            {
              id: id('si'),
              object: 'subscription_item',
              current_period_start: start,
              current_period_end: start + 30 * 86_400,
            },
          ],
        },
      });
      session.subscription = subscription.id;
      const invoice = newInvoice(subscription, 'subscription_create', true);
      return [
        emit('customer.subscription.created', subscription),
        emit('invoice.paid', invoice),
        emit('checkout.session.completed', session),
      ];
    },

    chargeOf(sessionId) {
      const intent = get(get(sessionId, 'checkout session').payment_intent as string, 'payment intent');
      return get(intent.latest_charge as string, 'charge');
    },

    chargeOfInvoice(invoiceId) {
      const invoice = get(invoiceId, 'invoice');
      if (invoice._payment_intent === undefined)
        throw new Error(`fake Stripe: invoice ${invoiceId} is unpaid`);
      const intent = get(invoice._payment_intent as string, 'payment intent');
      return get(intent.latest_charge as string, 'charge');
    },

    refundInvoice(invoiceId, amount) {
      const before = events.length;
      const answer = refundCharge(fake.chargeOfInvoice(invoiceId), amount);
      if (answer.status !== 200) throw new Error(`fake Stripe: ${JSON.stringify(answer.json)}`);
      return events.slice(before);
    },

    dispute(sessionId, amount) {
      const session = get(sessionId, 'checkout session');
      const intent = get(session.payment_intent as string, 'payment intent');
      return disputeCharge(get(intent.latest_charge as string, 'charge'), amount);
    },

    disputeInvoice(invoiceId, amount) {
      return disputeCharge(fake.chargeOfInvoice(invoiceId), amount);
    },

    closeDispute(disputeId, outcome) {
      const dispute = get(disputeId, 'dispute');
      dispute.status = outcome;
      return [emit('charge.dispute.closed', dispute)];
    },

    expireCheckout(sessionId) {
      const session = get(sessionId, 'checkout session');
      session.status = 'expired';
      return [emit('checkout.session.expired', session)];
    },

    renewSubscription(subscriptionId) {
      const subscription = get(subscriptionId, 'subscription');
      const item = (subscription.items as { data: Record<string, number>[] }).data[0] as Record<
        string,
        number
      >;
      item.current_period_start = item.current_period_end as number;
      item.current_period_end = (item.current_period_end as number) + 30 * 86_400;
      subscription.status = 'active';
      const invoice = newInvoice(subscription, 'subscription_cycle', true);
      return [emit('invoice.paid', invoice), emit('customer.subscription.updated', subscription)];
    },

    failRenewal(subscriptionId) {
      const subscription = get(subscriptionId, 'subscription');
      const invoice = newInvoice(subscription, 'subscription_cycle', false);
      subscription.status = 'past_due';
      return [emit('invoice.payment_failed', invoice), emit('customer.subscription.updated', subscription)];
    },

    cancelSubscription(subscriptionId) {
      const subscription = get(subscriptionId, 'subscription');
      subscription.status = 'canceled';
      return [emit('customer.subscription.deleted', subscription)];
    },

    rotateWebhookSecret() {
      secrets.push(`whsec_${randomBytes(16).toString('hex')}`);
      return secrets[secrets.length - 1] as string;
    },

    sign,

    async deliver(url, event, options) {
      const { body, headers } = sign(event, options);
      const response = await fetch(url, { method: 'POST', headers, body });
      await response.arrayBuffer();
      return response.status;
    },

    close: () => api.close(),
  };
  return fake;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
