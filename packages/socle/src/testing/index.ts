/** Test helpers for Socle modules and apps: fresh databases per dialect, a Socle per test. */

export { type DatabaseCpu, openDatabaseCpu, processCpuSeconds } from '../cli/process-cpu.js';
export { CHROMIUM_PATH, chromiumAvailable, launchBrowser, type WatchedPage, watchPage } from './browser.js';
export {
  exampleFor,
  type ProbeCaller,
  type ProbeFinding,
  probeCrossTenantAccess,
} from './cross-tenant-probe.js';
export { createFakeAppStore, type FakeAppStore, type FakeAppStoreTransaction } from './fake-app-store.js';
export {
  FAKE_BTC_RATE,
  type FakeBtcpay,
  type FakeBtcpayInvoice,
  type FakeSwissBitcoinPay,
  type FakeSwissCheckout,
  startFakeBtcpay,
  startFakeSwissBitcoinPay,
} from './fake-bitcoin.js';
export {
  type FakeGooglePlay,
  type FakePlayPurchase,
  type FakePlaySubscription,
  PLAY_SUBSCRIPTION_NOTIFICATIONS,
  startFakeGooglePlay,
} from './fake-google-play.js';
export {
  type FakeOpenAi,
  type ReceivedFile,
  type ReceivedMultipart,
  readMultipartStreaming,
  startFakeOpenAi,
} from './fake-openai.js';
export {
  type FakePrediction,
  type FakeReplicate,
  type FakeWebhookDelivery,
  startFakeReplicate,
} from './fake-replicate.js';
export {
  type FakeStripe,
  type FakeStripeOptions,
  type StripeDeliveryOptions,
  type StripeEvent,
  type StripeObject,
  startFakeStripe,
} from './fake-stripe.js';
export { type FakeZoom, type FakeZoomMeeting, startFakeZoom } from './fake-zoom.js';
export {
  type FaultyProvider,
  type ProviderFault,
  type ProviderHandler,
  type ReceivedRequest,
  startFaultyProvider,
} from './faulty-provider.js';
export {
  type FuzzCredential,
  type FuzzFinding,
  type FuzzOptions,
  type FuzzPreparation,
  type FuzzReport,
  fuzzEveryOperation,
} from './fuzz-gate.js';
export {
  canRunPrivateClusters,
  createStreamingPair,
  POSTGRES_BIN,
  type StreamingPair,
} from './streaming-replica.js';
export { findTenantIsolationProblems, type IsolationProblem } from './tenant-isolation-check.js';
export {
  createTestPgliteDatabase,
  createTestPostgresDatabase,
  postgresRequirement,
  preparePgliteTemplate,
  type TestDatabase,
  type TestDatabaseTarget,
  testDatabaseTargets,
  testPostgresAdminUrl,
} from './test-databases.js';
export {
  createTestAccounts,
  createTestFactory,
  TEST_PASSWORD,
  type TestApiKey,
  type TestFactory,
  type TestMemberRole,
  type TestTenant,
  type TestUser,
} from './test-factory.js';
export { createTestSocle, TEST_SECRET_KEY, type TestSocle, type TestSocleOptions } from './test-socle.js';
