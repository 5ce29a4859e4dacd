import {
  defineJob,
  defineModule,
  defineSettings,
  type ModuleDefinition,
  type SettingValues,
  type SetupContext,
  setting,
} from '../../kernel/index.js';
import type { LedgerServices } from '../ledger/index.js';
import { defineProvider, type OutboundServices, type ProviderOptions } from '../outbound/index.js';
import type { Realtime } from '../realtime/index.js';
import { createAppleProvider } from './apple-provider.js';
import { createBtcpayProvider } from './btcpay-provider.js';
import type { Catalog } from './catalog.js';
import { createGooglePlayProvider } from './google-play-provider.js';
import { registerPaymentEventRoutes } from './payment-events.routes.js';
import { createPaymentEventsService, type PaymentEventsService } from './payment-events.service.js';
import { paymentsErrors } from './payments.errors.js';
import { createPaymentsPrivacy } from './payments.privacy.js';
import { registerPaymentsRoutes } from './payments.routes.js';
import { createPaymentsService, type PaymentsService } from './payments.service.js';
import type { PaymentsTables } from './payments.tables.js';
import type { PaymentProvider } from './provider.js';
import { createStripeProvider } from './stripe-provider.js';
import { createSwissBitcoinPayProvider } from './swiss-bitcoin-pay-provider.js';

/** What the payments module gives other modules, apps and tests (`socle.servicesOf(payments)`). */
export interface PaymentsServices {
  readonly payments: PaymentsService;
  /** Provider events received, applied or failed, and the retry of a failed one (the console's payments page). */
  readonly events: PaymentEventsService;
}

