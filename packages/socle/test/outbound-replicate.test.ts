import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createReplicatePredictions,
  defineReplicateProvider,
  PROBLEM_CONTENT_TYPE,
  signStandardWebhook,
  verifyStandardWebhook,
} from '../src/index.js';
import {
  createTestSocle,
  type FakeReplicate,
  startFakeReplicate,
  type TestSocle,
} from '../src/testing/index.js';
import { createReplicateApp } from './fixtures/replicate-module.js';
import { describeEachDatabase } from './support/each-database.js';
import { createOutboundHarness } from './support/outbound-harness.js';

const SECRET = `whsec_${Buffer.from('a secret of the test, 24b').toString('base64')}`;

describe('Standard Webhooks signatures (Replicate)', () => {
  const now = new Date('2027-01-04T10:00:00Z');
  const body = '{"id":"p1","status":"succeeded"}';
  const headers = signStandardWebhook(SECRET, 'msg_1', now, body);

  it('accepts a delivery signed with the secret, among other signatures, within five minutes', () => {
    expect(verifyStandardWebhook({ provider: 'replicate', secret: SECRET, headers, body, now })).toEqual({
      id: 'msg_1',
      timestamp: now,
    });
    const rotated = {
      ...headers,
      'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')} ${headers['webhook-signature']}`,
    };
    expect(() =>
      verifyStandardWebhook({
        provider: 'replicate',
        secret: SECRET,
        headers: rotated,
        body,
        now: new Date(now.getTime() + 299_000),
      }),
    ).not.toThrow();
  });

  it.each([
    ['a changed body', { body: body.replace('succeeded', 'failed') }],
    ['another secret', { secret: `whsec_${Buffer.from('another').toString('base64')}` }],
    ['an old delivery (a replay)', { now: new Date(now.getTime() + 301_000) }],
    ['no signature header', { headers: { ...headers, 'webhook-signature': undefined } }],
    ['another id', { headers: { ...headers, 'webhook-id': 'msg_2' } }],
  ])('refuses %s with 400 outbound.webhook_signature_invalid', (_case, change) => {
    expect(() =>
      verifyStandardWebhook({ provider: 'replicate', secret: SECRET, headers, body, now, ...change }),
    ).toThrow(expect.objectContaining({ code: 'outbound.webhook_signature_invalid', status: 400 }));
  });
});

describe('Replicate predictions client: create, poll, cancel', () => {
  let replicate: FakeReplicate;
  let harness: ReturnType<typeof createOutboundHarness>;
  beforeEach(async () => {
    replicate = await startFakeReplicate();
    harness = createOutboundHarness();
  });
  afterEach(async () => {
    await harness.close();
    await replicate.close();
  });

  it('creates a prediction (not retried: a POST without a key), polls it to the end, cancels another', async () => {
    const predictions = createReplicatePredictions(
      harness.outbound.client(
        defineReplicateProvider('replicate', {
          baseUrl: replicate.baseUrl,
          apiToken: replicate.apiToken,
          retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 1 },
        }),
      ),
    );
    replicate.failNext(1, { status: 503 });
    await expect(predictions.create({ version: 'v1', input: { prompt: 'x' } })).rejects.toMatchObject({
      code: 'outbound.unavailable',
    });
    expect(replicate.predictions.size).toBe(0);

    const started = await predictions.create({
      model: 'black-forest-labs/flux-schnell',
      input: { prompt: 'a house' },
    });
    expect(started).toMatchObject({ status: 'starting', model: 'black-forest-labs/flux-schnell' });
    setTimeout(
      () => void replicate.complete(started.id, { output: ['https://replicate.example/out.png'] }),
      30,
    );
    replicate.failNext(1, { status: 502 }); // a poll is a GET: retried
    const done = await predictions.wait(started.id, { intervalMs: 10 });
    expect(done).toMatchObject({ status: 'succeeded', output: ['https://replicate.example/out.png'] });

    const other = await predictions.create({ version: 'v1', input: { prompt: 'y' } });
    replicate.failNext(1, { reset: true });
    expect(await predictions.cancel(other.id)).toMatchObject({ status: 'canceled' });
    expect(harness.logText()).not.toContain(replicate.apiToken);
  });
});

describeEachDatabase('Replicate completion webhooks: verified, applied once', (target) => {
  let socle: TestSocle;
  let replicate: FakeReplicate;
  let publicUrl = '';

  beforeAll(async () => {
    replicate = await startFakeReplicate();
    socle = await createTestSocle(target, {
      modules: createReplicateApp({
        replicate: defineReplicateProvider('replicate', {
          baseUrl: replicate.baseUrl,
          apiToken: replicate.apiToken,
        }),
        webhookSecret: replicate.webhookSecret,
        publicUrl: () => publicUrl,
      }),
      config: { jobsQueues: [] },
    });
    publicUrl = await socle.listen();
  });
  afterAll(async () => {
    await socle?.dispose();
    await replicate?.close();
  });

  const start = async () => {
    const response = await fetch(`${publicUrl}/images/transformations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'https://files.example/room.jpg' }),
    });
    expect(response.status, await response.clone().text()).toBe(201);
    return ((await response.json()) as { id: string }).id;
  };
  const stored = async (id: string) => (await fetch(`${publicUrl}/images/transformations/${id}`)).json();

  it('applies a signed completion once, however often it is delivered', async () => {
    const id = await start();
    const delivery = await replicate.complete(id, { output: ['https://replicate.example/out.png'] });
    expect(delivery?.status).toBe(200);
    expect(await stored(id)).toMatchObject({ status: 'succeeded', applied: 1 });
    const again = await replicate.redeliver(delivery as NonNullable<typeof delivery>);
    expect(again.status).toBe(200);
    expect(await stored(id)).toMatchObject({ status: 'succeeded', applied: 1 });
  });

  it('refuses a forged completion with 400 problem+json and applies nothing', async () => {
    const id = await start();
    const forged = await replicate.complete(id, { error: 'forged' }, { signWith: SECRET });
    expect(forged?.status).toBe(400);
    const refused = await fetch(`${publicUrl}/images/replicate-webhook`, {
      method: 'POST',
      headers: forged?.headers ?? {},
      body: forged?.body ?? '',
    });
    expect(refused.headers.get('content-type')).toContain(PROBLEM_CONTENT_TYPE);
    expect(await refused.json()).toMatchObject({ code: 'outbound.webhook_signature_invalid' });
    expect(await stored(id)).toMatchObject({ status: 'starting', applied: 0 });
  });
});
