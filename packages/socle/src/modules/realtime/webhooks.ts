import type { Logger } from '../../kernel/log/index.js';
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

/**
 * Sends webhook requests with retries. TEMPORARY: the in-process implementation below retries
 * from memory (a node that stops loses its pending retries); it is to be replaced by a job of the
 * jobs engine (issue 4) once that engine is merged, keeping this interface.
 */
export interface WebhookDelivery {
  deliver(request: WebhookRequest): void;
  /** Stops retrying; requests still pending are dropped (logged). */
  close(): Promise<void>;
}

/** Backoff between attempts: 1 s, 2 s, 4 s, 8 s, 16 s (six attempts in all). */
export const DEFAULT_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16_000] as const;

/** In-process delivery: `fetch` with a timeout, retried on network errors and non-2xx answers. */
export function createInProcessWebhookDelivery(options: {
  log: Logger;
  retryDelaysMs?: readonly number[];
  timeoutMs?: number;
}): WebhookDelivery {
  const delays = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS;
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const attempt = async (request: WebhookRequest, attemptNumber: number): Promise<void> => {
    if (closed) return;
    let failure: string;
    try {
      const response = await fetch(request.url, {
        method: 'POST',
        headers: request.headers,
        body: request.body,
        signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      });
      await response.body?.cancel();
      if (response.ok) return;
      failure = `HTTP ${response.status}`;
    } catch (error) {
      failure = (error as Error).message;
    }
    const delay = delays[attemptNumber];
    if (delay === undefined || closed) {
      options.log.warn(
        { url: request.url, attempts: attemptNumber + 1, failure },
        'Realtime webhook dropped',
      );
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      void attempt(request, attemptNumber + 1);
    }, delay);
    timer.unref();
    timers.add(timer);
  };
  return {
    deliver(request) {
      void attempt(request, 0);
    },
    async close() {
      closed = true;
      if (timers.size > 0)
        options.log.warn({ pending: timers.size }, 'Realtime webhooks dropped at shutdown');
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
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
