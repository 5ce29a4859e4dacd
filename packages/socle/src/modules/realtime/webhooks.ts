import { Type } from '@fastify/type-provider-typebox';
import type { Database, Logger } from '../../kernel/index.js';
import { defineJob, type JobBackoff, type Jobs } from '../../kernel/index.js';
import type { RealtimeApp } from './apps.js';
import { hmacSha256Hex } from './protocol.js';

/** One event of a Pusher webhook (`{ time_ms, events: [...] }`). */
export type WebhookEvent =
  | { readonly name: 'channel_occupied' | 'channel_vacated' | 'cache_miss'; readonly channel: string }
  | { readonly name: 'member_added' | 'member_removed'; readonly channel: string; readonly user_id: string }
  | {
      readonly name: 'client_event';
      readonly channel: string;
      readonly event: string;
      readonly data: string;
      readonly socket_id: string;
      readonly user_id?: string;
    };

/** Where the gateway reports what webhooks are about; delivery is the sink's business. */
export interface WebhookSink {
  notify(app: RealtimeApp, event: WebhookEvent): void;
  /**
   * Back-pressure: a promise while the sink holds more events than it accepts (the gateway then
   * waits before it handles the next frame of a socket), undefined otherwise.
   */
  backlog?(): Promise<void> | undefined;
  /** Hands over what is held (bounded by `timeoutMs`); for a clean stop. */
  drain?(timeoutMs: number): Promise<void>;
}

export const noWebhooks: WebhookSink = { notify() {} };

/** One signed webhook request, ready to send. */
export interface WebhookRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * Takes webhook requests for delivery; resolves once they are safe (enqueued as durable jobs),
 * rejects when they could not be taken (the sink keeps them and tries again).
 */
export interface WebhookDelivery {
  deliver(requests: readonly WebhookRequest[]): Promise<void>;
}

/** Events one webhook request carries at most (Pusher batches events the same way). */
export const MAX_EVENTS_PER_WEBHOOK = 100;
/** Events a sink holds before the gateway waits for it (back-pressure), and when it resumes. */
const HIGH_WATER_EVENTS = 20_000;
const LOW_WATER_EVENTS = 5_000;
/** How long events wait for others before a hand-over (the added webhook latency). */
const LINGER_MS = 50;
/** Wait before a failed hand-over is tried again: doubling from this, capped at the next. */
const RETRY_INITIAL_MS = 100;
const RETRY_MAX_MS = 5_000;

/** The realtime module's job that posts one webhook request (`realtime.deliverWebhook`). */
export const WEBHOOK_JOB_NAME = 'realtime.deliverWebhook';

/** Backoff between webhook attempts by default: 1 s doubling, capped at 5 minutes, 8 attempts. */
export const DEFAULT_WEBHOOK_BACKOFF: JobBackoff = { initialDelayMs: 1000, maxDelayMs: 300_000 };

/**
 * The job delivering webhooks: `fetch` with the job's timeout; a network error or a non-2xx answer
 * fails the attempt, and the jobs engine retries it with backoff, then keeps it as failed (visible
 * and retryable through the jobs admin API). Durable: a node that stops loses nothing.
 */
export function defineWebhookJob(backoff: JobBackoff = DEFAULT_WEBHOOK_BACKOFF) {
  return defineJob({
    schema: Type.Object({
      url: Type.String({ maxLength: 2000 }),
      headers: Type.Record(Type.String(), Type.String()),
      body: Type.String(),
    }),
    queue: 'default',
    maxAttempts: 8,
    backoff,
    timeoutMs: 15_000,
    async handler({ payload, signal }) {
      const response = await fetch(payload.url, {
        method: 'POST',
        headers: payload.headers,
        body: payload.body,
        signal,
      });
      await response.body?.cancel();
      if (!response.ok) throw new Error(`Webhook endpoint answered HTTP ${response.status}`);
    },
  });
}

/**
 * Delivery through the jobs engine: the requests handed over together are enqueued in one
 * statement (`enqueueMany`), one durable job per request.
 */
