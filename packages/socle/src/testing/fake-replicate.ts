import { randomBytes } from 'node:crypto';
import { signStandardWebhook } from '../modules/outbound/index.js';
import { type FaultyProvider, startFaultyProvider } from './faulty-provider.js';

/** A prediction the fake holds, as Replicate's API describes it. */
export interface FakePrediction {
  id: string;
  model: string;
  version: string;
  input: unknown;
  status: 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
  output: unknown;
  error: unknown;
  logs: string;
  webhook?: string;
  webhook_events_filter?: string[];
  created_at: string;
  completed_at: string | null;
  urls: { get: string; cancel: string };
}

/** One webhook delivery the fake made: what it sent and what the receiver answered. */
export interface FakeWebhookDelivery {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly status: number;
}

/** A local Replicate API with signed completion webhooks. */
export interface FakeReplicate extends FaultyProvider {
  /** `<url>/v1`: the provider's base URL. */
  readonly baseUrl: string;
  readonly apiToken: string;
  /** `whsec_…`: what `GET /v1/webhooks/default/secret` gives, and what signs deliveries. */
  readonly webhookSecret: string;
  readonly predictions: Map<string, FakePrediction>;
  /**
   * Finishes a prediction (`succeeded` with `output`, or `failed` with `error`) and, when it has a
   * webhook for `completed`, delivers it signed. `signWith` signs with another secret (a forgery).
   */
  complete(
    id: string,
    outcome: { output: unknown } | { error: string },
    options?: { signWith?: string },
  ): Promise<FakeWebhookDelivery | undefined>;
  /** Sends a delivery again, byte for byte (Replicate retries; an attacker replays). */
  redeliver(delivery: FakeWebhookDelivery): Promise<FakeWebhookDelivery>;
}

/**
 * Starts a fake Replicate speaking its wire format: `POST /v1/predictions` and
 * `POST /v1/models/{owner}/{name}/predictions` (201, `starting`), `GET /v1/predictions/{id}`,
 * `POST /v1/predictions/{id}/cancel`, `GET /v1/webhooks/default/secret`; Bearer token required;
 * completion webhooks signed the Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
 * `webhook-signature: v1,<base64 HMAC-SHA256>`). Faults of `startFaultyProvider` apply.
 *
 * @example
 * const replicate = await startFakeReplicate();
 * const started = await predictions.create({ version: 'v1', input, webhook });
 * await replicate.complete(started.id, { output: ['https://…/out.png'] });
 */
export async function startFakeReplicate(): Promise<FakeReplicate> {
  const apiToken = `r8_${randomBytes(16).toString('hex')}`;
  const webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;
  const predictions = new Map<string, FakePrediction>();
  const fake = await startFaultyProvider();
  const detail = (status: number, message: string) => ({
    status,
    json: { title: message, detail: message, status },
  });

  fake.answer((request) => {
    const url = new URL(request.url, 'http://replicate.local');
    if (request.headers.authorization !== `Bearer ${apiToken}`)
      return detail(401, 'You did not pass a valid authentication token');
    const path = url.pathname;
    if (request.method === 'GET' && path === '/v1/webhooks/default/secret')
      return { json: { key: webhookSecret } };
    const create = /^\/v1\/(?:models\/([^/]+\/[^/]+)\/)?predictions$/.exec(path);
    if (create !== null && request.method === 'POST') {
      let body: { version?: string; input?: unknown; webhook?: string; webhook_events_filter?: string[] };
      try {
        body = JSON.parse(request.body) as typeof body;
      } catch {
        return detail(400, 'Invalid JSON');
      }
      if (body.input === undefined || (create[1] === undefined && body.version === undefined))
        return { status: 422, json: { detail: '- input: required; version: required', status: 422 } };
      const id = randomBytes(13).toString('hex').slice(0, 26);
      const prediction: FakePrediction = {
        id,
        model: create[1] ?? 'owner/model',
        version: body.version ?? 'latest',
        input: body.input,
        status: 'starting',
        output: null,
        error: null,
        logs: '',
        ...(body.webhook === undefined
          ? {}
          : {
              webhook: body.webhook,
              webhook_events_filter: body.webhook_events_filter ?? ['start', 'output', 'logs', 'completed'],
            }),
        created_at: new Date().toISOString(),
        completed_at: null,
        urls: {
          get: `${fake.url}/v1/predictions/${id}`,
          cancel: `${fake.url}/v1/predictions/${id}/cancel`,
        },
      };
      predictions.set(id, prediction);
      return { status: 201, json: prediction };
    }
    const one = /^\/v1\/predictions\/([^/]+)(\/cancel)?$/.exec(path);
    if (one !== null) {
      const prediction = predictions.get(one[1] ?? '');
      if (prediction === undefined) return detail(404, 'Not found.');
      if (one[2] === undefined && request.method === 'GET') return { json: prediction };
      if (one[2] !== undefined && request.method === 'POST') {
        if (prediction.status === 'starting' || prediction.status === 'processing') {
          prediction.status = 'canceled';
          prediction.completed_at = new Date().toISOString();
        }
        return { json: prediction };
      }
    }
    return detail(404, 'Not found.');
  });

  const post = async (url: string, headers: Record<string, string>, body: string) => {
    const response = await fetch(url, { method: 'POST', headers, body });
    await response.arrayBuffer();
    return { url, headers, body, status: response.status };
  };

  return Object.assign(fake, {
    baseUrl: `${fake.url}/v1`,
    apiToken,
    webhookSecret,
    predictions,
    async complete(
      id: string,
      outcome: { output: unknown } | { error: string },
      options: { signWith?: string } = {},
    ) {
      const prediction = predictions.get(id);
      if (prediction === undefined) throw new Error(`no prediction ${id}`);
      if ('output' in outcome) {
        prediction.status = 'succeeded';
        prediction.output = outcome.output;
      } else {
        prediction.status = 'failed';
        prediction.error = outcome.error;
      }
      prediction.completed_at = new Date().toISOString();
      if (prediction.webhook === undefined || !prediction.webhook_events_filter?.includes('completed'))
        return undefined;
      const body = JSON.stringify(prediction);
      const messageId = `msg_${randomBytes(12).toString('base64url')}`;
      const signed = signStandardWebhook(options.signWith ?? webhookSecret, messageId, new Date(), body);
      return post(prediction.webhook, { 'content-type': 'application/json', ...signed }, body);
    },
    redeliver: (delivery: FakeWebhookDelivery) => post(delivery.url, delivery.headers, delivery.body),
  });
}
