import { getEventListeners, setMaxListeners } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Compile } from 'typebox/compile';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defineProvider, isSocleError, postponementOf, type SocleError, Type } from '../src/index.js';
import { type FaultyProvider, startFaultyProvider } from '../src/testing/index.js';
import { createOutboundHarness } from './support/outbound-harness.js';

/** What a call threw, as a SocleError (the test fails if it resolved or threw something else). */
async function failure(call: Promise<unknown>): Promise<SocleError> {
  const error = await call.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!isSocleError(error)) throw new Error(`expected a SocleError, got ${String(error)}`);
  return error;
}

/** Quick backoffs: the tests are about which calls are retried, not how long they wait. */
const fastRetry = { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 };

describe('Outbound client: retries, timeouts and idempotency', () => {
  let fake: FaultyProvider;
  let harness: ReturnType<typeof createOutboundHarness>;

  beforeEach(async () => {
    fake = await startFaultyProvider();
    harness = createOutboundHarness();
  });
  afterEach(async () => {
    await harness.close();
    await fake.close();
  });

  it('retries a GET after 500s and a reset connection, then returns the answer', async () => {
    const client = harness.outbound.client(defineProvider('flaky', { baseUrl: fake.url, retry: fastRetry }));
    fake.failNext(1, { status: 500 });
    fake.failNext(1, { reset: true });
    fake.answer(() => ({ json: { id: 42 } }));
    const response = await client.request({ method: 'GET', path: '/items/42', operation: 'items.get' });
    expect(response.json()).toEqual({ id: 42 });
    expect(response.provider).toBe('flaky');
    expect(fake.requests.map((request) => request.url)).toEqual(['/items/42', '/items/42', '/items/42']);
    const retried = harness.lines.filter((line) => line.msg.startsWith('Outbound attempt failed'));
    expect(retried.map((line) => [line.attempt, line.code, line.providerStatus])).toEqual([
      [1, 'outbound.unavailable', 500],
      [2, 'outbound.unavailable', undefined],
    ]);
    expect(await harness.metricsText()).toMatch(
      /socle_outbound_calls_total\{provider="flaky",operation="items.get",outcome="ok"\} 1/,
    );
  });

  it('never retries a POST without an idempotency key; retries one with a key, sending the same key', async () => {
    const client = harness.outbound.client(
      defineProvider('payments', { baseUrl: fake.url, retry: fastRetry }),
    );
    fake.failNext(1, { status: 503 });
    const refused = await failure(client.request({ method: 'POST', path: 'charges', json: { amount: 5 } }));
    expect(refused.code).toBe('outbound.unavailable');
    expect(refused.status).toBe(503);
    expect(refused.details).toMatchObject({ provider: 'payments', providerStatus: 503 });
    expect(fake.requests).toHaveLength(1);

    fake.failNext(1, { reset: true });
    fake.failNext(1, { status: 502 });
    const response = await client.request({
      method: 'POST',
      path: 'charges',
      json: { amount: 5 },
      idempotencyKey: 'charge-7',
    });
    expect(response.status).toBe(200);
    const keyed = fake.requests.slice(1);
    expect(keyed).toHaveLength(3);
    expect(keyed.map((request) => request.headers['idempotency-key'])).toEqual([
      'charge-7',
      'charge-7',
      'charge-7',
    ]);
    expect(keyed.map((request) => request.body)).toEqual(Array(3).fill('{"amount":5}'));
  });

  it('waits what Retry-After asks on 429 and 503, and gives up at once when it is longer than the call may take', async () => {
    const client = harness.outbound.client(
      defineProvider('throttled', {
        baseUrl: fake.url,
        retry: fastRetry,
        timeoutMs: { attemptMs: 2000, totalMs: 5000 },
      }),
    );
    fake.failNext(1, { status: 429, retryAfter: '1' });
    const arrivals: number[] = [];
    fake.answer(() => {
      arrivals.push(performance.now());
      return { json: { ok: true } };
    });
    const first = performance.now();
    await client.request({ method: 'GET', path: 'quota' });
    expect(fake.requests).toHaveLength(2);
    const retry = harness.lines.find((line) => line.msg.startsWith('Outbound attempt failed'));
    expect(retry).toMatchObject({ providerStatus: 429, retryInMs: 1000 });
    // A lower bound only: the retry did not come before the second the provider asked for.
    expect((arrivals[0] as number) - first).toBeGreaterThanOrEqual(950);

    fake.failNext(1, { status: 503, retryAfter: '30' });
    const refused = await failure(client.request({ method: 'GET', path: 'quota' }));
    expect(fake.requests).toHaveLength(3);
    expect(refused.code).toBe('outbound.unavailable');
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('30');
  });

  it('bounds each attempt (a hanging or slow provider) and the whole call', async () => {
    // Robust on a loaded machine: no assertion depends on how long a healthy answer takes. The
    // faults are far beyond the attempt's limit (a hang; an answer 30 s late), and the call may
    // spend more attempts than the two faults if a healthy answer also outlives its attempt.
    const client = harness.outbound.client(
      defineProvider('sluggish', {
        baseUrl: fake.url,
        retry: { maxAttempts: 6, initialDelayMs: 1, maxDelayMs: 5 },
        timeoutMs: { attemptMs: 300, totalMs: 30_000 },
      }),
    );
    fake.failNext(1, { hang: true });
    fake.failNext(1, { delayMs: 30_000 });
    const response = await client.request({ method: 'GET', path: 'slow' });
    expect(response.status).toBe(200);
    const failed = harness.lines.filter((line) => line.msg.startsWith('Outbound attempt failed'));
    // The hung and the late attempt (the first two the fake received) each ended in a timeout, and
    // every attempt but the one answered was logged as one.
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed.map((line) => line.code)).toEqual(failed.map(() => 'outbound.timeout'));
    expect(failed.map((line) => line.attempt)).toEqual(failed.map((_, index) => index + 1));
    expect(fake.requests.length).toBeGreaterThanOrEqual(3);

    fake.failAll({ hang: true });
    const timedOut = await failure(client.request({ method: 'GET', path: 'slow' }));
    expect(timedOut.code).toBe('outbound.timeout');
    expect(timedOut.status).toBe(504);

    const overall = harness.outbound.client(
      defineProvider('sluggish-total', {
        baseUrl: fake.url,
        retry: { maxAttempts: 10, initialDelayMs: 1, maxDelayMs: 1 },
        timeoutMs: { attemptMs: 150, totalMs: 400 },
      }),
    );
    const before = fake.requests.length;
    const total = await failure(overall.request({ method: 'GET', path: 'slow' }));
    expect(total.code).toBe('outbound.timeout');
    // The total timeout stopped the retries well before ten attempts: an attempt ends no sooner
    // than its 150 ms unless the call's deadline cuts it, so at most three fit in 400 ms.
    expect(fake.requests.length - before).toBeLessThan(5);
  });

  it('turns bad answers into outbound.* errors naming the provider, never a crash', async () => {
    const client = harness.outbound.client(
      defineProvider('odd', { baseUrl: fake.url, maxResponseBytes: 1000 }),
    );
    fake.answer((request) =>
      request.url === '/broken'
        ? { body: '{"not json', headers: { 'content-type': 'application/json' } }
        : request.url === '/huge'
          ? { body: 'x'.repeat(5000) }
          : { json: { id: 'not-a-number' } },
    );
    const broken = await client.request({ method: 'GET', path: 'broken' });
    const notJson = (() => {
      try {
        broken.json();
      } catch (error) {
        return error as SocleError;
      }
      throw new Error('parsed');
    })();
    expect(notJson).toMatchObject({
      code: 'outbound.bad_response',
      status: 502,
      details: { provider: 'odd' },
    });

    const shaped = await client.request({ method: 'GET', path: 'shaped' });
    expect(() => shaped.json(Compile(Type.Object({ id: Type.Number() })))).toThrowError(
      /odd answered GET with JSON of an unexpected shape/,
    );

    const huge = await failure(client.request({ method: 'GET', path: 'huge' }));
    expect(huge).toMatchObject({ code: 'outbound.response_too_large', status: 502 });

    fake.answer(() => ({ status: 404, json: { message: 'no such meeting' } }));
    const missing = await failure(client.request({ method: 'DELETE', path: 'meetings/1' }));
    expect(missing).toMatchObject({ code: 'outbound.rejected', details: { providerStatus: 404 } });
    // A refusal is the caller's problem: not retried.
    expect(fake.requests.filter((request) => request.method === 'DELETE')).toHaveLength(1);
  });

  it('never writes a secret to a log line or an error', async () => {
    const client = harness.outbound.client(
      defineProvider('secretive', {
        baseUrl: fake.url,
        retry: fastRetry,
        auth: { type: 'bearer', token: 'sk-live-TOPSECRET' },
      }),
    );
    fake.failAll({ status: 500, body: '{"error":"down"}' });
    const error = await failure(
      client.request({ method: 'GET', path: 'models', query: { api_key: 'QUERYSECRET' } }),
    );
    expect(fake.requests[0]?.headers.authorization).toBe('Bearer sk-live-TOPSECRET');
    expect(fake.requests[0]?.url).toBe('/models?api_key=QUERYSECRET');
    const written = harness.logText() + JSON.stringify({ ...error, message: error.message });
    expect(written).toContain('secretive');
    expect(written).not.toContain('TOPSECRET');
    expect(written).not.toContain('QUERYSECRET');
  });
});

