import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createLedgerModule, createPaymentsModule, defineCatalog } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createOutboundModule } from '../src/modules/outbound/index.js';
import { createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import {
  createFakeAppStore,
  createTestSocle,
  type FakeAppStore,
  type FakeBtcpay,
  type FakeStripe,
  type FuzzCredential,
  type FuzzPreparation,
  fuzzEveryOperation,
  type StripeEvent,
  startFakeBtcpay,
  startFakeStripe,
  type TestSocle,
} from '../src/testing/index.js';
import { coinsPack } from './fixtures/payments-module.js';
import { describeEachDatabase } from './support/each-database.js';

const PASSWORD = 'correct horse battery staple orbit';
/** A pack sold in both stores under their own product ids. */
const catalog = defineCatalog([coinsPack]);

/**
 * The fuzz gate over the payments module's operations only (`only`): the main gate
 * (fuzz-gate.test.ts) walks the built-in modules; this one adds payments with fake providers
 * (Stripe, BTCPay, the App Store) without walking every other route again, so its wall time stays
 * bounded on a loaded machine. Every operation must answer 2xx at least once and never 5xx.
 */
describeEachDatabase('Fuzz gate over the payments operations', (target) => {
  const paymentsModule = createPaymentsModule({ providers: ['stripe', 'btcpay', 'apple'], catalog });
  /** Payments whose app handler fails (an app down), for a failed event to retry. */
  const failing = new Set<string>();
  let socle: TestSocle;
  let url: string;
  let stripe: FakeStripe;
  let btcpay: FakeBtcpay;
  let store: FakeAppStore;

  beforeAll(async () => {
    stripe = await startFakeStripe();
    btcpay = await startFakeBtcpay();
    store = createFakeAppStore({ bundleId: 'com.example.socle', environment: 'Sandbox' });
    socle = await createTestSocle(target, {
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createOutboundModule(),
        createRealtimeModule(),
        createLedgerModule(),
        paymentsModule,
      ],
      config: { jobsQueues: [] },
      settings: {
        payments: {
          ...stripe.paymentsSettings(),
          ...btcpay.paymentsSettings(),
          appleBundleId: store.bundleId,
          appleEnvironment: 'Sandbox',
          appleRootCertificates: [store.rootCertificate],
          appleOnlineChecks: false,
        },
      },
    });
    socle.servicesOf(paymentsModule).payments.on('payment.succeeded', (_trx, payment) => {
      if (failing.has(payment.id)) throw new Error('the app is down');
    });
    url = await socle.listen();
  });
  afterAll(async () => {
    await socle?.dispose();
    await stripe?.close();
    await btcpay?.close();
  });

  async function send(
    method: 'GET' | 'POST',
    path: string,
    payload?: object,
    headers: Record<string, string> = {},
  ) {
    const response = await socle.app.inject({
      method,
      url: path,
      headers,
      ...(payload === undefined ? {} : { payload }),
    });
    if (response.statusCode >= 300) throw new Error(`${method} ${path} failed: ${response.body}`);
    return response.json();
  }

  let callers = 0;
  async function newCaller(): Promise<FuzzCredential[]> {
    const remoteAddress = `10.1.${++callers}.1`;
    const post = async (path: string, payload: object, headers: Record<string, string> = {}) => {
      const response = await socle.app.inject({ method: 'POST', url: path, payload, headers, remoteAddress });
      if (response.statusCode >= 300) throw new Error(`${path} failed: ${response.body}`);
      return response.json();
    };
    const email = `fuzz-pay-${randomUUID().slice(0, 8)}@example.com`;
    const signUp = await post('/auth/sign-up', { email, password: PASSWORD });
    const bearer = { authorization: `Bearer ${signUp.tokens.accessToken}` };
    const org = await post('/orgs', { name: 'Fuzz' }, bearer);
    const user = { ...bearer, 'x-org-id': org.id as string };
    const apiKey = await post('/org/api-keys', { name: 'fuzz', scopes: ['fuzz:all'], role: 'admin' }, user);
    return [
      { name: 'anonymous', headers: {} },
      { name: 'user', headers: user, scheme: 'accessToken' },
      { name: 'api key', headers: { 'x-api-key': apiKey.key }, scheme: 'apiKey' },
    ];
  }

  /** A pack the caller bought through Stripe and paid (the signed webhook applied): refundable, with a customer. */
  /** Delivers a Stripe event to the webhook route, signed as Stripe signs it. */
  function deliverStripe(event: StripeEvent) {
    const delivery = stripe.sign(event);
    return socle.app.inject({
      method: 'POST',
      url: '/payments/webhooks/stripe',
      headers: { ...delivery.headers, 'content-type': 'application/json' },
      payload: delivery.body,
    });
  }

  async function paidStripePack(headers: Record<string, string>): Promise<string> {
    const payment = await send(
      'POST',
      '/payments/checkout',
      { productId: 'coins-500', successUrl: 'https://app.test/ok', cancelUrl: 'https://app.test/no' },
      headers,
    );
    const [completed] = stripe.completeCheckout(payment.providerReference as string);
    const applied = await deliverStripe(completed as StripeEvent);
    if (applied.statusCode !== 200) throw new Error(`webhook failed: ${applied.body}`);
    return payment.id as string;
  }
  /** A pack the caller bought in the app, posted, then refunded by Apple. */
  async function refundedApplePurchase(headers: Record<string, string>): Promise<string> {
    const { transactionId, signedTransaction } = store.purchase('com.example.socle.coins500');
    await send('POST', '/payments/purchases/apple', { signedTransaction }, headers);
    store.refund(transactionId);
    return transactionId;
  }

  const preparations: Record<
    string,
    Partial<Record<string, (credential: FuzzCredential) => Promise<FuzzPreparation>>>
  > = {
    'POST /payments/checkout': {
      user: async () => ({
        body: { productId: 'coins-500', successUrl: 'https://app.test/ok', cancelUrl: 'https://app.test/no' },
      }),
    },
    'POST /payments/invoices': {
      user: async () => ({ body: { productId: 'coins-500', provider: 'btcpay' } }),
    },
    'GET /payments/payments/{paymentId}/qr.{format}': {
      user: async (credential) => {
        const invoice = await send(
          'POST',
          '/payments/invoices',
          { productId: 'coins-500' },
          credential.headers,
        );
        return { path: { paymentId: invoice.id as string, format: 'svg' } };
      },
    },
    'POST /payments/portal': {
      user: async (credential) => {
        await paidStripePack(credential.headers);
        return { body: { returnUrl: 'https://app.test/account' } };
      },
    },
    'POST /org/payments/payments/{paymentId}/refund': {
      user: async (credential) => ({
        path: { paymentId: await paidStripePack(credential.headers) },
        body: {},
      }),
    },
    'POST /payments/purchases/{provider}': {
      user: async () => ({
        path: { provider: 'apple' },
        body: { signedTransaction: store.purchase('com.example.socle.coins500').signedTransaction },
      }),
    },
    // A Stripe event the app's handler refused (kept as failed), retried once the app is back.
    'POST /org/payments/events/{provider}/{eventId}/retry': {
      user: async (credential) => {
        const payment = await send(
          'POST',
          '/payments/checkout',
          { productId: 'coins-500', successUrl: 'https://app.test/ok', cancelUrl: 'https://app.test/no' },
          credential.headers,
        );
        failing.add(payment.id as string);
        const [completed] = stripe.completeCheckout(payment.providerReference as string);
        const refused = await deliverStripe(completed as StripeEvent);
        failing.delete(payment.id as string);
        if (refused.statusCode !== 500) throw new Error(`the webhook did not fail: ${refused.body}`);
        return { path: { provider: 'stripe', eventId: (completed as StripeEvent).id } };
      },
    },
    // Apple's notification carries its signature in the body (a JWS): it survives the gate's JSON.
    'POST /payments/webhooks/{provider}': {
      user: async (credential) => {
        const transactionId = await refundedApplePurchase(credential.headers);
        return {
          headers: { 'content-type': 'application/json' },
          path: { provider: 'apple' },
          body: JSON.parse(store.notification('REFUND', transactionId)),
        };
      },
    },
  };

  it('answers every malformed payments request with a 4xx problem+json, never a 5xx', {
    timeout: 300_000,
  }, async () => {
    const isPayments = (operation: string) => /^\S+ \/(org\/)?payments\//.test(operation);
    const report = await fuzzEveryOperation(socle, {
      url,
      only: isPayments,
      credentials: newCaller,
      prepare: async (operation, credential) => preparations[operation]?.[credential.name]?.(credential),
      maxPreparations: 3,
    });
    console.log(
      `fuzz gate payments [${target.dialect}]: ${report.sent} requests over ${report.operations.length} operations, ${report.serverErrors} × 5xx, ${report.findings.length} findings; answers by status: ${JSON.stringify(report.statuses)}`,
    );
    expect(report.findings).toEqual([]);
    expect(report.serverErrors).toBe(0);
    expect(report.operations.length).toBeGreaterThanOrEqual(10);
    expect(report.operations.every(isPayments)).toBe(true);
    // Every payments operation got past its checks at least once.
    expect(report.operations.filter((operation) => !report.succeeded.includes(operation))).toEqual([]);
  });
});
