import { afterAll, beforeAll } from 'vitest';
import {
  createLedgerModule,
  createPaymentsModule,
  type LedgerService,
  type ModuleDefinition,
  type PaymentsService,
  tenantSettings,
} from '../../src/index.js';
import { createIdentityModule } from '../../src/modules/identity/index.js';
import { createMailModule } from '../../src/modules/mail/index.js';
import { createOutboundModule } from '../../src/modules/outbound/index.js';
import { createPrivacyModule } from '../../src/modules/privacy/index.js';
import { createRealtimeModule } from '../../src/modules/realtime/index.js';
import { createTenancyModule } from '../../src/modules/tenancy/index.js';
import {
  createTestSocle,
  type FakeStripe,
  startFakeStripe,
  type TestDatabaseTarget,
  type TestSocle,
  type TestTenant,
} from '../../src/testing/index.js';
import { paymentsTestCatalog as paymentsCatalog } from '../fixtures/payments-module.js';
import { callAs } from './api-client.js';
import { pusherClient, testRealtimeApp } from './realtime-clients.js';

/** A listening Socle with ledger, realtime and payments on Stripe, and the fake Stripe it talks to. */
export interface PaymentsServer {
  readonly socle: TestSocle;
  readonly stripe: FakeStripe;
  readonly payments: PaymentsService;
  readonly ledger: LedgerService;
  readonly baseUrl: string;
  readonly webhookUrl: string;
  /** The webhook secret the server had before the fake's rotation (still accepted). */
  readonly oldSecret: string;
  readonly realtimeApp: ReturnType<typeof testRealtimeApp>;
  /** Opens a checkout through the API as `tenant`'s owner; returns the payment and the Stripe session id. */
  checkout(tenant: TestTenant, productId: string): Promise<{ paymentId: string; sessionId: string }>;
  /** The owner's wallet balance in `unit` (0 without a wallet). */
  balance(tenant: TestTenant, userId: string, unit: string): Promise<bigint>;
  /**
   * The person's posted balance in `unit` outside organizations (a unit of `book: 'platform'`
   * products: the ledger's platform book); 0 without an account there.
   */
  platformBalance(userId: string, unit: string): Promise<bigint>;
  /** Rows of the events table of `tenant`. */
  eventCount(tenant: TestTenant): Promise<number>;
  pusher(token: string): ReturnType<typeof pusherClient>;
}

/** The operator token of the payments test server (the operator routes of payments). */
export const PAYMENTS_OPERATOR_TOKEN = 'operator-token-of-the-payments-suite-0123456789';

export function usePaymentsServer(
  target: TestDatabaseTarget,
  /** More modules (the console, for its browser test). */
  // biome-ignore lint/suspicious/noExplicitAny: modules of any tables
  extraModules: readonly ModuleDefinition<any, any, any>[] = [],
  /** More payments settings (PAYMENTS_EVENT_TRANSACTIONS_MAX for the coalescer's suite). */
  paymentsSettings: Record<string, unknown> = {},
): PaymentsServer {
  let socle: TestSocle;
  let stripe: FakeStripe;
  let baseUrl: string;
  let oldSecret: string;
  const realtimeApp = testRealtimeApp();
  const ledgerModule = createLedgerModule();
  const paymentsModule = createPaymentsModule({ providers: ['stripe'], catalog: paymentsCatalog });
  const clients: ReturnType<typeof pusherClient>[] = [];

  beforeAll(async () => {
    stripe = await startFakeStripe();
    oldSecret = stripe.webhookSecret;
    const newSecret = stripe.rotateWebhookSecret();
    socle = await createTestSocle(target, {
      settings: {
        identity: { operatorToken: PAYMENTS_OPERATOR_TOKEN },
        realtime: realtimeApp,
        payments: {
          stripeSecretKey: stripe.secretKey,
          stripeWebhookSecrets: [newSecret, oldSecret],
          stripeApiUrl: stripe.url,
          ...paymentsSettings,
        },
      },
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createPrivacyModule(),
        createOutboundModule(),
        createRealtimeModule(),
        ledgerModule,
        paymentsModule,
        ...extraModules,
      ],
    });
    baseUrl = await socle.listen();
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await socle?.dispose();
    await stripe?.close();
  });

  return {
    get socle() {
      return socle;
    },
    get stripe() {
      return stripe;
    },
    get payments() {
      return socle.servicesOf(paymentsModule).payments;
    },
    get ledger() {
      return socle.servicesOf(ledgerModule).ledger;
    },
    get baseUrl() {
      return baseUrl;
    },
    get webhookUrl() {
      return `${baseUrl}/payments/webhooks/stripe`;
    },
    get oldSecret() {
      return oldSecret;
    },
    realtimeApp,
    async checkout(tenant, productId) {
      const response = await callAs(socle, tenant.owner, 'POST', '/payments/checkout', {
        orgId: tenant.id,
        payload: { productId, successUrl: 'https://app.test/ok', cancelUrl: 'https://app.test/cancel' },
      });
      if (response.statusCode !== 201) throw new Error(`checkout: ${response.statusCode} ${response.body}`);
      const body = response.json() as { id: string; providerReference: string };
      return { paymentId: body.id, sessionId: body.providerReference };
    },
    async balance(tenant, userId, unit) {
      const ledger = socle.servicesOf(ledgerModule).ledger;
      return socle.db.transaction(
        async (trx) => {
          const [wallet] = (await ledger.accounts(trx, { ownerUserId: userId })).filter(
            (account) => account.unit === unit,
          );
          return wallet === undefined ? 0n : wallet.balance.posted;
        },
        { settings: tenantSettings({ tenantId: tenant.id }) },
      );
    },
    async platformBalance(userId, unit) {
      const { rows } = await socle.db.withConnection(
        (connection) =>
          connection.query<{ balance: string | null }>(
            `select (credits_posted - debits_posted)::text as balance from ledger.accounts
              where tenant_id is null and owner_user_id = $1 and unit = $2 and code = 'wallet'`,
            [userId, unit],
          ),
        'owner',
      );
      return BigInt(rows[0]?.balance ?? 0);
    },
    async eventCount(tenant) {
      const { rows } = await socle.db.withConnection(
        (connection) =>
          connection.query<{ count: string }>(
            'select count(*)::text as count from payments.events where tenant_id = $1',
            [tenant.id],
          ),
        'owner',
      );
      return Number(rows[0]?.count ?? 0);
    },
    pusher(token) {
      const client = pusherClient(baseUrl, realtimeApp, token);
      clients.push(client);
      return client;
    },
  };
}
