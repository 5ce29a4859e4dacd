import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { channelAuth, createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { redisUnavailable, testRedisUrl } from '../src/testing/test-redis.js';
import { postgresTarget } from './support/each-database.js';
import { pusherServer, RawPusherSocket, testRealtimeApp } from './support/realtime-clients.js';
import { webhookReceiver } from './support/webhook-receiver.js';

/** Subscribe/unsubscribe pairs and joined channels per client (the issue's shape: 1,000 each). */
const PAIRS = 1000;

// Two nodes share one Postgres (PGlite is one process) and one Redis, as in production.
const skipReason = !postgresTarget.available ? postgresTarget.reason : redisUnavailable;
describe.skipIf(skipReason !== undefined)(
  `Realtime under a burst on two nodes [postgres + redis${skipReason ? `: ${skipReason}` : ''}]`,
  () => {
    const app = testRealtimeApp('-burst');
    const signer = { key: app.appKey, secret: app.appSecret };
    const nodes: { socle: TestSocle; url: string }[] = [];
    const sockets: RawPusherSocket[] = [];
    let receiver: Awaited<ReturnType<typeof webhookReceiver>>;
    const raw = (node: number) => {
      const created = new RawPusherSocket((nodes[node] as { url: string }).url, app.appKey);
      sockets.push(created);
      return created;
    };

    beforeAll(async () => {
      receiver = await webhookReceiver(app);
      for (let index = 0; index < 2; index++) {
        const socle = await createTestSocle(postgresTarget, {
          config: { redisUrl: testRedisUrl },
          settings: {
            realtime: {
              ...app,
              webhookUrl: receiver.url,
              // Each client joins PAIRS channels on one socket, past the default cap.
              maxChannelsPerConnection: PAIRS,
            },
          },
          ...(nodes[0] ? { database: nodes[0].socle.database } : {}),
          modules: [
            createIdentityModule({ rateLimits: false }),
            createMailModule(),
            createTenancyModule(),
            createRealtimeModule(),
          ],
        });
        nodes.push({ socle, url: await socle.listen() });
      }
    });
    afterAll(async () => {
      for (const socket of sockets) socket.close();
      for (const node of [...nodes].reverse()) await node.socle.dispose();
      await receiver?.close();
    });

    it('delivers every channel_occupied and channel_vacated webhook of 2 × 1,000 pairs and 2 × 1,000 joins, signed, exactly once', {
      timeout: 120_000,
    }, async () => {
      const started = performance.now();
      const clients = [raw(0), raw(1)];
      await Promise.all(clients.map((socket) => socket.socketId()));
      await Promise.all(
        clients.map(async (socket, client) => {
          for (let index = 0; index < PAIRS; index++) {
            const channel = `burst-${client}-pair-${index}`;
            socket.send({ event: 'pusher:subscribe', data: { channel } });
            socket.send({ event: 'pusher:unsubscribe', data: { channel } });
          }
          // Frames of a socket are handled in order: this one's answer means the pairs are done.
          socket.send({ event: 'pusher:subscribe', data: { channel: `burst-${client}-join-0` } });
          for (let index = 1; index < PAIRS; index++) {
            socket.send({ event: 'pusher:subscribe', data: { channel: `burst-${client}-join-${index}` } });
          }
          await vi.waitFor(
            () =>
              expect(
                socket.frames.filter((frame) => frame.event === 'pusher_internal:subscription_succeeded'),
              ).toHaveLength(2 * PAIRS),
            { timeout: 60_000, interval: 50 },
          );
        }),
      );
      const handled = performance.now() - started;
      for (const socket of clients) socket.close();
      await Promise.all(clients.map((socket) => socket.closed));

      const expected = 4 * PAIRS;
      await vi.waitFor(
        () => {
          expect(receiver.count('channel_occupied')).toBe(expected);
          expect(receiver.count('channel_vacated')).toBe(expected);
        },
        { timeout: 90_000, interval: 100 },
      );
      const delivered = performance.now() - started;
      // Nothing more arrives later: each event came exactly once.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(receiver.count('channel_occupied')).toBe(expected);
      expect(receiver.count('channel_vacated')).toBe(expected);
      for (const [key, times] of receiver.events) expect(times, key).toBe(1);
      expect(receiver.stats().invalid).toBe(0);
      // Batched as Pusher does: many events per request, not one job and request per event.
      expect(receiver.stats().requests).toBeLessThan(expected / 10);
      console.info(
        `realtime burst: ${4 * PAIRS} subscribe frames handled in ${handled.toFixed(0)} ms, ${2 * expected} webhook events delivered after ${delivered.toFixed(0)} ms in ${receiver.stats().requests} requests`,
      );
    });

    it.each([
      ['on one node', 1],
      ['across two nodes', 2],
    ])('keeps a presence channel to 100 members when 120 join at once %s', async (_where, spread) => {
      const channel = `presence-crowd-${spread}`;
      const joiners = Array.from({ length: 120 }, (_, index) => raw(index % spread));
      const results = await Promise.all(
        joiners.map(async (socket, index) => {
          const socketId = await socket.socketId();
          const channelData = JSON.stringify({ user_id: `crowd-${index}` });
          socket.send({
            event: 'pusher:subscribe',
            data: {
              channel: channel,
              auth: channelAuth(signer, socketId, channel, channelData),
              channel_data: channelData,
            },
          });
          return Promise.race([
            socket.next('pusher_internal:subscription_succeeded'),
            socket.next('pusher:subscription_error'),
          ]);
        }),
      );
      const accepted = results.filter((frame) => frame.event === 'pusher_internal:subscription_succeeded');
      expect(accepted).toHaveLength(100);
      for (const node of nodes) {
        const users = await pusherServer(node.url, app).get({ path: `/channels/${channel}/users` });
        expect(((await users.json()) as { users: unknown[] }).users).toHaveLength(100);
      }
      for (const socket of joiners) socket.close();
    });

    it('lists a channel named __proto__ from the shared state', async () => {
      const socket = raw(0);
      await socket.socketId();
      socket.send({ event: 'pusher:subscribe', data: { channel: '__proto__' } });
      await socket.next('pusher_internal:subscription_succeeded');
      const response = await pusherServer((nodes[1] as { url: string }).url, app).get({
        path: '/channels',
        params: { filter_by_prefix: '__' },
      });
      expect(await response.json()).toEqual({ channels: Object.fromEntries([['__proto__', {}]]) });
      socket.close();
    });
  },
);
