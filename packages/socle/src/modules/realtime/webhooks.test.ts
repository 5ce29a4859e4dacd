import { describe, expect, it } from 'vitest';
import { createSilentLogger } from '../../kernel/log/index.js';
import type { RealtimeApp } from './apps.js';
import { createWebhookSink, MAX_EVENTS_PER_WEBHOOK, type WebhookRequest } from './webhooks.js';

const app: RealtimeApp = {
  id: 'app',
  key: 'key',
  secret: 'secret',
  encryptionMasterKey: undefined,
  orgId: null,
  maxConnections: 0,
  clientEventsPerSecond: 10,
  backendEventsPerSecond: 0,
  webhookUrl: 'http://127.0.0.1:1/hooks',
};

describe('the webhook sink', () => {
  it('keeps events whose hand-over failed and hands them over again, each once, in batches', async () => {
    const delivered: WebhookRequest[] = [];
    let failures = 0;
    const sink = createWebhookSink({
      now: () => 0,
      log: createSilentLogger(),
      delivery: {
        async deliver(requests) {
          // The database refuses the first three hand-overs (a pool exhausted, an outage).
          if (++failures <= 3) throw new Error('pool exhausted');
          delivered.push(...requests);
        },
      },
    });
    for (let index = 0; index < 1000; index++)
      sink.notify(app, { name: 'channel_occupied', channel: `c-${index}` });
    await sink.drain?.(10_000);
    const channels = delivered.flatMap(
      (request) => (JSON.parse(request.body) as { events: { channel: string }[] }).events,
    );
    expect(channels.map((event) => event.channel).sort()).toEqual(
      Array.from({ length: 1000 }, (_, index) => `c-${index}`).sort(),
    );
    expect(delivered).toHaveLength(1000 / MAX_EVENTS_PER_WEBHOOK);
  });

  it('makes the gateway wait while it holds too many events, and lets it go once handed over', async () => {
    let release: (() => void) | undefined;
    const sink = createWebhookSink({
      now: () => 0,
      log: createSilentLogger(),
      delivery: { deliver: () => new Promise<void>((resolve) => (release = resolve)) },
    });
    expect(sink.backlog?.()).toBeUndefined();
    for (let index = 0; index < 20_001; index++)
      sink.notify(app, { name: 'channel_occupied', channel: `c-${index}` });
    const backlog = sink.backlog?.();
    expect(backlog).toBeInstanceOf(Promise);
    let waited = true;
    void backlog?.then(() => (waited = false));
    while (release === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(waited).toBe(true);
    release();
    await backlog;
    expect(sink.backlog?.()).toBeUndefined();
  });
});
