import { afterAll, beforeAll } from 'vitest';
import { type Catalog, createLedgerModule, createPaymentsModule, tenantSettings } from '../../src/index.js';
import { createIdentityModule } from '../../src/modules/identity/index.js';
import { createMailModule } from '../../src/modules/mail/index.js';
import { createOutboundModule } from '../../src/modules/outbound/index.js';
import { createRealtimeModule } from '../../src/modules/realtime/index.js';
import { createTenancyModule } from '../../src/modules/tenancy/index.js';
import {
  createFakeAppStore,
  createTestSocle,
  type FakeAppStore,
  type FakeGooglePlay,
  startFakeGooglePlay,
  type TestDatabaseTarget,
  type TestSocle,
  type TestTenant,
  type TestUser,
} from '../../src/testing/index.js';
import { callAs } from './api-client.js';

/** A server selling `catalog` in both app stores (their fakes), listening, for one test file. */
export interface StorePaymentsServer {
  readonly socle: TestSocle;
  readonly store: FakeAppStore;
  readonly play: FakeGooglePlay;
  /** The server's address (the stores' notifications are real HTTP requests). */
  readonly baseUrl: string;
  /** `POST /payments/purchases/{provider}` as `user` in `tenant`. */
  claim(tenant: TestTenant, user: TestUser, provider: string, payload: object): ReturnType<typeof callAs>;
  /** The person's posted balance in `unit` (0 without a wallet). */
  balance(tenant: TestTenant, userId: string, unit: string): Promise<bigint>;
  /** The person's posted balance in `unit` outside organizations (the ledger's platform book). */
  platformBalance(userId: string, unit: string): Promise<bigint>;
}

/**
 * Starts, before the file's tests, a Socle with identity, tenancy, outbound, realtime, ledger and
 * payments on `apple` and `google-play`, both pointed at fakes; `googlePlay` adds the settings of
 * Play's RTDN authentication (a URL secret, or Pub/Sub push authentication with `play`'s keys).
 */
export function useStorePaymentsServer(
  target: TestDatabaseTarget,
  catalog: Catalog,
  googlePlay: (play: FakeGooglePlay) => Record<string, unknown>,
): StorePaymentsServer {
  const ledgerModule = createLedgerModule();
  const paymentsModule = createPaymentsModule({ providers: ['apple', 'google-play'], catalog });
  const started = {} as { -readonly [K in keyof StorePaymentsServer]: StorePaymentsServer[K] };

  beforeAll(async () => {
    const store = createFakeAppStore({ bundleId: 'com.example.socle', environment: 'Sandbox' });
    const play = await startFakeGooglePlay({ packageName: 'com.example.socle' });
    Object.assign(started, { store, play });
    const socle = await createTestSocle(target, {
      settings: {
        payments: {
          appleBundleId: store.bundleId,
          appleEnvironment: 'Sandbox',
          appleRootCertificates: [store.rootCertificate],
          appleOnlineChecks: false,
          googlePlayPackageName: play.packageName,
          googlePlayServiceAccount: play.serviceAccount,
          googlePlayApiUrl: play.url,
          ...googlePlay(play),
        },
      },
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createOutboundModule(),
        createRealtimeModule(),
        ledgerModule,
        paymentsModule,
      ],
    });
    started.socle = socle;
    started.baseUrl = await socle.listen();
  });
  afterAll(async () => {
    await started.socle?.dispose();
    await started.play?.close();
  });

  started.claim = (tenant, user, provider, payload) =>
    callAs(started.socle, user, 'POST', `/payments/purchases/${provider}`, { orgId: tenant.id, payload });
  started.balance = (tenant, userId, unit) =>
    started.socle.db.transaction(
      async (trx) => {
        const ledger = started.socle.servicesOf(ledgerModule).ledger;
        const [wallet] = (await ledger.accounts(trx, { ownerUserId: userId })).filter(
          (account) => account.unit === unit,
        );
        return wallet === undefined ? 0n : wallet.balance.posted;
      },
      { settings: tenantSettings({ tenantId: tenant.id }) },
    );
  started.platformBalance = async (userId, unit) => {
    const { rows } = await started.socle.db.withConnection(
      (connection) =>
        connection.query<{ balance: string | null }>(
          `select (credits_posted - debits_posted)::text as balance from ledger.accounts
            where tenant_id is null and owner_user_id = $1 and unit = $2 and code = 'wallet'`,
          [userId, unit],
        ),
      'owner',
    );
    return BigInt(rows[0]?.balance ?? 0);
  };
  return started;
}