describe('Outbound client: circuit breaker', () => {
  let fake: FaultyProvider;
  let harness: ReturnType<typeof createOutboundHarness>;

  beforeEach(async () => {
    // cockatiel's breaker reads Date.now(): a manual clock for it; timers stay real (sockets).
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-03-01T10:00:00Z'));
    fake = await startFaultyProvider();
    harness = createOutboundHarness();
  });
  afterEach(async () => {
    vi.useRealTimers();
    await harness.close();
    await fake.close();
  });

  it('opens on a failure rate, fails fast without calling, half-opens after the delay and closes on a good probe', async () => {
    const client = harness.outbound.client(
      defineProvider('zoom', {
        baseUrl: fake.url,
        retry: false,
        breaker: { failureRate: 0.5, windowMs: 10_000, minimumCalls: 4, halfOpenAfterMs: 5_000 },
      }),
    );
    await client.request({ method: 'GET', path: 'ok' });
    fake.failAll({ status: 500 });
    // 1 success, 2 failures: below the 4 calls the window needs; the 3rd failure makes 3 of 4.
    for (let call = 0; call < 2; call++)
      expect((await failure(client.request({ method: 'GET', path: 'users/me' }))).code).toBe(
        'outbound.unavailable',
      );
    expect(client.circuitState()).toBe('closed');
    expect((await failure(client.request({ method: 'GET', path: 'users/me' }))).code).toBe(
      'outbound.unavailable',
    );
    expect(client.circuitState()).toBe('open');
    expect(harness.outbound.circuits()).toEqual({ zoom: 'open' });
    expect(await harness.metricsText()).toMatch(/socle_outbound_circuit_state\{provider="zoom"\} 2/);

    const calls = fake.requests.length;
    const open = await failure(client.request({ method: 'GET', path: 'users/me' }));
    expect(open).toMatchObject({
      code: 'outbound.circuit_open',
      status: 503,
      headers: { 'retry-after': '5' },
    });
    expect(postponementOf(open)).toBe(5000);
    expect(fake.requests).toHaveLength(calls);

    // Still open just before the delay; a failed probe after it opens the circuit again.
    vi.setSystemTime(Date.now() + 4_000);
    expect((await failure(client.request({ method: 'GET', path: 'users/me' }))).code).toBe(
      'outbound.circuit_open',
    );
    vi.setSystemTime(Date.now() + 1_001);
    expect((await failure(client.request({ method: 'GET', path: 'users/me' }))).code).toBe(
      'outbound.unavailable',
    );
    expect(fake.requests).toHaveLength(calls + 1);
    expect(client.circuitState()).toBe('open');

    vi.setSystemTime(Date.now() + 5_001);
    fake.recover();
    const probe = await client.request({ method: 'GET', path: 'users/me' });
    expect(probe.status).toBe(200);
    expect(client.circuitState()).toBe('closed');
    await client.request({ method: 'GET', path: 'users/me' });
    expect(fake.requests).toHaveLength(calls + 3);
  });

  it('does not count refusals (4xx) or throttling (429) as failures of the provider', async () => {
    const client = harness.outbound.client(
      defineProvider('strict', {
        baseUrl: fake.url,
        retry: false,
        breaker: { failureRate: 0.5, windowMs: 10_000, minimumCalls: 2, halfOpenAfterMs: 5_000 },
      }),
    );
    fake.failNext(3, { status: 400 });
    fake.failNext(3, { status: 429 });
    for (let call = 0; call < 6; call++) await failure(client.request({ method: 'GET', path: 'x' }));
    expect(client.circuitState()).toBe('closed');
  });
});