/** The payments module's settings: provider secrets come from the environment, never from code. */
export const paymentsSettings = defineSettings({
  stripeSecretKey: setting.secret({
    env: 'PAYMENTS_STRIPE_SECRET_KEY',
    description:
      'Stripe secret API key (sk_test_… or sk_live_…); required when the stripe provider is enabled',
  }),
  stripeWebhookSecrets: setting.list({
    env: 'PAYMENTS_STRIPE_WEBHOOK_SECRETS',
    description:
      'Stripe webhook endpoint signing secrets (whsec_…), comma-separated: the new and the old one while rotating',
    secret: true,
  }),
  stripeApiUrl: setting.url({
    env: 'PAYMENTS_STRIPE_API_URL',
    description: "Stripe's API address; a local fake (socle/testing startFakeStripe) for tests and demos",
    protocols: ['http:', 'https:'],
  }),
  btcpayUrl: setting.url({
    env: 'PAYMENTS_BTCPAY_URL',
    description:
      'Your BTCPay Server (https://btcpay.example.com); required when the btcpay provider is enabled',
    protocols: ['http:', 'https:'],
  }),
  btcpayApiKey: setting.secret({
    env: 'PAYMENTS_BTCPAY_API_KEY',
    description: 'BTCPay Greenfield API key with btcpay.store.canmodifyinvoices and canviewinvoices',
  }),
  btcpayStoreId: setting.optionalString({ env: 'PAYMENTS_BTCPAY_STORE_ID', description: 'BTCPay store id' }),
  btcpayWebhookSecret: setting.secret({
    env: 'PAYMENTS_BTCPAY_WEBHOOK_SECRET',
    description: 'Secret of the BTCPay webhook (BTCPay-Sig HMAC) pointing at /payments/webhooks/btcpay',
  }),
  swissBitcoinPayUrl: setting.url({
    env: 'PAYMENTS_SWISS_BITCOIN_PAY_URL',
    description: "Swiss Bitcoin Pay's API address (a local fake in tests and demos)",
    protocols: ['http:', 'https:'],
  }),
  swissBitcoinPayApiKey: setting.secret({
    env: 'PAYMENTS_SWISS_BITCOIN_PAY_API_KEY',
    description: 'Swiss Bitcoin Pay API key; required when the swiss-bitcoin-pay provider is enabled',
  }),
  swissBitcoinPayWebhookSecret: setting.secret({
    env: 'PAYMENTS_SWISS_BITCOIN_PAY_WEBHOOK_SECRET',
    description:
      'Secret Swiss Bitcoin Pay sends back with each webhook (X-Webhook-Secret header or ?secret=)',
    minLength: 16,
  }),
  publicUrl: setting.url({
    env: 'PAYMENTS_PUBLIC_URL',
    description: 'Public address of this server, for webhook URLs given to processors with each invoice',
    protocols: ['http:', 'https:'],
  }),
  appleBundleId: setting.optionalString({
    env: 'PAYMENTS_APPLE_BUNDLE_ID',
    description: "The app's bundle id; required when the apple provider (in-app purchases) is enabled",
  }),
  appleEnvironment: setting.oneOf({
    env: 'PAYMENTS_APPLE_ENVIRONMENT',
    description: 'App Store environment of the signed transactions accepted (Sandbox for TestFlight)',
    values: ['Production', 'Sandbox'],
    default: 'Production',
  }),
  appleAppId: setting.integer({
    env: 'PAYMENTS_APPLE_APP_ID',
    description: "The app's Apple id (App Store Connect); required in Production, 0 when unset",
    default: 0,
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
  }),
  appleRootCertificates: setting.list({
    env: 'PAYMENTS_APPLE_ROOT_CERTIFICATES',
    description:
      'Trusted roots of App Store signatures, base64 DER, comma-separated (base64 -w0 AppleRootCA-G3.cer)',
  }),
  appleOnlineChecks: setting.boolean({
    env: 'PAYMENTS_APPLE_ONLINE_CHECKS',
    description:
      'OCSP revocation checks of the signing chain, validity at the current date (off only for test chains)',
    default: true,
  }),
  googlePlayPackageName: setting.optionalString({
    env: 'PAYMENTS_GOOGLE_PLAY_PACKAGE_NAME',
    description: "The app's package name; required when the google-play provider is enabled",
  }),
  googlePlayServiceAccount: setting.secret({
    env: 'PAYMENTS_GOOGLE_PLAY_SERVICE_ACCOUNT',
    description:
      'JSON key of a service account with access to the Play Console (client_email, private_key, token_uri)',
  }),
  googlePlayApiUrl: setting.url({
    env: 'PAYMENTS_GOOGLE_PLAY_API_URL',
    description: "The Android Publisher API's address (a local fake in tests and demos)",
    protocols: ['http:', 'https:'],
  }),
  googlePlayNotificationSecret: setting.secret({
    env: 'PAYMENTS_GOOGLE_PLAY_NOTIFICATION_SECRET',
    description:
      'Secret of the Pub/Sub push URL of Real-time developer notifications (/payments/webhooks/google-play?secret=…); checked when set',
    minLength: 16,
  }),
  googlePlayPushServiceAccount: setting.optionalString({
    env: 'PAYMENTS_GOOGLE_PLAY_PUSH_SERVICE_ACCOUNT',
    description:
      "Email of the service account of the RTDN Pub/Sub push subscription's authentication: each push must carry Google's OIDC token of it (401 otherwise)",
  }),
  googlePlayPushAudience: setting.optionalString({
    env: 'PAYMENTS_GOOGLE_PLAY_PUSH_AUDIENCE',
    description:
      "The audience of the push subscription's OIDC tokens (default: PUBLIC_URL + /payments/webhooks/google-play)",
  }),
  googlePlayPushCertsUrl: setting.url({
    env: 'PAYMENTS_GOOGLE_PLAY_PUSH_CERTS_URL',
    description: "Google's OIDC signing keys (JWKS); a local fake in tests and demos",
    protocols: ['http:', 'https:'],
  }),
  webhookToleranceSeconds: setting.integer({
    env: 'PAYMENTS_WEBHOOK_TOLERANCE_SECONDS',
    description: 'Age past which a signed webhook timestamp is refused (replayed captures)',
    default: 300,
    min: 1,
    max: 86_400,
  }),
  eventTransactionsMax: setting.integer({
    env: 'PAYMENTS_EVENT_TRANSACTIONS_MAX',
    description:
      "Provider events' transactions in flight at once, all organizations together; past it a burst waits where an organization's events go together in one transaction. 0: half of DATABASE_POOL_MAX",
    default: 0,
    min: 0,
    max: 1000,
  }),
  backfillHours: setting.integer({
    env: 'PAYMENTS_BACKFILL_HOURS',
    description: 'How far back the backfill job re-reads provider events to recover missed webhooks',
    default: 24,
    min: 1,
    max: 720,
  }),
});

