/**
 * Child process: Socle with the ledger, realtime and payments (Stripe, pointed at the in-process
 * fake Stripe, plus `bench-btc`, an invoice provider that answers at once so invoice + QR time is
 * Socle's own). At start it seeds `BUYERS` buyers, one organization each, each with a paid Stripe
 * subscription; `POST /bench/payments/renewals { count }` then makes `invoice.paid` events of
 * those subscriptions at the fake (each grants the period's credits once: a ledger posting and a
 * `payment.succeeded` message on the buyer's private channel). The harness signs and delivers them.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  createIdentityModule,
  createLedgerModule,
  createOutboundModule,
  createPaymentsModule,
  createRealtimeModule,
  createSocle,
  createTenancyModule,
  defineCatalog,
  defineModule,
  type PaymentProvider,
} from 'socle';
import { type StripeEvent, startFakeStripe } from 'socle/testing';
import { runServerChild } from '../../server-child.js';
import { benchMailModule, benchSocleConfig, injectJson } from '../shared/socle-setup.js';
import { BUYERS, PAYMENTS_APP, type Renewal, stripeSignature, WEBHOOK_SECRET } from './shared.js';

const catalog = defineCatalog([
  {
    id: 'coins-500',
    kind: 'pack',
    name: '500 coins',
    price: 499,
    currency: 'EUR',
    credits: 500,
    unit: 'coins',
  },
  {
    id: 'pro-monthly',
    kind: 'subscription',
    name: 'Pro',
    price: 1900,
    currency: 'EUR',
    interval: 'month',
    credits: 1000,
    unit: 'credits',
  },
]);

/** Opens invoices without a network call: a BIP21 URI with a Lightning invoice of realistic length. */
const benchBitcoin: PaymentProvider = {
  name: 'bench-btc',
  async verifyWebhook() {
    throw new Error('bench-btc sends no webhooks');
  },
  async createInvoice(request) {
    const sats = request.amount * 2_000n;
    const lightning = `lnbcrt${sats}n1p${randomBytes(150).toString('hex').slice(0, 280)}`;
    return {
      reference: `bench-${request.paymentId}`,
      amountSats: sats,
      paymentUri: `bitcoin:bcrt1q${randomBytes(20).toString('hex')}?amount=${(Number(sats) / 1e8).toFixed(8)}&lightning=${lightning}`,
      expiresAt: new Date(Date.now() + request.expiresInSeconds * 1000),
    };
  },
};

runServerChild(async (settings) => {
  if (settings.dialect !== 'postgres') throw new Error('payments runs on Postgres only');
  const stripe = await startFakeStripe();
  const subscriptions: { userId: string; subscriptionId: string }[] = [];
  const benchRoutes = defineModule({
    name: 'payments_bench',
    dependsOn: ['payments'],
    setup: () => ({}),
    routes(app) {
      app.post('/bench/payments/renewals', async (request) => {
        const { count } = request.body as { count: number };
        const renewals: Renewal[] = [];
        for (let index = 0; index < count; index++) {
          const { userId, subscriptionId } = subscriptions[
            index % subscriptions.length
          ] as (typeof subscriptions)[0];
          const paid = stripe
            .renewSubscription(subscriptionId)
            .find((event) => event.type === 'invoice.paid');
          if (paid === undefined) throw new Error('the fake made no invoice.paid');
          renewals.push({
            userId,
            invoiceId: (paid.data.object as { id: string }).id,
            body: stripe.sign(paid).body,
          });
        }
        return { renewals };
      });
    },
  });
  const socle = await createSocle({
    config: benchSocleConfig(settings, {
      moduleSettings: {
        realtime: { appId: PAYMENTS_APP.id, appKey: PAYMENTS_APP.key, appSecret: PAYMENTS_APP.secret },
        payments: {
          stripeSecretKey: stripe.secretKey,
          stripeWebhookSecrets: [WEBHOOK_SECRET],
          stripeApiUrl: stripe.url,
          // The cap on event transactions in flight, from the bench's environment when set (a
          // large value turns it off, to compare: what the coalescer did before the cap).
          ...(process.env.PAYMENTS_EVENT_TRANSACTIONS_MAX === undefined
            ? {}
            : { eventTransactionsMax: Number(process.env.PAYMENTS_EVENT_TRANSACTIONS_MAX) }),
        },
      },
    }),
    modules: [
      createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
      createTenancyModule(),
      benchMailModule(),
      createOutboundModule(),
      createRealtimeModule(),
      createLedgerModule(),
      createPaymentsModule({ providers: ['stripe', benchBitcoin], catalog }),
      benchRoutes,
    ],
  });
  const { app } = socle;
  const deliver = async (event: StripeEvent) => {
    const body = stripe.sign(event).body;
    const response = await app.inject({
      method: 'POST',
      url: '/payments/webhooks/stripe',
      headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(body) },
      payload: body,
    });
    if (response.statusCode !== 200)
      throw new Error(`seed webhook answered ${response.statusCode}: ${response.body}`);
  };
  let firstHeaders: Record<string, string> | undefined;
  for (let index = 0; index < BUYERS; index++) {
    const email = `bench-buyer-${randomUUID()}@example.com`;
    const signUp = await injectJson(
      app,
      {
        method: 'POST',
        url: '/auth/sign-up',
        payload: { email, password: 'quartz-lantern-hollow-91-meadow', name: 'Buyer' },
      },
      [201],
    );
    const body = signUp.body as { user: { id: string }; tokens: { accessToken: string } };
    const bearer = { authorization: `Bearer ${body.tokens.accessToken}` };
    const org = await injectJson(
      app,
      { method: 'POST', url: '/orgs', headers: bearer, payload: { name: `Shop ${index}` } },
      [201],
    );
    const headers = { ...bearer, 'x-org-id': (org.body as { id: string }).id };
    firstHeaders ??= headers;
    const checkout = await injectJson(
      app,
      {
        method: 'POST',
        url: '/payments/checkout',
        headers,
        payload: {
          productId: 'pro-monthly',
          successUrl: 'https://shop.test/ok',
          cancelUrl: 'https://shop.test/no',
        },
      },
      [201],
    );
    const events = stripe.completeCheckout(
      (checkout.body as { providerReference: string }).providerReference,
    );
    for (const event of events) await deliver(event);
    const created = events.find((event) => event.type === 'customer.subscription.created');
    if (created === undefined) throw new Error('the fake made no subscription');
    subscriptions.push({ userId: body.user.id, subscriptionId: (created.data.object as { id: string }).id });
  }
  const url = await socle.listen();
  return {
    url,
    requestHeaders: firstHeaders ?? {},
    async close() {
      await socle.close();
      await stripe.close();
    },
  };
});
