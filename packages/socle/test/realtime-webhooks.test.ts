import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, it } from 'vitest';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { channelAuth, createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { pusherServer, RawPusherSocket, testRealtimeApp } from './support/realtime-clients.js';

describeEachDatabase('Realtime: webhooks', (target) => {
  it('posts signed Pusher webhooks the pusher SDK verifies, as jobs retried when delivery fails', async () => {
    const received: { name: string; channel: string; user_id?: string }[] = [];
    let requests = 0;
    let invalid = 0;
    let waiter: (() => void) | undefined;
    const receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        // The first delivery fails: the event must come again.
        if (++requests === 1) {
          response.writeHead(500).end();
          return;
        }
        const webhook = pusherServer('http://127.0.0.1:1', app).webhook({
          headers: request.headers as Record<string, string>,
          rawBody: Buffer.concat(chunks).toString(),
        });
        if (webhook.isValid()) received.push(...(webhook.getEvents() as typeof received));
        else invalid++;
        response.writeHead(200).end();
        waiter?.();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.address() as AddressInfo;
    const app = testRealtimeApp('-hooks');
    const socle = await createTestSocle(target, {
      // Retried jobs send no NOTIFY: a short poll picks the retry up quickly.
      config: { jobsPollIntervalMs: 100 },
      settings: { realtime: { ...app, webhookUrl: `http://127.0.0.1:${port}/pusher/webhooks` } },
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createRealtimeModule({ webhookBackoff: { initialDelayMs: 10, maxDelayMs: 50 } }),
      ],
    });
    const until = async (predicate: () => boolean) => {
      while (!predicate()) await new Promise<void>((resolve) => (waiter = resolve));
    };
    const names = () => received.map((event) => `${event.name}:${event.channel}`);
    try {
      const baseUrl = await socle.listen();
      const socket = new RawPusherSocket(baseUrl, app.appKey);
      const socketId = await socket.socketId();
      const channelData = JSON.stringify({ user_id: 'u1' });
      socket.send({
        event: 'pusher:subscribe',
        data: {
          channel: 'presence-hooks',
          auth: channelAuth(
            { key: app.appKey, secret: app.appSecret },
            socketId,
            'presence-hooks',
            channelData,
          ),
          channel_data: channelData,
        },
      });
      await socket.next('pusher_internal:subscription_succeeded');
      socket.send({ event: 'client-move', channel: 'presence-hooks', data: { x: 1 } });
      socket.send({ event: 'pusher:subscribe', data: { channel: 'cache-hooks' } });
      await socket.next('pusher:cache_miss');
      socket.send({ event: 'pusher:unsubscribe', data: { channel: 'presence-hooks' } });
      const expected = [
        'channel_occupied:presence-hooks',
        'member_added:presence-hooks',
        'client_event:presence-hooks',
        'channel_occupied:cache-hooks',
        'cache_miss:cache-hooks',
        'member_removed:presence-hooks',
        'channel_vacated:presence-hooks',
      ];
      // The first request (channel_occupied, member_added) was refused: they arrive by a retry.
      await until(() => expected.every((name) => names().includes(name)));
      expect(names().sort()).toEqual(expected.sort());
      expect(requests).toBeGreaterThan(1);
      expect(received.find((event) => event.name === 'member_added')?.user_id).toBe('u1');
      expect(invalid).toBe(0);
      socket.close();
    } finally {
      await socle.dispose();
      receiver.close();
    }
  });
});
