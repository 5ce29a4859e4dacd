/**
 * Child process: CryptoCare on Socle (identity, tenancy, mail, realtime, outbound, ledger,
 * payments with the fake BTCPay Server, the CryptoCare module) on the run's Postgres, with the fake
 * Zoom answering every call in 300 ms and the job workers on (Zoom links are made by jobs). At
 * the harness's request it seeds `PROFESSIONALS` practices, one professional each (open every day 08:00–18:00,
 * 30-minute slots), around Swiss cities, and `PATIENTS` patients, all through the app's own routes.
 * Bench routes: `POST /bench/cryptocare/seed` (seeds once; ids and access tokens for the load) and
 * `POST /bench/cryptocare/settlement { appointmentId }` (the processor settles the appointment's
 * invoice and answers the signed `InvoiceSettled` webhook, which the harness delivers itself).
 */
import { randomUUID } from 'node:crypto';
import {
  createIdentityModule,
  createLedgerModule,
  createOutboundModule,
  createPaymentsModule,
  createPrivacyModule,
  createRealtimeModule,
  createSocle,
  createTenancyModule,
  defineCatalog,
  defineModule,
  type HttpServer,
} from 'socle';
import { startFakeBtcpay, startFakeZoom } from 'socle/testing';
import { createCryptoCareModule } from 'socle-app-cryptocare';
import { runServerChild } from '../../server-child.js';
import { benchMailModule, benchSocleConfig, injectJson } from '../shared/socle-setup.js';
import {
  CITIES,
  CRYPTOCARE_APP,
  PATIENTS,
  PROFESSIONALS,
  type Seed,
  type SeededPatient,
  type SeededProfessional,
  SPECIALTIES,
} from './shared.js';

/** What the seed's fake Zoom takes to answer each call (the figure). */
const ZOOM_LATENCY_MS = 300;
const PASSWORD = 'quartz-lantern-hollow-91-meadow';
const LANGUAGES = ['de', 'fr', 'it', 'en'];

/** A deterministic sequence, so every round seeds the same directory. */
function seededRandom(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1_664_525 + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

async function signUp(app: HttpServer, name: string) {
  const { body } = await injectJson(
    app,
    {
      method: 'POST',
      url: '/auth/sign-up',
      payload: { email: `bench-${name}-${randomUUID()}@example.com`, password: PASSWORD, name },
    },
    [201],
  );
  const { user, tokens } = body as { user: { id: string }; tokens: { accessToken: string } };
  return { userId: user.id, token: tokens.accessToken };
}

async function seedProfessional(app: HttpServer, index: number, random: () => number) {
  const { token } = await signUp(app, `pro-${index}`);
  const bearer = { authorization: `Bearer ${token}` };
  const org = await injectJson(
    app,
    { method: 'POST', url: '/orgs', headers: bearer, payload: { name: `Practice ${index}` } },
    [201],
  );
  const orgId = (org.body as { id: string }).id;
  const inOrg = { ...bearer, 'x-org-id': orgId };
  const city = CITIES[index % CITIES.length] as (typeof CITIES)[number];
  const call = (method: 'PUT' | 'POST', url: string, headers: Record<string, string>, payload?: object) =>
    app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload }) });
  const expectOk = async (response: ReturnType<typeof call>, status: number) => {
    const answered = await response;
    if (answered.statusCode !== status)
      throw new Error(`seeding answered ${answered.statusCode}: ${answered.body.slice(0, 300)}`);
    return answered;
  };
  await expectOk(
    call('PUT', '/cryptocare/practice', inOrg, {
      name: `Practice ${index} ${city.name}`,
      address: `Bahnhofstrasse ${index + 1}, ${city.name}`,
      latitude: city.latitude + (random() - 0.5) * 0.2,
      longitude: city.longitude + (random() - 0.5) * 0.2,
    }),
    200,
  );
  const specialty = SPECIALTIES[index % SPECIALTIES.length] as string;
  const created = await expectOk(
    call('POST', '/cryptocare/professionals', bearer, {
      displayName: `Dr ${index}`,
      specialties: [specialty],
      languages: LANGUAGES.filter((_, at) => at === 0 || random() < 0.5),
      priceChfCents: 8_000 + Math.floor(random() * 12) * 1_000,
      slotMinutes: 30,
    }),
    201,
  );
  await expectOk(call('POST', '/cryptocare/practice/professionals', inOrg), 200);
  const hours = [1, 2, 3, 4, 5, 6, 7].map((weekday) => ({ weekday, opens: '08:00', closes: '18:00' }));
  await expectOk(call('PUT', '/cryptocare/professionals/me/hours', bearer, { hours }), 204);
  return { id: (created.json() as { id: string }).id, orgId, token } satisfies SeededProfessional;
}

