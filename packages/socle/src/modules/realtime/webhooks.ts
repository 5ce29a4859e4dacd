import { Type } from '@fastify/type-provider-typebox';
import type { Database } from '../../kernel/db/index.js';
import type { Logger } from '../../kernel/log/index.js';
import { defineJob, type JobBackoff, type Jobs } from '../../kernel/queue/index.js';
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
}

export const noWebhooks: WebhookSink = { notify() {} };

/** One signed webhook request, ready to send. */
export interface WebhookRequest {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Sends webhook requests, retrying failed ones. */
export interface WebhookDelivery {
  deliver(request: WebhookRequest): void;
}

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

/** Delivery through the jobs engine: each request is one job, enqueued on its own. */
export function createJobWebhookDelivery(options: {
  jobs: Jobs;
  db: Database;
  log: Logger;
}): WebhookDelivery {
  return {
    deliver(request) {
      options.jobs
        .enqueue(options.db.kysely, WEBHOOK_JOB_NAME, request)
        .catch((error) =>
          options.log.error({ err: error, url: request.url }, 'Realtime webhook could not be enqueued'),
        );
    },
  };
}

/**
 * Turns gateway events into Pusher webhooks: events of one app raised in the same tick are sent
 * in one request `{ time_ms, events }`, signed with `X-Pusher-Key` and `X-Pusher-Signature`
 * (HMAC-SHA256 of the body with the app secret), to the app's `webhookUrl`.
 */
export function createWebhookSink(options: { delivery: WebhookDelivery; now: () => number }): WebhookSink {
  const pending = new Map<string, { app: RealtimeApp; events: WebhookEvent[] }>();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const batches = [...pending.values()];
    pending.clear();
    for (const { app, events } of batches) {
      if (app.webhookUrl === undefined) continue;
      const body = JSON.stringify({ time_ms: options.now(), events });
      options.delivery.deliver({
        url: app.webhookUrl,
        headers: {
          'content-type': 'application/json',
          'x-pusher-key': app.key,
          'x-pusher-signature': hmacSha256Hex(app.secret, body),
        },
        body,
      });
    }
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
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
}