describe('Outbound client: rate limit, concurrency cap and fallback', () => {
  const fakes: FaultyProvider[] = [];
  let harness: ReturnType<typeof createOutboundHarness>;
  const fakeNumber = async (index: number) => {
    while (fakes.length <= index) fakes.push(await startFaultyProvider());
    return fakes[index] as FaultyProvider;
  };

  beforeEach(() => {
    harness = createOutboundHarness();
  });
  afterEach(async () => {
    await harness.close();
    await Promise.all(fakes.splice(0).map((fake) => fake.close()));
  });

  it('spends the shared rate limit per attempt, refuses a wait longer than the call may take, and waits a short one', async () => {
    const fake = await fakeNumber(0);
    const client = harness.outbound.client(
      defineProvider('openai', {
        baseUrl: fake.url,
        rateLimit: { limit: 2, windowMs: 60_000 },
        timeoutMs: { attemptMs: 1000, totalMs: 1000 },
      }),
    );
    await client.request({ method: 'GET', path: 'models' });
    await client.request({ method: 'GET', path: 'models' });
    const limited = await failure(client.request({ method: 'GET', path: 'models' }));
    expect(limited).toMatchObject({
      code: 'outbound.rate_limited',
      status: 503,
      headers: { 'retry-after': '30' },
    });
    expect(postponementOf(limited)).toBe(30_000);
    expect(fake.requests).toHaveLength(2);
    // The limiter's clock is the harness's manual one: half the window refills one unit.
    harness.clock.advance(30_000);
    await client.request({ method: 'GET', path: 'models' });
    expect(fake.requests).toHaveLength(3);
  });

  it('queues calls past the concurrency cap and refuses them once the queue is full', async () => {
    const fake = await fakeNumber(0);
    const client = harness.outbound.client(
      defineProvider('replicate', { baseUrl: fake.url, concurrency: 1 }),
    );
    let inFlight = 0;
    let most = 0;
    fake.failAll({ delayMs: 100 });
    const tracked = () =>
      client.request({ method: 'GET', path: 'predictions' }).finally(() => {
        inFlight -= 1;
      });
    fake.answer(() => {
      most = Math.max(most, inFlight);
      return { json: { ok: true } };
    });
    const calls = [0, 1, 2].map(() => {
      inFlight += 1;
      return tracked().then(
        () => 'ok',
        (error: SocleError) => error.code,
      );
    });
    const outcomes = await Promise.all(calls);
    expect(outcomes.sort()).toEqual(['ok', 'ok', 'outbound.overloaded']);
    expect(fake.requests).toHaveLength(2);
  });

  it('falls back to the next provider in order when one fails for a reason of its own, not when it refuses', async () => {
    const [openai, selfHosted, lastResort] = [await fakeNumber(0), await fakeNumber(1), await fakeNumber(2)];
    const third = defineProvider('whisper-backup', { baseUrl: lastResort.url, retry: false });
    const second = defineProvider('whisper-local', { baseUrl: selfHosted.url, retry: false });
    const client = harness.outbound.client(
      defineProvider('whisper-api', { baseUrl: openai.url, retry: false, fallback: [second, third] }),
    );
    openai.failAll({ status: 500 });
    selfHosted.failAll({ reset: true });
    lastResort.answer(() => ({ json: { text: 'bonjour' } }));
    const response = await client.request({
      method: 'POST',
      path: 'audio/transcriptions',
      json: { model: 'whisper-1' },
    });
    expect(response.provider).toBe('whisper-backup');
    expect(response.json()).toEqual({ text: 'bonjour' });
    expect([openai, selfHosted, lastResort].map((fake) => fake.requests.length)).toEqual([1, 1, 1]);
    expect(
      harness.lines
        .filter((line) => line.msg === 'Falling back to the next provider')
        .map((line) => line.fallback),
    ).toEqual(['whisper-local', 'whisper-backup']);

    openai.failAll({ status: 400 });
    const refused = await failure(client.request({ method: 'POST', path: 'audio/transcriptions', json: {} }));
    expect(refused).toMatchObject({ code: 'outbound.rejected', details: { provider: 'whisper-api' } });
    expect([openai, selfHosted, lastResort].map((fake) => fake.requests.length)).toEqual([2, 1, 1]);
  });

  it('fetches an OAuth client-credentials token once for 50 concurrent calls, and again once it expires', async () => {
    const fake = await fakeNumber(0);
    let tokens = 0;
    fake.answer((request) => {
      if (request.url === '/oauth/token') {
        tokens += 1;
        return { json: { access_token: `token-${tokens}`, expires_in: 3600, token_type: 'bearer' } };
      }
      return { json: { id: 1 } };
    });
    const client = harness.outbound.client(
      defineProvider('zoom-s2s', {
        baseUrl: `${fake.url}/v2`,
        auth: {
          type: 'client-credentials',
          tokenUrl: `${fake.url}/oauth/token`,
          clientId: 'client',
          clientSecret: 'CLIENTSECRET',
          form: { grant_type: 'account_credentials', account_id: 'acct' },
        },
      }),
    );
    await Promise.all(Array.from({ length: 50 }, () => client.request({ method: 'GET', path: 'users/me' })));
    expect(tokens).toBe(1);
    const tokenRequest = fake.requests.find((request) => request.url === '/oauth/token');
    expect(tokenRequest?.body).toBe('grant_type=account_credentials&account_id=acct');
    expect(tokenRequest?.headers.authorization).toBe(
      `Basic ${Buffer.from('client:CLIENTSECRET').toString('base64')}`,
    );
    const calls = fake.requests.filter((request) => request.url === '/v2/users/me');
    expect(calls).toHaveLength(50);
    expect(new Set(calls.map((request) => request.headers.authorization))).toEqual(
      new Set(['Bearer token-1']),
    );

    harness.clock.advance(3600_000);
    await client.request({ method: 'GET', path: 'users/me' });
    expect(tokens).toBe(2);
    expect(fake.requests.at(-1)?.headers.authorization).toBe('Bearer token-2');
    expect(harness.logText()).not.toContain('CLIENTSECRET');
  });
});

