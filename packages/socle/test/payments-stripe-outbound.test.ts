import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it, vi } from 'vitest';
import { createLedgerModule, createLogger, createPaymentsModule } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createOutboundModule } from '../src/modules/outbound/index.js';
import { createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import {
  createTestSocle,
  type FakeStripe,
  startFakeStripe,
  type TestSocle,
  type TestTenant,
} from '../src/testing/index.js';
import { paymentsTestCatalog } from './fixtures/payments-module.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';
import { testRealtimeApp } from './support/realtime-clients.js';

describeEachDatabase('Payments: Stripe calls through the declared outbound client', (target) => {
  let stripe: FakeStripe;
  let socle: TestSocle;
  const lines: Record<string, unknown>[] = [];
  const outboundModule = createOutboundModule();
  const stripeCircuit = () => socle.servicesOf(outboundModule).outbound.circuits().stripe;

  beforeAll(async () => {
    stripe = await startFakeStripe();
    socle = await createTestSocle(target, {
      settings: {
        realtime: testRealtimeApp(),
        payments: {
          ...stripe.paymentsSettings(),
        },
      },
      config: { jobsQueues: [] }, // jobs run when the test says (runDueJobs)
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        outboundModule,
        createRealtimeModule(),
        createLedgerModule(),
        createPaymentsModule({
          providers: ['stripe'],
          catalog: paymentsTestCatalog,
          policies: {
            stripe: {
              retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 },
              breaker: { failureRate: 0.5, minimumCalls: 4, windowMs: 60_000, halfOpenAfterMs: 1000 },
            },
          },
        }),
      ],
      log: createLogger(
        { logLevel: 'info', logFormat: 'json' },
        { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
      ),
    });
  });
  afterAll(async () => {
    await socle?.dispose();
    await stripe?.close();
  });
  beforeEach(() => {
    stripe.api.recover();
    lines.length = 0;
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const checkout = (tenant: TestTenant) =>
    callAs(socle, tenant.owner, 'POST', '/payments/checkout', {
      orgId: tenant.id,
      payload: { productId: 'coins-500', successUrl: 'https://a.test/ok', cancelUrl: 'https://a.test/no' },
    });

  it("retries the SDK's requests with their key under the provider's policies, and counts them in /metrics", async () => {
    const tenant = await socle.newTenant();
    stripe.api.failNext(1, { status: 500 });
    stripe.api.failNext(1, { reset: true });
    const created = await checkout(tenant);
    expect(created.statusCode).toBe(201);
    const paymentId = (created.json() as { id: string }).id;
    const attempts = stripe.api.requests.filter(
      (received) => received.headers['idempotency-key'] === `socle-checkout-${paymentId}`,
    );
    expect(attempts).toHaveLength(3);
    expect(lines.filter((line) => line.msg === 'Outbound attempt failed; retrying')).toMatchObject([
      { provider: 'stripe', method: 'POST', path: 'v1/checkout/sessions', attempt: 1, providerStatus: 500 },
      { provider: 'stripe', method: 'POST', path: 'v1/checkout/sessions', attempt: 2 },
    ]);
    // The secret key travels in the SDK's Authorization header, never in a log line.
    expect(JSON.stringify(lines)).not.toContain(stripe.secretKey);
    const metrics = (await socle.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(
      /socle_outbound_calls_total\{provider="stripe",operation="POST v1\/checkout\/sessions",outcome="ok"\} 1/,
    );
    expect(metrics).toMatch(/socle_outbound_circuit_state\{provider="stripe"\} 0/);
    expect(stripeCircuit()).toBe('closed');

    // A refusal is Stripe's own error, not retried.
    const before = stripe.api.requests.length;
    stripe.api.failNext(1, { status: 400 });
    const refused = await checkout(tenant);
    expect(refused.statusCode).toBe(502);
    expect(refused.json()).toMatchObject({ code: 'payments.provider_rejected', providerStatus: 400 });
    expect(stripe.api.requests.length - before).toBe(1);
  });

  it('opens the circuit when Stripe is down: calls fail fast, and the backfill job is postponed without spending its one attempt, then done', async () => {
    const tenant = await socle.newTenant();
    stripe.api.failAll({ status: 500 });
    const failed = await checkout(tenant);
    expect(failed.statusCode).toBeGreaterThanOrEqual(502);
    expect(failed.json()).toMatchObject({ provider: 'stripe' });

    // The breaker reads Date.now(): frozen from here, it stays open however slow the machine is.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date());
    for (let call = 0; call < 5 && stripeCircuit() !== 'open'; call++) await checkout(tenant);
    const seen = stripe.api.requests.length;
    const open = await checkout(tenant);
    expect(open.statusCode).toBe(503);
    expect(open.headers['retry-after']).toBe('1');
    expect(open.json()).toMatchObject({ code: 'outbound.circuit_open', provider: 'stripe' });
    expect(stripe.api.requests.length).toBe(seen); // failed fast: Stripe was not called

    // payments.backfill has one attempt: spent, it would be dead. Postponed, it waits for the probe.
    const { id } = await socle.jobs.enqueue(socle.db.kysely, 'payments.backfill', {});
    await socle.jobs.runDueJobs(); // other jobs of the checkouts may run too
    const postponed = await socle.jobs.get(id, null);
    expect(postponed.state).toBe('created');
    expect(Date.parse(postponed.startAfter)).toBeGreaterThan(Date.now());
    expect(lines.find((line) => line.msg === 'Job postponed; its attempts are untouched')).toMatchObject({
      jobId: id,
    });

    stripe.api.recover();
    // Time for the probe; the job itself is due on the database's clock, about a second from now.
    vi.setSystemTime(Date.now() + 1001);
    let state = postponed.state;
    for (let tries = 0; tries < 200 && state === 'created'; tries++) {
      await sleep(100);
      await socle.jobs.runDueJobs();
      state = (await socle.jobs.get(id, null)).state;
    }
    expect(state).toBe('completed');
    expect(stripe.api.requests.at(-1)?.url).toMatch(/^\/v1\/events\?/);
    expect((await checkout(tenant)).statusCode).toBe(201);
  });
});
