import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createSilentLogger, requireUser } from '../src/index.js';
import { defineModule } from '../src/kernel/modules/index.js';
import { createRedisSharedState, NODE_EXPIRY_MS } from '../src/kernel/shared-state/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createRealtimeModule, type Realtime } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { redisUnavailable, testRedisUrl } from '../src/testing/test-redis.js';
import type { TestUser } from './support/api-client.js';
import { postgresTarget } from './support/each-database.js';
import {
  limitedRealtimeApp,
  nextEvent,
  type PresenceChannel,
  type PusherJs,
  pusherClient,
  pusherServer,
  RawPusherSocket,
  testRealtimeApp,
} from './support/realtime-clients.js';

const rooms = defineModule({
  name: 'rooms',
  dependsOn: ['realtime'],
  channels: { 'presence-room-{roomId}': (request) => ({ userInfo: { id: requireUser(request).userId } }) },
});

// Two nodes share one database (Postgres: PGlite is one process) and one Redis.
const skipReason = !postgresTarget.available ? postgresTarget.reason : redisUnavailable;
describe.skipIf(skipReason !== undefined)(
  `Realtime across two nodes sharing Redis [postgres + redis${skipReason ? `: ${skipReason}` : ''}]`,
  () => {
    const app = testRealtimeApp('-redis');
    /** An app of two connections at most, across the fleet. */
    const limitedApp = limitedRealtimeApp(app, 2);
    const raws: RawPusherSocket[] = [];
    const raw = (node: number) => {
      const created = new RawPusherSocket((nodes[node] as { url: string }).url, limitedApp.key);
      raws.push(created);
      return created;
    };
    const nodes: { socle: TestSocle; realtime: Realtime; url: string }[] = [];
    const clients: PusherJs[] = [];
    let alice: TestUser;
    let bob: TestUser;
    const client = (node: number, token: string) => {
      const created = pusherClient((nodes[node] as { url: string }).url, app, token);
      clients.push(created);
      return created;
    };

    beforeAll(async () => {
      for (let index = 0; index < 2; index++) {
        const realtimeModule = createRealtimeModule({ apps: [limitedApp] });
        const socle = await createTestSocle(postgresTarget, {
          config: { redisUrl: testRedisUrl },
          settings: { realtime: app },
          ...(nodes[0] ? { database: nodes[0].socle.database } : {}),
          modules: [
            createIdentityModule({ rateLimits: false }),
            createMailModule(),
            createTenancyModule(),
            realtimeModule,
            rooms,
          ],
        });
        nodes.push({ socle, realtime: socle.servicesOf(realtimeModule), url: await socle.listen() });
      }
      alice = await (nodes[0] as { socle: TestSocle }).socle.newUser({
        email: `alice-redis-${Date.now()}@example.com`,
      });
      bob = await (nodes[0] as { socle: TestSocle }).socle.newUser({
        email: `bob-redis-${Date.now()}@example.com`,
      });
    });
    afterAll(async () => {
      for (const created of clients) created.disconnect();
      for (const created of raws) created.close();
      // The second node shares the first one's database: close it first, then drop with the first.
      for (const node of [...nodes].reverse()) await node.socle.dispose();
    });

    it('delivers an event published on one node to a subscriber on the other', async () => {
      const subscriber = client(1, bob.token);
      const channel = subscriber.subscribe('news');
      await nextEvent(channel, 'pusher:subscription_succeeded');
      const received = nextEvent(channel, 'headline');
      await pusherServer((nodes[0] as { url: string }).url, app).trigger('news', 'headline', { text: 'hi' });
      expect(await received).toEqual({ text: 'hi' });
    });

    it('keeps one presence list across nodes: joins, counts and leaves seen from both', async () => {
      const onA = client(0, alice.token).subscribe('presence-room-shared') as PresenceChannel;
      await nextEvent(onA, 'pusher:subscription_succeeded');
      const added = nextEvent<{ id: string }>(onA, 'pusher:member_added');
      const bobClient = client(1, bob.token);
      const onB = bobClient.subscribe('presence-room-shared') as PresenceChannel;
      await nextEvent(onB, 'pusher:subscription_succeeded');
      expect(onB.members.count).toBe(2);
      expect((await added).id).toBe(bob.userId);

      for (const node of nodes) {
        const response = await pusherServer(node.url, app).get({
          path: '/channels/presence-room-shared',
          params: { info: 'user_count,subscription_count' },
        });
        expect(await response.json()).toEqual({ occupied: true, user_count: 2, subscription_count: 2 });
      }

      const removed = nextEvent<{ id: string }>(onA, 'pusher:member_removed');
      bobClient.disconnect();
      expect((await removed).id).toBe(bob.userId);
      expect(onA.members.count).toBe(1);
    });

    it("limits an app's connections across the fleet: sockets on one node count on the other", async () => {
      const [a, b] = nodes as unknown as [{ realtime: Realtime }, { realtime: Realtime }];
      const onA = [raw(0), raw(0)];
      await Promise.all(onA.map((socket) => socket.socketId()));
      // Each node publishes its count as it changes; the other sees it once written.
      await vi.waitFor(async () => expect(await b.realtime.fleetConnectionCount(limitedApp.id)).toBe(2));
      expect((await raw(1).closed).code).toBe(4004);
      expect((await raw(0).closed).code).toBe(4004);

      onA[0]?.close();
      await onA[0]?.closed;
      await vi.waitFor(async () => expect(await b.realtime.fleetConnectionCount(limitedApp.id)).toBe(1));
      const onB = raw(1);
      expect(await onB.socketId()).toMatch(/^\d+\.\d+$/);
      await vi.waitFor(async () => expect(await a.realtime.fleetConnectionCount(limitedApp.id)).toBe(2));
      expect((await raw(0).closed).code).toBe(4004);
    });

    it('removes the members of a node that stopped heartbeating', async () => {
      // A node whose last heartbeat is older than the expiry, holding one member: a crashed node.
      const ghost = createRedisSharedState({
        redisUrl: testRedisUrl,
        nodeId: `ghost-${Date.now()}`,
        now: () => Date.now() - NODE_EXPIRY_MS - 1000,
        log: createSilentLogger(),
      });
      await ghost.join(app.appId, 'presence-room-ghost', '1.2', { userId: 'ghost-user' }, 100);
      await ghost.occupy(app.appId, 'presence-room-ghost', 1);
      await ghost.close();
      const onA = client(0, alice.token).subscribe('presence-room-ghost') as PresenceChannel;
      await nextEvent(onA, 'pusher:subscription_succeeded');
      expect(onA.members.count).toBe(2);
      const members = await pusherServer((nodes[1] as { url: string }).url, app).get({
        path: '/channels/presence-room-ghost/users',
      });
      expect(((await members.json()) as { users: { id: string }[] }).users).toHaveLength(2);

      const removed = nextEvent<{ id: string }>(onA, 'pusher:member_removed');
      await (nodes[1] as { realtime: Realtime }).realtime.sweepDeadNodes();
      expect((await removed).id).toBe('ghost-user');
      expect(onA.members.count).toBe(1);
      const after = await pusherServer((nodes[0] as { url: string }).url, app).get({
        path: '/channels/presence-room-ghost',
        params: { info: 'user_count,subscription_count' },
      });
      expect(await after.json()).toEqual({ occupied: true, user_count: 1, subscription_count: 1 });
    });
  },
);
