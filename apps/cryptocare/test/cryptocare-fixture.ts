import {
  createIdentityModule,
  createLedgerModule,
  createMailModule,
  createManualClock,
  createOutboundModule,
  createPaymentsModule,
  createPrivacyModule,
  createRealtimeModule,
  createTenancyModule,
  defineCatalog,
} from 'socle';
import {
  createTestSocle,
  startFakeBtcpay,
  type TestDatabaseTarget,
  type TestSocle,
  type TestTenant,
  type TestUser,
} from 'socle/testing';
import { expect } from 'vitest';
import { type CryptoCareOptions, createCryptoCareModule } from '../src/index.js';

/**
 * A Socle with CryptoCare and the payments module (a local fake BTCPay Server behind it) on a
 * fresh database, and helpers to build practices and professionals.
 */
export async function startCryptoCare(
  target: TestDatabaseTarget,
  options: {
    now: Date;
    settings?: Record<string, unknown>;
    cryptocare?: CryptoCareOptions;
    poolMax?: number;
  },
) {
  const clock = createManualClock(options.now);
  const module = createCryptoCareModule(options.cryptocare);
  const btcpay = await startFakeBtcpay();
  const socle: TestSocle = await createTestSocle(target, {
    clock,
    // A burst of requests waits for the pool's connections longer than the default 5 s on a
    // shared 2-core machine: the races here are about what is written, not how fast.
    config: {
      jobsQueues: [],
      databaseConnectTimeoutMs: 60_000,
      ...(options.poolMax ? { databasePoolMax: options.poolMax } : {}),
    },
    modules: [
      createIdentityModule({ rateLimits: false }),
      createMailModule(),
      createTenancyModule(),
      createPrivacyModule(),
      createRealtimeModule(),
      createOutboundModule(),
      createLedgerModule(),
      createPaymentsModule({ providers: ['btcpay'], catalog: defineCatalog([]) }),
      module,
    ],
    settings: {
      cryptocare: { ...options.settings },
      payments: {
        btcpayUrl: btcpay.url,
        btcpayApiKey: btcpay.apiKey,
        btcpayStoreId: btcpay.storeId,
        btcpayWebhookSecret: btcpay.webhookSecret,
      },
      realtime: { appId: 'cryptocare-app', appKey: 'cryptocare-key', appSecret: 'cryptocare-secret' },
    },
  });

  // Access tokens live 15 minutes on the manual clock: a caller whose token is older gets a new one.
  const tokens = new Map<string, { token: string; at: number }>();
  async function tokenOf(caller: Pick<TestUser, 'token' | 'email'>) {
    const known = tokens.get(caller.email) ?? { token: caller.token, at: options.now.getTime() };
    if (clock.now().getTime() - known.at > 10 * 60_000) {
      known.token = await socle.newAccessToken(caller);
      known.at = clock.now().getTime();
    }
    tokens.set(caller.email, known);
    return known.token;
  }

  const call = async (
    caller: Pick<TestUser, 'token' | 'email'>,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    extra: { orgId?: string; payload?: object } = {},
  ) =>
    socle.app.inject({
      method,
      url,
      ...(extra.payload === undefined ? {} : { payload: extra.payload }),
      headers: {
        authorization: `Bearer ${await tokenOf(caller)}`,
        ...(extra.orgId === undefined ? {} : { 'x-org-id': extra.orgId }),
      },
    });

  /** A practice at a point, with one professional working there on the given weekly hours. */
  async function newPractice(place: {
    latitude: number;
    longitude: number;
    specialties?: string[];
    languages?: string[];
    priceChfCents?: number;
    slotMinutes?: number;
    bufferMinutes?: number;
    hours?: { weekday: number; opens: string; closes: string }[];
  }) {
    const tenant: TestTenant = await socle.newTenant();
    const practice = await call(tenant.owner, 'PUT', '/cryptocare/practice', {
      orgId: tenant.id,
      payload: {
        name: `Practice ${tenant.id.slice(0, 4)}`,
        address: 'Bahnhofstrasse 1',
        latitude: place.latitude,
        longitude: place.longitude,
      },
    });
    expect(practice.statusCode, practice.body).toBe(200);
    const user = await socle.newMember(tenant);
    const created = await call(user, 'POST', '/cryptocare/professionals', {
      payload: {
        displayName: `Dr ${user.userId.slice(0, 4)}`,
        specialties: place.specialties ?? ['general'],
        languages: place.languages ?? ['de', 'fr'],
        priceChfCents: place.priceChfCents ?? 12_000,
        slotMinutes: place.slotMinutes ?? 60,
        bufferMinutes: place.bufferMinutes ?? 0,
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(
      (await call(user, 'POST', '/cryptocare/practice/professionals', { orgId: tenant.id })).statusCode,
    ).toBe(200);
    const hours =
      place.hours ?? [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({ weekday, opens: '08:00', closes: '10:00' }));
    const set = await call(user, 'PUT', '/cryptocare/professionals/me/hours', { payload: { hours } });
    expect(set.statusCode, set.body).toBe(204);
    return { tenant, professional: user, professionalId: created.json().id as string };
  }

  /** BTCPay's webhook about the invoice, through the real endpoint (a new delivery id each time). */
  async function btcpayWebhook(invoiceReference: string, type: string) {
    const { body, headers } = btcpay.sign(invoiceReference, type, { redelivery: true });
    return socle.app.inject({ method: 'POST', url: '/payments/webhooks/btcpay', payload: body, headers });
  }

  return {
    socle,
    clock,
    module,
    call,
    newPractice,
    btcpay,
    btcpayWebhook,
    services: () => socle.servicesOf(module),
    async dispose() {
      await socle.dispose();
      await btcpay.close();
    },
  };
}
