import { randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import {
  createFilesModule,
  createIdentityModule,
  createLedgerModule,
  createMailModule,
  createOutboundModule,
  createPaymentsModule,
  createRealtimeModule,
  createTenancyModule,
  type Realtime,
} from 'socle';
import {
  createTestSocle,
  type FakeAppStore,
  type FakeStripe,
  type TestDatabaseTarget,
  type TestSocle,
  type TestUser,
} from 'socle/testing';
import {
  type BuzzerServices,
  type BuzzerSettings,
  coinPacks,
  createStrategyBuzzerModule,
} from '../src/index.js';

/** A realtime app configured like REALTIME_APP_ID/KEY/SECRET, unique per test file. */
export function realtimeApp() {
  const unique = randomBytes(6).toString('hex');
  return { appId: `sb-${unique}`, appKey: `sb-key-${unique}`, appSecret: `sb-secret-${unique}` };
}

/** A clock of monotonic milliseconds the test moves by hand. */
export function manualMonotonic(start = 1_000_000) {
  let value = start;
  return {
    now: () => value,
    advance(ms: number) {
      value += ms;
    },
  };
}

export interface BuzzerWorld {
  readonly socle: TestSocle;
  readonly services: BuzzerServices;
  readonly realtime: Realtime;
  readonly app: ReturnType<typeof realtimeApp>;
  readonly admin: TestUser & { orgId: string };
}

/** A Socle with the app and the modules it needs, its admin claiming it, questions imported. */
export async function startBuzzerWorld(
  target: TestDatabaseTarget,
  options: {
    settings?: Partial<BuzzerSettings>;
    now?: () => number;
    timers?: boolean;
    questions?: number;
    /**
     * Another node on the first one's database and realtime app (set up already): of a fleet with
     * `redisUrl`, else a process alone on it (embedded bus), as after a restart.
     */
    node?: { of: BuzzerWorld; redisUrl?: string };
    /** The first node of a fleet: Redis for its bus. */
    redisUrl?: string;
    /** The fake Stripe payments talk to (default: none reachable; checkouts fail). */
    stripe?: FakeStripe;
    /** A fake App Store whose signed purchases payments verifies (enables the 'apple' provider). */
    appStore?: FakeAppStore;
  } = {},
): Promise<BuzzerWorld> {
  const first = options.node?.of;
  const app = first?.app ?? realtimeApp();
  const redisUrl = options.node?.redisUrl ?? options.redisUrl;
  const realtimeModule = createRealtimeModule();
  const buzzer = createStrategyBuzzerModule({
    ...(options.now === undefined ? {} : { now: options.now }),
    timers: options.timers ?? false,
  });
  const socle = await createTestSocle(target, {
    modules: [
      createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
      createMailModule(),
      createTenancyModule(),
      realtimeModule,
      createOutboundModule(),
      createFilesModule(),
      createLedgerModule(),
      createPaymentsModule({
        providers: options.appStore === undefined ? ['stripe'] : ['stripe', 'apple'],
        catalog: coinPacks,
      }),
      buzzer,
    ],
    settings: {
      realtime: app,
      strategybuzzer: { ...options.settings },
      payments: {
        stripeSecretKey: options.stripe?.secretKey ?? 'sk_test_unused',
        stripeWebhookSecrets: [options.stripe?.webhookSecret ?? 'whsec_unused'],
        stripeApiUrl: options.stripe?.url ?? 'http://127.0.0.1:9',
        ...(options.appStore === undefined
          ? {}
          : {
              appleBundleId: options.appStore.bundleId,
              appleEnvironment: 'Sandbox',
              appleRootCertificates: [options.appStore.rootCertificate],
              appleOnlineChecks: false,
            }),
      },
    },
    ...(redisUrl === undefined ? {} : { config: { redisUrl, redisNamespace: app.appId } }),
    ...(first === undefined ? {} : { database: first.socle.database }),
  });
  if (first !== undefined)
    return {
      socle,
      services: socle.servicesOf(buzzer),
      realtime: socle.servicesOf(realtimeModule),
      app,
      admin: first.admin,
    };
  const tenant = await socle.newTenant();
  const admin = { ...tenant.owner, orgId: tenant.id };
  const claimed = await socle.app.inject({
    method: 'POST',
    url: '/strategybuzzer/admin/claim',
    headers: { authorization: `Bearer ${admin.token}`, 'x-org-id': admin.orgId },
  });
  if (claimed.statusCode !== 200) throw new Error(`claim: ${claimed.body}`);
  const count = options.questions ?? 20;
  const imported = await socle.app.inject({
    method: 'POST',
    url: '/strategybuzzer/admin/questions',
    headers: { authorization: `Bearer ${admin.token}`, 'x-org-id': admin.orgId },
    // The right choice is always the first: scripted players answer 0.
    payload: Array.from({ length: count }, (_, n) => ({
      language: 'fr',
      prompt: `Question ${n + 1} ?`,
      choices: ['right', 'wrong A', 'wrong B', 'wrong C'],
      answer: 0,
      level: 1 + (n % 3),
    })),
  });
  if (imported.statusCode !== 200) throw new Error(`import: ${imported.body}`);
  return {
    socle,
    services: socle.servicesOf(buzzer),
    realtime: socle.servicesOf(realtimeModule),
    app,
    admin,
  };
}

/** An HTTP call as `user` (JSON). */
export function caller(socle: TestSocle) {
  return (
    user: Pick<TestUser, 'token'>,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    payload?: unknown,
    headers: Record<string, string> = {},
  ) =>
    socle.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${user.token}`, ...headers },
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
}

/** Signs a new player up in the web client at `baseUrl` and names them (the lobby shown). */
export async function signUpInBrowser(page: Page, baseUrl: string, name: string): Promise<void> {
  await page.goto(`${baseUrl}/apps/strategybuzzer/`);
  await page.fill(
    '#email',
    `${name.toLowerCase()}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`,
  );
  await page.fill('#password', 'correct horse battery staple');
  await page.click('#sign-up');
  await page.locator('#lobby').waitFor();
  await page.fill('#name', name);
}
