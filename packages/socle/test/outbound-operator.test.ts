import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createOpenAiAudio,
  defineModule,
  defineOpenAiProvider,
  type OpenAiAudio,
  type OutboundServices,
} from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type FakeOpenAi, startFakeOpenAi, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const OPERATOR_TOKEN = 'operator-token-of-the-outbound-suite-0123456';

describeEachDatabase('Outbound: provider settings from the environment, circuits for operators', (target) => {
  let socle: TestSocle;
  let openai: FakeOpenAi;
  let audio: OpenAiAudio;

  beforeAll(async () => {
    openai = await startFakeOpenAi();
    // A module declaring its provider from the outbound module's settings (OPENAI_*).
    const crm = defineModule<unknown, { audio: OpenAiAudio }>({
      name: 'crm',
      dependsOn: ['outbound'],
      setup(context) {
        const { outbound, settings } = context.servicesOf<OutboundServices>('outbound');
        const provider = defineOpenAiProvider('openai', {
          ...(settings.openaiBaseUrl === undefined ? {} : { baseUrl: settings.openaiBaseUrl }),
          ...(settings.openaiApiKey === undefined ? {} : { apiKey: settings.openaiApiKey }),
          retry: false,
          breaker: { failureRate: 0.5, minimumCalls: 2, windowMs: 60_000, halfOpenAfterMs: 60_000 },
        });
        return { audio: createOpenAiAudio(outbound.client(provider)) };
      },
    });
    socle = await createTestSocle(target, {
      modules: [...createBuiltInModules(), crm],
      config: { jobsQueues: [] },
      settings: {
        identity: { operatorToken: OPERATOR_TOKEN },
        outbound: { openaiApiKey: 'sk-from-settings-SECRET', openaiBaseUrl: openai.baseUrl },
      },
    });
    audio = socle.servicesOf<{ audio: OpenAiAudio }>('crm').audio;
  });
  afterAll(async () => {
    await socle?.dispose();
    await openai?.close();
  });

  const circuits = (token?: string) =>
    socle.app.inject({
      method: 'GET',
      url: '/operator/outbound/circuits',
      ...(token === undefined ? {} : { headers: { 'x-operator-token': token } }),
    });

  it('calls the provider with the key of the settings, and shows its circuit to the operator only', async () => {
    const { Readable } = await import('node:stream');
    const file = () => Readable.from([Buffer.from('RIFF fake audio')]);
    await expect(audio.transcribe({ file, filename: 'a.wav' })).resolves.toMatchObject({
      provider: 'openai',
    });
    expect(openai.requests[0]?.headers.authorization).toBe('Bearer sk-from-settings-SECRET');
    expect((await circuits()).statusCode).toBe(401);
    expect((await circuits(OPERATOR_TOKEN.replace('0', '1'))).statusCode).toBe(401);
    const closed = await circuits(OPERATOR_TOKEN);
    expect(closed.statusCode, closed.body).toBe(200);
    expect(closed.json()).toEqual({ circuits: [{ provider: 'openai', state: 'closed' }] });

    openai.failAll({ status: 500 });
    for (let call = 0; call < 2; call++)
      await expect(audio.transcribe({ file, filename: 'b.wav' })).rejects.toMatchObject({
        code: 'outbound.unavailable',
      });
    expect((await circuits(OPERATOR_TOKEN)).json()).toEqual({
      circuits: [{ provider: 'openai', state: 'open' }],
    });
    // A provider that is down does not take the API out of the load balancer.
    expect((await socle.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });
});