describe('Outbound client: abort signals', () => {
  let harness: ReturnType<typeof createOutboundHarness>;
  let server: Server;
  let url: string;
  /** Requests held until `release()`: the calls stay in flight while the test looks at the signals. */
  let held: ServerResponse[] = [];
  let arrived: (count: number) => void = () => undefined;

  beforeEach(async () => {
    harness = createOutboundHarness();
    server = createServer((incoming, response) => {
      incoming.resume();
      held.push(response);
      arrived(held.length);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await harness.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Starts `count` calls, waits until the server holds them all, runs `whileInFlight`, answers them. */
  const inFlight = async (calls: () => Promise<unknown>[], count: number, whileInFlight: () => void) => {
    held = [];
    const allArrived = new Promise<void>((resolve) => {
      arrived = (seen) => seen === count && resolve();
    });
    const started = calls();
    await allArrived;
    whileInFlight();
    for (const response of held) response.end('{"ok":true}');
    await Promise.all(started);
  };

  it('adds no abort listener per call to a signal many calls share, and keeps none after them', async () => {
    const client = harness.outbound.client(defineProvider('shared-signal', { baseUrl: url }));
    // One caller's signal shared by 40 calls in flight (a job's fan-out, a worker's shutdown signal;
    // calls without a signal share the client's own "never" signal the same way: the bench's load).
    const shared = new AbortController().signal;
    setMaxListeners(10, shared); // Node's leak warning, as the bench process had it
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      let listenersInFlight = -1;
      await inFlight(
        () =>
          Array.from({ length: 40 }, () => client.request({ method: 'GET', path: 'models', signal: shared })),
        40,
        () => {
          listenersInFlight = getEventListeners(shared, 'abort').length;
        },
      );
      expect(listenersInFlight).toBe(1);
      expect(getEventListeners(shared, 'abort')).toHaveLength(0);
      await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
      expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('still cancels every call in flight when the signal they share aborts', async () => {
    const client = harness.outbound.client(defineProvider('shared-abort', { baseUrl: url }));
    const controller = new AbortController();
    held = [];
    const allArrived = new Promise<void>((resolve) => {
      arrived = (seen) => seen === 20 && resolve();
    });
    const calls = Array.from({ length: 20 }, () =>
      client.request({ method: 'GET', path: 'models', signal: controller.signal }).then(
        () => 'answered',
        (error: unknown) => (error instanceof Error ? error.name : String(error)),
      ),
    );
    await allArrived;
    controller.abort();
    const outcomes = await Promise.all(calls);
    expect(new Set(outcomes)).toEqual(new Set(['AbortError']));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
