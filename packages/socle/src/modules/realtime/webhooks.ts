import type { RealtimeApp } from './apps.js';

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
