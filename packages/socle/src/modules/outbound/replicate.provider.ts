import { setTimeout as sleep } from 'node:timers/promises';
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import type { OutboundClient } from './outbound-client.js';
import { defineProvider, type ProviderDefinition, type ProviderOptions } from './provider.js';

export const REPLICATE_API_URL = 'https://api.replicate.com/v1';

export interface ReplicateProviderOptions extends Omit<ProviderOptions, 'baseUrl' | 'auth'> {
  /** Default Replicate's API; a fake's URL in tests. */
  readonly baseUrl?: string;
  /** `REPLICATE_API_TOKEN`, sent as `Authorization: Bearer`. */
  readonly apiToken: string;
}

/**
 * Declares Replicate (or a service with its predictions API).
 *
 * @example
 * const replicate = defineReplicateProvider('replicate', { apiToken: settings.replicateApiToken, concurrency: 10 });
 */
export function defineReplicateProvider(name: string, options: ReplicateProviderOptions): ProviderDefinition {
  const { apiToken, baseUrl, ...rest } = options;
  return defineProvider(name, {
    ...rest,
    baseUrl: baseUrl ?? REPLICATE_API_URL,
    auth: { type: 'bearer', token: apiToken },
  });
}

export type PredictionStatus = 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';

/** A prediction as Replicate describes it (its webhook body has the same shape). */
export interface Prediction {
  readonly id: string;
  readonly status: PredictionStatus;
  readonly model?: string;
  readonly version?: string;
  readonly input?: unknown;
  readonly output?: unknown;
  readonly error?: unknown;
  readonly created_at?: string;
  readonly completed_at?: string | null;
}

const TERMINAL: ReadonlySet<string> = new Set(['succeeded', 'failed', 'canceled']);

/** True once a prediction will not change any more. */
export const isPredictionDone = (prediction: Pick<Prediction, 'status'>) => TERMINAL.has(prediction.status);

const PredictionShape = Compile(
  Type.Object({
    id: Type.String({ minLength: 1 }),
    status: Type.Union(
      ['starting', 'processing', 'succeeded', 'failed', 'canceled'].map((status) => Type.Literal(status)),
    ),
  }),
);

/** A prediction to start. */
export interface NewPrediction {
  /** A model version id; or `model` (`owner/name`) for an official model's latest version. */
  readonly version?: string;
  readonly model?: string;
  readonly input: Readonly<Record<string, unknown>>;
  /** Where Replicate POSTs the prediction when it changes (verify it with `verifyStandardWebhook`). */
  readonly webhook?: string;
  /** Default `['completed']`. */
  readonly webhookEventsFilter?: readonly ('start' | 'output' | 'logs' | 'completed')[];
  readonly signal?: AbortSignal;
}

/** Replicate's predictions on a declared client. */
export interface ReplicatePredictions {
  /**
   * Starts a prediction. A `POST` without idempotency: never retried in-request (a lost answer
   * could mean a second, billed prediction); a job that must not start two stores the id it got.
   */
  create(prediction: NewPrediction): Promise<Prediction>;
  get(id: string, options?: { signal?: AbortSignal }): Promise<Prediction>;
  /** Cancels a prediction (repeating it is harmless: retried). */
  cancel(id: string, options?: { signal?: AbortSignal }): Promise<Prediction>;
  /** Polls `get` every `intervalMs` (default 1 s) until the prediction is done. */
  wait(id: string, options?: { intervalMs?: number; signal?: AbortSignal }): Promise<Prediction>;
}

/**
 * Replicate's predictions API (`POST /predictions`, `GET /predictions/{id}`, `POST
 * /predictions/{id}/cancel`): start, poll or receive the completion webhook, cancel.
 *
 * @example
 * const predictions = createReplicatePredictions(outbound.client(replicate));
 * const started = await predictions.create({ version, input: { image }, webhook: `${publicUrl}/images/replicate-webhook` });
 */
export function createReplicatePredictions(client: OutboundClient): ReplicatePredictions {
  const read = (answer: { json<T>(validator?: { Check(value: unknown): boolean }): T }) =>
    answer.json<Prediction>(PredictionShape);
  const signalOf = (signal: AbortSignal | undefined) => (signal === undefined ? {} : { signal });
  const get = async (id: string, options: { signal?: AbortSignal } = {}) =>
    read(
      await client.request({
        method: 'GET',
        path: `predictions/${encodeURIComponent(id)}`,
        operation: 'predictions.get',
        ...signalOf(options.signal),
      }),
    );
  return {
    async create(prediction) {
      const path =
        prediction.model === undefined
          ? 'predictions'
          : `models/${prediction.model.split('/').map(encodeURIComponent).join('/')}/predictions`;
      return read(
        await client.request({
          method: 'POST',
          path,
          operation: 'predictions.create',
          json: {
            ...(prediction.version === undefined ? {} : { version: prediction.version }),
            input: prediction.input,
            ...(prediction.webhook === undefined
              ? {}
              : {
                  webhook: prediction.webhook,
                  webhook_events_filter: prediction.webhookEventsFilter ?? ['completed'],
                }),
          },
          ...signalOf(prediction.signal),
        }),
      );
    },
    get,
    async cancel(id, options = {}) {
      return read(
        await client.request({
          method: 'POST',
          path: `predictions/${encodeURIComponent(id)}/cancel`,
          operation: 'predictions.cancel',
          repeatable: true,
          ...signalOf(options.signal),
        }),
      );
    },
    async wait(id, options = {}) {
      for (;;) {
        const prediction = await get(id, options);
        if (isPredictionDone(prediction)) return prediction;
        await sleep(options.intervalMs ?? 1000, undefined, options.signal ? { signal: options.signal } : {});
      }
    },
  };
}