export type PaymentsSettings = SettingValues<typeof paymentsSettings>;

/** The payments module's definition; its public API is {@link PaymentsServices}. */
export type PaymentsModule = ModuleDefinition<PaymentsTables, PaymentsServices, PaymentsSettings>;

export interface PaymentsOptions {
  /**
   * `'stripe'`, `'btcpay'`, `'swiss-bitcoin-pay'` (configured by the PAYMENTS_* settings), or an
   * adapter of the app's.
   */
  readonly providers: readonly (
    | 'stripe'
    | 'btcpay'
    | 'swiss-bitcoin-pay'
    | 'apple'
    | 'google-play'
    | PaymentProvider
  )[];
  /** What is on sale: `defineCatalog([...])`. */
  readonly catalog: Catalog;
  /**
   * The policies of the built-in providers' outbound clients, over payments' defaults (10 s per
   * attempt and 30 s in all for Stripe, 5 s and 15 s for the others; 3 attempts; the default
   * breaker; no rate limit). Stripe allows 100 requests a second in live mode and 25 in test mode:
   * `{ stripe: { rateLimit: { limit: 100, windowMs: 1_000 } } }` shares that across the nodes.
   */
  readonly policies?: Partial<Record<BuiltInPaymentProvider, PaymentProviderPolicies>>;
}

/** The providers payments declares itself (configured by the PAYMENTS_* settings). */
export type BuiltInPaymentProvider = 'stripe' | 'btcpay' | 'swiss-bitcoin-pay' | 'google-play';

/** How calls to a built-in provider behave: the policy options of its outbound declaration. */
export type PaymentProviderPolicies = Pick<
  ProviderOptions,
  'timeoutMs' | 'retry' | 'breaker' | 'rateLimit' | 'concurrency'
>;

/** The fields payments reads of a service account's JSON key. */
function readServiceAccount(json: string): { client_email: string; private_key: string; token_uri?: string } {
  let key: { client_email?: unknown; private_key?: unknown; token_uri?: unknown };
  try {
    key = JSON.parse(json);
  } catch {
    throw paymentsErrors.notConfigured('google-play', 'PAYMENTS_GOOGLE_PLAY_SERVICE_ACCOUNT (a JSON key)');
  }
  if (typeof key.client_email !== 'string' || typeof key.private_key !== 'string')
    throw paymentsErrors.notConfigured(
      'google-play',
      'PAYMENTS_GOOGLE_PLAY_SERVICE_ACCOUNT with client_email and private_key',
    );
  return {
    client_email: key.client_email,
    private_key: key.private_key,
    ...(typeof key.token_uri === 'string' ? { token_uri: key.token_uri } : {}),
  };
}

/**
 * Pub/Sub push authentication of Real-time developer notifications, when its service account is
 * set; without it the push URL's secret must be (one of the two proves the sender).
 */
function googlePlayPush(settings: {
  readonly googlePlayPushServiceAccount?: string | undefined;
  readonly googlePlayPushAudience?: string | undefined;
  readonly googlePlayPushCertsUrl?: string | undefined;
  readonly googlePlayNotificationSecret?: string | undefined;
  readonly publicUrl?: string | undefined;
}) {
  const serviceAccountEmail = settings.googlePlayPushServiceAccount;
  if (serviceAccountEmail === undefined) {
    if (settings.googlePlayNotificationSecret === undefined)
      throw paymentsErrors.notConfigured(
        'google-play',
        'PAYMENTS_GOOGLE_PLAY_PUSH_SERVICE_ACCOUNT (Pub/Sub push authentication) or PAYMENTS_GOOGLE_PLAY_NOTIFICATION_SECRET',
      );
    return undefined;
  }
  const audience =
    settings.googlePlayPushAudience ??
    (settings.publicUrl === undefined
      ? undefined
      : new URL(
          'payments/webhooks/google-play',
          settings.publicUrl.endsWith('/') ? settings.publicUrl : `${settings.publicUrl}/`,
        ).href);
  if (audience === undefined)
    throw paymentsErrors.notConfigured('google-play', 'PAYMENTS_GOOGLE_PLAY_PUSH_AUDIENCE (or PUBLIC_URL)');
  return {
    serviceAccountEmail,
    audience,
    certsUrl: settings.googlePlayPushCertsUrl ?? 'https://www.googleapis.com/oauth2/v3/certs',
  };
}