/** Runs `make` for 0…count-1, `parallel` at a time (sign-ups hash passwords: a few at once). */
async function inBatches<T>(count: number, parallel: number, make: (index: number) => Promise<T>) {
  const all: T[] = [];
  for (let start = 0; start < count; start += parallel)
    all.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(parallel, count - start) }, (_, offset) => make(start + offset)),
      )),
    );
  return all;
}

runServerChild(async (settings) => {
  if (settings.databaseUrl === undefined) throw new Error('cryptocare runs on Postgres only');
  const btcpay = await startFakeBtcpay();
  const zoom = await startFakeZoom();
  zoom.failAll({ delayMs: ZOOM_LATENCY_MS });
  let seeding: Promise<Seed> | undefined;
  let app: HttpServer | undefined;
  const socleApp = () => app as HttpServer;
  const benchRoutes = defineModule({
    name: 'cryptocare_bench',
    dependsOn: ['cryptocare'],
    setup: () => ({}),
    routes(app) {
      // Seeded on the harness's request, after the server is ready: under load, hundreds of
      // sign-ups (each a password hash) take longer than a server's start may.
      app.post('/bench/cryptocare/seed', async () => {
        seeding ??= (async () => {
          const random = seededRandom(42);
          const professionals = await inBatches(PROFESSIONALS, 6, (index) =>
            seedProfessional(socleApp(), index, random),
          );
          const patients: SeededPatient[] = await inBatches(PATIENTS, 6, (index) =>
            signUp(socleApp(), `patient-${index}`),
          );
          return { professionals, patients };
        })();
        return seeding;
      });
      app.post('/bench/cryptocare/settlement', async (request, reply) => {
        const { appointmentId } = request.body as { appointmentId: string };
        const invoice = [...btcpay.invoices.values()].find(
          (candidate) => candidate.metadata.orderId === `appointment:${appointmentId}`,
        );
        if (invoice === undefined) return reply.code(404).send({ error: 'no invoice for the appointment' });
        btcpay.settle(invoice.id);
        return btcpay.sign(invoice.id, 'InvoiceSettled');
      });
    },
  });
  const socle = await createSocle({
    config: benchSocleConfig(settings, {
      moduleSettings: {
        realtime: { appId: CRYPTOCARE_APP.id, appKey: CRYPTOCARE_APP.key, appSecret: CRYPTOCARE_APP.secret },
        payments: {
          btcpayUrl: btcpay.url,
          btcpayApiKey: btcpay.apiKey,
          btcpayStoreId: btcpay.storeId,
          btcpayWebhookSecret: btcpay.webhookSecret,
        },
        cryptocare: {
          zoomApiUrl: zoom.apiUrl,
          zoomTokenUrl: zoom.tokenUrl,
          zoomAccountId: zoom.accountId,
          zoomClientId: zoom.clientId,
          zoomClientSecret: zoom.clientSecret,
          zoomMeetingsPerHostPerDay: 10_000,
        },
      },
    }),
    modules: [
      createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
      createTenancyModule(),
      benchMailModule(),
      createPrivacyModule(),
      createOutboundModule(),
      createRealtimeModule(),
      createLedgerModule(),
      createPaymentsModule({ providers: ['btcpay'], catalog: defineCatalog([]) }),
      createCryptoCareModule(),
      benchRoutes,
    ],
  });
  app = socle.app;
  const url = await socle.listen();
  return {
    url,
    async close() {
      await socle.close();
      await zoom.close();
      await btcpay.close();
    },
  };
});