export function createJobWebhookDelivery(options: { jobs: Jobs; db: Database }): WebhookDelivery {
  return {
    async deliver(requests) {
      await options.jobs.enqueueMany(
        options.db.kysely,
        WEBHOOK_JOB_NAME,
        requests.map((request) => ({ payload: request })),
      );
    },
  };
}

/**
 * Turns gateway events into Pusher webhooks `{ time_ms, events }` (at most
 * `MAX_EVENTS_PER_WEBHOOK` events each), signed with `X-Pusher-Key` and `X-Pusher-Signature`
 * (HMAC-SHA256 of the body with the app secret), for the app's `webhookUrl`.
 *
 * One hand-over to the delivery is in flight at a time; the events raised meanwhile wait and go
 * together in the next one, so a burst becomes a few large requests and a few statements instead
 * of one job per event. A hand-over that fails (database busy or down) is kept and tried again
 * with backoff: no event is dropped. Past `HIGH_WATER_EVENTS` held events, `backlog()` makes the
 * gateway wait before it handles more frames, until the sink is under `LOW_WATER_EVENTS`.
 */
export function createWebhookSink(options: {
  delivery: WebhookDelivery;
  now: () => number;
  log: Logger;
}): WebhookSink {
  const pending = new Map<string, { app: RealtimeApp; events: WebhookEvent[] }>();
  /** Signed requests whose hand-over failed, tried again first. */
  let unsent: { request: WebhookRequest; events: number }[] = [];
  let held = 0;
  let running: Promise<void> | undefined;
  let retryMs = 0;
  let waiters: (() => void)[] = [];

  const release = () => {
    if (held > LOW_WATER_EVENTS || waiters.length === 0) return;
    const resolved = waiters;
    waiters = [];
    for (const resolve of resolved) resolve();
  };
  const sign = (app: RealtimeApp, events: WebhookEvent[]): WebhookRequest => {
    const body = JSON.stringify({ time_ms: options.now(), events });
    return {
      url: app.webhookUrl as string,
      headers: {
        'content-type': 'application/json',
        'x-pusher-key': app.key,
        'x-pusher-signature': hmacSha256Hex(app.secret, body),
      },
      body,
    };
  };
  const handOver = async () => {
    while (unsent.length > 0 || pending.size > 0) {
      // Events raised meanwhile join this hand-over: a burst costs a few statements and requests.
      await new Promise((resolve) => setTimeout(resolve, LINGER_MS));
      const batch = unsent;
      unsent = [];
      for (const { app, events } of pending.values()) {
        for (let start = 0; start < events.length; start += MAX_EVENTS_PER_WEBHOOK) {
          const chunk = events.slice(start, start + MAX_EVENTS_PER_WEBHOOK);
          batch.push({ request: sign(app, chunk), events: chunk.length });
        }
      }
      pending.clear();
      try {
        await options.delivery.deliver(batch.map((item) => item.request));
        retryMs = 0;
        for (const item of batch) held -= item.events;
        release();
      } catch (error) {
        unsent = [...batch, ...unsent];
        retryMs = Math.min(retryMs === 0 ? RETRY_INITIAL_MS : retryMs * 2, RETRY_MAX_MS);
        options.log.warn(
          { err: error, requests: batch.length, held, retryInMs: retryMs },
          'Realtime webhooks not enqueued yet; kept and tried again',
        );
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    }
  };
  const start = () => {
    running ??= handOver().finally(() => {
      running = undefined;
      if (pending.size > 0 || unsent.length > 0) start();
    });
  };
  return {
    notify(app, event) {
      if (app.webhookUrl === undefined) return;
      let batch = pending.get(app.id);
      if (batch === undefined) {
        batch = { app, events: [] };
        pending.set(app.id, batch);
      }
      batch.events.push(event);
      held++;
      start();
    },
    backlog() {
      if (held <= HIGH_WATER_EVENTS && waiters.length === 0) return undefined;
      return new Promise<void>((resolve) => {
        waiters.push(resolve);
        release();
      });
    },
    async drain(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        (async () => {
          while (running !== undefined) await running;
        })(),
        new Promise((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (held > 0) options.log.error({ events: held }, 'Realtime webhooks not enqueued before the stop');
    },
  };
}