/** Every ten minutes: events of the last `backfillHours` applied again (duplicates are no-ops). */
const BACKFILL_CRON = '*/10 * * * *';

/**
 * Payments: checkouts (packs and subscriptions) and invoices at a provider, whose webhooks are
 * verified on the raw body, stored by event id and applied to the ledger in the same transaction,
 * exactly once; the buyer is told on their private channel. See docs/payments.md.
 *
 * Opt-in, with the ledger: `modules: [...createBuiltInModules(), createLedgerModule(), createPaymentsModule({...})]`.
 *
 * @example
 * const paymentsModule = createPaymentsModule({
 *   providers: ['stripe'],
 *   catalog: defineCatalog([{ id: 'coins-500', kind: 'pack', name: '500 coins', price: 499,
 *     currency: 'EUR', credits: 500, unit: 'coins' }]),
 * });
 */
export function createPaymentsModule(options: PaymentsOptions): PaymentsModule {
  return defineModule({
    name: 'payments',
    dependsOn: ['identity', 'tenancy', 'ledger', 'realtime', 'outbound'],
    migrations: new URL('./migrations/', import.meta.url),
    settings: paymentsSettings,
    globalTables: {
      provider_references:
        'Maps provider object ids to the organization and payment they belong to: webhooks arrive without an organization. Ids only',
    },
    setup(context: SetupContext<PaymentsTables, PaymentsSettings>): PaymentsServices {
      const { settings } = context;
      const { outbound } = context.servicesOf<OutboundServices>('outbound');
      const required = <T>(value: T | undefined, provider: string, variable: string): T => {
        if (value === undefined) throw paymentsErrors.notConfigured(provider, variable);
        return value;
      };
      const providers = options.providers.map((provider): PaymentProvider => {
        if (provider === 'stripe')
          return createStripeProvider({
            secretKey: required(settings.stripeSecretKey, 'stripe', 'PAYMENTS_STRIPE_SECRET_KEY'),
            webhookSecrets: settings.stripeWebhookSecrets,
            toleranceSeconds: settings.webhookToleranceSeconds,
            client: outbound.client(
              defineProvider('stripe', {
                baseUrl: settings.stripeApiUrl ?? 'https://api.stripe.com',
                timeoutMs: { attemptMs: 10_000, totalMs: 30_000 },
                ...options.policies?.stripe,
              }),
            ),
          });
        if (provider === 'btcpay')
          return createBtcpayProvider({
            client: outbound.client(
              defineProvider('btcpay', {
                baseUrl: required(settings.btcpayUrl, 'btcpay', 'PAYMENTS_BTCPAY_URL'),
                auth: {
                  type: 'header',
                  name: 'authorization',
                  value: `token ${required(settings.btcpayApiKey, 'btcpay', 'PAYMENTS_BTCPAY_API_KEY')}`,
                },
                timeoutMs: { attemptMs: 5_000, totalMs: 15_000 },
                ...options.policies?.btcpay,
              }),
            ),
            storeId: required(settings.btcpayStoreId, 'btcpay', 'PAYMENTS_BTCPAY_STORE_ID'),
            webhookSecret: required(settings.btcpayWebhookSecret, 'btcpay', 'PAYMENTS_BTCPAY_WEBHOOK_SECRET'),
          });
        if (provider === 'swiss-bitcoin-pay') {
          const webhookSecret = required(
            settings.swissBitcoinPayWebhookSecret,
            'swiss-bitcoin-pay',
            'PAYMENTS_SWISS_BITCOIN_PAY_WEBHOOK_SECRET',
          );
          return createSwissBitcoinPayProvider({
            client: outbound.client(
              defineProvider('swiss-bitcoin-pay', {
                baseUrl: settings.swissBitcoinPayUrl ?? 'https://api.swiss-bitcoin-pay.ch',
                auth: {
                  type: 'header',
                  name: 'api-key',
                  value: required(
                    settings.swissBitcoinPayApiKey,
                    'swiss-bitcoin-pay',
                    'PAYMENTS_SWISS_BITCOIN_PAY_API_KEY',
                  ),
                },
                timeoutMs: { attemptMs: 5_000, totalMs: 15_000 },
                ...options.policies?.['swiss-bitcoin-pay'],
              }),
            ),
            webhookSecret,
            webhookUrl:
              settings.publicUrl === undefined
                ? undefined
                : new URL(
                    'payments/webhooks/swiss-bitcoin-pay',
                    settings.publicUrl.endsWith('/') ? settings.publicUrl : `${settings.publicUrl}/`,
                  ).href,
          });
        }
        if (provider === 'apple') {
          const roots = settings.appleRootCertificates.map((value) => Buffer.from(value, 'base64'));
          if (roots.length === 0)
            throw paymentsErrors.notConfigured('apple', 'PAYMENTS_APPLE_ROOT_CERTIFICATES');
          return createAppleProvider({
            bundleId: required(settings.appleBundleId, 'apple', 'PAYMENTS_APPLE_BUNDLE_ID'),
            environment: settings.appleEnvironment === 'Sandbox' ? 'Sandbox' : 'Production',
            appAppleId: settings.appleAppId === 0 ? undefined : settings.appleAppId,
            rootCertificates: roots,
            onlineChecks: settings.appleOnlineChecks,
          });
        }
        if (provider === 'google-play') {
          const key = readServiceAccount(
            required(
              settings.googlePlayServiceAccount,
              'google-play',
              'PAYMENTS_GOOGLE_PLAY_SERVICE_ACCOUNT',
            ),
          );
          return createGooglePlayProvider({
            client: outbound.client(
              defineProvider('google-play', {
                baseUrl: settings.googlePlayApiUrl ?? 'https://androidpublisher.googleapis.com',
                auth: {
                  type: 'service-account',
                  tokenUrl: key.token_uri ?? 'https://oauth2.googleapis.com/token',
                  clientEmail: key.client_email,
                  privateKey: key.private_key,
                  scope: 'https://www.googleapis.com/auth/androidpublisher',
                },
                timeoutMs: { attemptMs: 5_000, totalMs: 15_000 },
                ...options.policies?.['google-play'],
              }),
            ),
            packageName: required(
              settings.googlePlayPackageName,
              'google-play',
              'PAYMENTS_GOOGLE_PLAY_PACKAGE_NAME',
            ),
            notificationSecret: settings.googlePlayNotificationSecret,
            push: googlePlayPush(settings),
          });
        }
        return provider;
      });
      const payments = createPaymentsService({
        db: context.db,
        ledger: context.servicesOf<LedgerServices>('ledger').ledger,
        realtime: context.servicesOf<Realtime>('realtime'),
        catalog: options.catalog,
        providers,
        clock: context.clock,
        log: context.log,
        scope: context.scope,
        backfillHours: settings.backfillHours,
        metrics: context.metrics,
        // About half the request pool: the other half stays for the requests around the webhooks.
        eventTransactionsMax:
          settings.eventTransactionsMax === 0
            ? Math.max(1, Math.floor(context.config.databasePoolMax / 2))
            : settings.eventTransactionsMax,
        eventsApplied: context.metrics.counter({
          name: 'socle_payments_events_total',
          help: 'Provider events received, by provider and outcome (duplicate: already applied; failed: rolled back, kept for the payments page)',
          labelNames: ['provider', 'outcome'],
        }),
      });
      return {
        payments,
        events: createPaymentEventsService({
          db: context.db,
          receiveEvent: (provider, event) => payments.receiveEvent(provider, event),
        }),
      };
    },
    routes(app, { services }) {
      registerPaymentsRoutes(app, services.payments);
      registerPaymentEventRoutes(app, services.events);
    },
    jobs: {
      backfill: defineJob<Record<string, never>, PaymentsServices>({
        cron: BACKFILL_CRON,
        maxAttempts: 1,
        async handler(_job, { payments }) {
          await payments.backfill();
        },
      }),
    },
    privacy: ({ db }) => createPaymentsPrivacy(db),
  });
}
