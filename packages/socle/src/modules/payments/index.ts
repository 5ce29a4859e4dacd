/** The payments module: providers, catalog, checkouts and invoices, webhooks applied to the ledger once. */

export { type AppleProviderOptions, createAppleProvider } from './apple-provider.js';
export {
  type Catalog,
  defineCatalog,
  type PackProduct,
  type Product,
  type SubscriptionProduct,
} from './catalog.js';
export { createGooglePlayProvider, type GooglePlayProviderOptions } from './google-play-provider.js';
export { paymentsErrors } from './payments.errors.js';
export {
  type BuiltInPaymentProvider,
  createPaymentsModule,
  type PaymentProviderPolicies,
  type PaymentsModule,
  type PaymentsOptions,
  type PaymentsServices,
  type PaymentsSettings,
  paymentsSettings,
} from './payments.module.js';
export type {
  Payment,
  PaymentEventName,
  PaymentHandler,
  PaymentsService,
  ReceivedEvent,
  Subscription,
} from './payments.service.js';
export type { PaymentsTables } from './payments.tables.js';
export type {
  CheckoutCreated,
  CheckoutRequest,
  InvoiceCreated,
  InvoiceRequest,
  PaymentChange,
  PaymentProvider,
  StorePurchase,
  StorePurchaseProof,
  VerifiedEvent,
  WebhookHeaders,
} from './provider.js';
export {
  createStripeProvider,
  readStripeEvent,
  STRIPE_METADATA,
  type StripeProviderOptions,
} from './stripe-provider.js';
