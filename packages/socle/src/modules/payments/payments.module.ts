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
import { defineProvider, type OutboundServices } from '../outbound/index.js';
import type { Realtime } from '../realtime/index.js';
import { createBtcpayProvider } from './btcpay-provider.js';
import type { Catalog } from './catalog.js';
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
  webhookToleranceSeconds: setting.integer({
    env: 'PAYMENTS_WEBHOOK_TOLERANCE_SECONDS',
    description: 'Age past which a signed webhook timestamp is refused (replayed captures)',
    default: 300,
    min: 1,
    max: 86_400,
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
  readonly providers: readonly ('stripe' | 'btcpay' | 'swiss-bitcoin-pay' | PaymentProvider)[];
  /** What is on sale: `defineCatalog([...])`. */
  readonly catalog: Catalog;
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
            apiUrl: settings.stripeApiUrl,
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
        return provider;
      });
      return {
        payments: createPaymentsService({
          db: context.db,
          ledger: context.servicesOf<LedgerServices>('ledger').ledger,
          realtime: context.servicesOf<Realtime>('realtime'),
          catalog: options.catalog,
          providers,
          clock: context.clock,
          log: context.log,
          scope: context.scope,
          backfillHours: settings.backfillHours,
          eventsApplied: context.metrics.counter({
            name: 'socle_payments_events_total',
            help: 'Provider events received, by provider and outcome (duplicate: already applied)',
            labelNames: ['provider', 'outcome'],
          }),
        }),
      };
    },
    routes(app, { services }) {
      registerPaymentsRoutes(app, services.payments);
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
