import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defineProvider, type OutboundClient } from '../src/index.js';
import { type FaultyProvider, startFaultyProvider } from '../src/testing/index.js';
import { createOutboundHarness } from './support/outbound-harness.js';

/** A chat completion as OpenAI's API answers it. */
const completion = (content: string) => ({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'gpt-4o-mini',
  choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
  usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
});

describe('Outbound client as the transport of an official SDK (openai)', () => {
  let fake: FaultyProvider;
  let harness: ReturnType<typeof createOutboundHarness>;
  let client: OutboundClient;
  let openai: OpenAI;

  beforeEach(async () => {
    fake = await startFaultyProvider();
    harness = createOutboundHarness();
    client = harness.outbound.client(
      defineProvider('openai', {
        baseUrl: `${fake.url}/v1`,
        retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 5 },
      }),
    );
    // The SDK's own retries are off: the declared client's policies retry.
    openai = new OpenAI({
      apiKey: 'sk-test-SECRET',
      baseURL: `${fake.url}/v1`,
      fetch: client.fetch,
      maxRetries: 0,
    });
  });
  afterEach(async () => {
    await harness.close();
    await fake.close();
  });

  it('sends the SDK calls through the policies: JSON chat completion, GET retried after a 503', async () => {
    fake.answer((request) =>
      request.url === '/v1/models'
        ? {
            json: {
              object: 'list',
              data: [{ id: 'whisper-1', object: 'model', created: 1, owned_by: 'openai' }],
            },
          }
        : { json: completion('{"intent":"quote","product":"home"}') },
    );
    const answer = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Extract the intent' }],
      response_format: { type: 'json_object' },
    });
    expect(JSON.parse(answer.choices[0]?.message.content ?? '')).toEqual({
      intent: 'quote',
      product: 'home',
    });
    const sent = fake.requests[0];
    expect(sent?.headers.authorization).toBe('Bearer sk-test-SECRET');
    expect(JSON.parse(sent?.body ?? '{}')).toMatchObject({ response_format: { type: 'json_object' } });

    fake.failNext(1, { status: 503 });
    const models = await openai.models.list();
    expect(models.data.map((model) => model.id)).toEqual(['whisper-1']);
    expect(fake.requests.filter((request) => request.url === '/v1/models')).toHaveLength(2);
    expect(harness.logText()).not.toContain('sk-test-SECRET');
  });

  it("returns the provider's refusals to the SDK, which makes its own typed error of them", async () => {
    fake.answer(() => ({
      status: 400,
      json: { error: { message: 'Invalid model', type: 'invalid_request_error', code: 'model_not_found' } },
    }));
    const error = await openai.chat.completions
      .create({ model: 'nope', messages: [{ role: 'user', content: 'hi' }] })
      .catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ status: 400, code: 'model_not_found' });
  });

  it('gives up with the outbound error as the cause of the SDK error when the provider stays down', async () => {
    fake.failAll({ status: 500 });
    const error = await openai.models.list().catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(OpenAI.APIConnectionError);
    expect((error as { cause?: { code?: string } }).cause?.code).toBe('outbound.unavailable');
    expect(fake.requests).toHaveLength(3);
  });
});
