/** The realtime module: the Pusher Channels protocol, channel authorization, HTTP API, fan-out over the bus. */
export type { AppDirectory, RealtimeApp } from './apps.js';
export type { SocketClosedHandler } from './gateway.js';
export type { ClientEventHandler, ReceivedClientEvent } from './gateway-client-events.js';
export { type LatencyEstimate, monotonicNow } from './gateway-latency.js';
export type { ConsoleNotice, OperatorFeedEvents } from './operator-feed.js';
export { channelAuth, channelType, encodeFrame, userAuth } from './protocol.js';
export {
  createRealtimeModule,
  type Realtime,
  type RealtimeModule,
  type RealtimeOptions,
} from './realtime.module.js';
export { type RealtimeChannelRule, type RealtimeSettings, realtimeSettings } from './realtime.settings.js';
export {
  createJobWebhookDelivery,
  createWebhookSink,
  defineWebhookJob,
  WEBHOOK_JOB_NAME,
  type WebhookDelivery,
  type WebhookEvent,
  type WebhookRequest,
  type WebhookSink,
} from './webhooks.js';
