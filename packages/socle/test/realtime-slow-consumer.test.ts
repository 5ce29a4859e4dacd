import type { Socket } from 'node:net';
import { expect, it, vi } from 'vitest';
import { createLogger } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { channelAuth, createRealtimeModule, type WebhookEvent } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { pusherServer, RawPusherSocket, testRealtimeApp } from './support/realtime-clients.js';

/** The limit of these tests: small, so little has to be sent once the kernel's buffers are full. */
const LIMIT = 64 * 1024;
/** ≈ 10 KB per event: loopback's kernel buffers take several MB before Node holds anything. */
const PADDING = 'x'.repeat(10_000);
/** Publishes stop here if the server never closes the stalled socket (then the test fails). */
const MAX_EVENTS = 6000;

describeEachDatabase('Realtime: slow consumers', (target) => {
  async function startServer() {
    const app = testRealtimeApp();
    const webhooks: WebhookEvent[] = [];
    const logLines: Record<string, unknown>[] = [];
    const log = createLogger(
      { logLevel: 'warn', logFormat: 'json' },
      { write: (line: string) => logLines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const realtimeModule = createRealtimeModule({
      webhooks: { notify: (_app, event) => webhooks.push(event) },
    });
    const socle = await createTestSocle(target, {
      log,
      settings: { realtime: { ...app, maxBufferedBytes: LIMIT } },
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        realtimeModule,
      ],
    });
    const realtime = socle.servicesOf(realtimeModule);
    const baseUrl = await socle.listen();
    // The server side of each client's connection (by its `client` query parameter): what Node
    // holds for a socket is read there.
    const onServer = new Map<string, Socket>();
    socle.app.server.on('upgrade', (request, socket) => {
      const client = new URL(request.url ?? '/', baseUrl).searchParams.get('client');
      if (client !== null) onServer.set(client, socket as Socket);
    });
    const sockets: RawPusherSocket[] = [];
    const connect = async (client: string) => {
      const socket = new RawPusherSocket(baseUrl, app.appKey, `protocol=7&client=${client}&version=1`);
      sockets.push(socket);
      return { socket, socketId: await socket.socketId() };
    };
    const joinPresence = async (client: string, userId: string) => {
      const { socket, socketId } = await connect(client);
      const channelData = JSON.stringify({ user_id: userId });
      const auth = channelAuth(
        { key: app.appKey, secret: app.appSecret },
        socketId,
        'presence-slow',
        channelData,
      );
      socket.send({
        event: 'pusher:subscribe',
        data: { channel: 'presence-slow', auth, channel_data: channelData },
      });
      await socket.next('pusher_internal:subscription_succeeded');
      return { socket, socketId };
    };
    const dispose = async () => {
      for (const socket of sockets) socket.socket.terminate();
      await socle.dispose();
    };
    return { app, socle, realtime, baseUrl, webhooks, logLines, onServer, connect, joinPresence, dispose };
  }

  it('closes a socket that stops reading with 4100 before it holds more than the limit; the others get every event, its presence is removed, new clients work', async () => {
    const server = await startServer();
    const { realtime, socle } = server;
    try {
      const reader = await server.joinPresence('reader', 'reader-user');
      const stalled = await server.joinPresence('stalled', 'stalled-user');
      stalled.socket.send({ event: 'pusher:subscribe', data: { channel: 'only-stalled' } });
      await stalled.socket.next('pusher_internal:subscription_succeeded');
      const stalledOnServer = server.onServer.get('stalled') as Socket;
      expect(realtime.connectionCount()).toBe(2);

      // The client stops reading: the kernel's buffers fill, then Node's.
      stalled.socket.socket.pause();
      let published = 0;
      let mostBuffered = 0;
      while (realtime.connectionCount() === 2 && published < MAX_EVENTS) {
        await realtime.publish({
          channel: 'presence-slow',
          event: 'tick',
          data: { n: published, padding: PADDING },
        });
        published++;
        // Read before the end of the turn, while the writes of this publish are still held.
        mostBuffered = Math.max(mostBuffered, stalledOnServer.writableLength);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(realtime.connectionCount(), `still connected after ${published} events`).toBe(1);
      const frameBytes = Buffer.byteLength(
        JSON.stringify({
          event: 'tick',
          channel: 'presence-slow',
          data: JSON.stringify({ n: published, padding: PADDING }),
        }),
      );
      expect(mostBuffered).toBeGreaterThan(0);
      expect(mostBuffered).toBeLessThanOrEqual(LIMIT + frameBytes);

      // The reader got every event, in order, and saw the stalled member leave.
      const ticks = (socket: RawPusherSocket) =>
        socket.frames
          .filter((frame) => frame.event === 'tick')
          .map((frame) => (JSON.parse(frame.data as string) as { n: number }).n);
      await vi.waitFor(() => expect(ticks(reader.socket)).toHaveLength(published), { timeout: 20_000 });
      expect(ticks(reader.socket)).toEqual(Array.from({ length: published }, (_, n) => n));
      const removed = await reader.socket.next('pusher_internal:member_removed');
      expect(JSON.parse(removed.data as string)).toEqual({ user_id: 'stalled-user' });
      const users = await pusherServer(server.baseUrl, server.app).get({
        path: '/channels/presence-slow/users',
      });
      expect(await users.json()).toEqual({ users: [{ id: 'reader-user' }] });
      expect(server.webhooks).toContainEqual({
        name: 'member_removed',
        channel: 'presence-slow',
        user_id: 'stalled-user',
      });
      expect(server.webhooks).toContainEqual({ name: 'channel_vacated', channel: 'only-stalled' });

      // Once it reads again, the client gets what was queued before the limit (no gap), then 4100.
      stalled.socket.socket.resume();
      const closed = await stalled.socket.closed;
      expect(closed.code).toBe(4100);
      expect(closed.reason).toContain(String(LIMIT));
      const received = ticks(stalled.socket);
      expect(received.length).toBeLessThan(published);
      expect(received).toEqual(Array.from({ length: received.length }, (_, n) => n));

      // Logged once, with the socket and the app; counted.
      const warnings = server.logLines.filter((line) => String(line.msg).includes('slow consumer'));
      expect(warnings).toEqual([
        expect.objectContaining({ socketId: stalled.socketId, appId: server.app.appId }),
      ]);
      const metrics = await socle.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toContain('socle_realtime_slow_disconnects_total 1');

      // A new client connects and receives events.
      const next = await server.connect('next');
      next.socket.send({ event: 'pusher:subscribe', data: { channel: 'after' } });
      await next.socket.next('pusher_internal:subscription_succeeded');
      await realtime.publish({ channel: 'after', event: 'hello', data: 'again' });
      expect(await next.socket.next('hello')).toMatchObject({ channel: 'after', data: 'again' });
    } finally {
      await server.dispose();
    }
  });

  it("closes a socket that stops reading while its own requests' replies pile up (a cache channel's last event, asked again and again)", async () => {
    const server = await startServer();
    try {
      await server.realtime.publish({ channel: 'cache-big', event: 'snapshot', data: PADDING });
      const { socket } = await server.connect('stalled');
      const onServer = server.onServer.get('stalled') as Socket;
      socket.socket.pause();
      let requests = 0;
      let mostBuffered = 0;
      while (server.realtime.connectionCount() === 1 && requests < MAX_EVENTS) {
        // Each subscription is answered with subscription_succeeded and the cached ≈ 10 KB event.
        socket.send({ event: 'pusher:subscribe', data: { channel: 'cache-big' } });
        socket.send({ event: 'pusher:unsubscribe', data: { channel: 'cache-big' } });
        requests++;
        mostBuffered = Math.max(mostBuffered, onServer.writableLength);
        await new Promise((resolve) => setImmediate(resolve));
      }
      await vi.waitFor(() => expect(server.realtime.connectionCount()).toBe(0), { timeout: 20_000 });
      expect(mostBuffered).toBeLessThanOrEqual(LIMIT + Buffer.byteLength(PADDING) + 100);
      // A request sent after the close is ignored: the closed socket joins no channel.
      socket.send({ event: 'pusher:subscribe', data: { channel: 'after-close' } });
      socket.socket.resume();
      expect((await socket.closed).code).toBe(4100);
      const channel = await pusherServer(server.baseUrl, server.app).get({ path: '/channels/after-close' });
      expect(await channel.json()).toMatchObject({ occupied: false });
    } finally {
      await server.dispose();
    }
  });

  it('still delivers an event larger than the limit to a client that keeps up', async () => {
    const server = await startServer();
    try {
      const { socket } = await server.connect('reader');
      socket.send({ event: 'pusher:subscribe', data: { channel: 'large' } });
      await socket.next('pusher_internal:subscription_succeeded');
      const large = 'y'.repeat(LIMIT * 2);
      await server.realtime.publish({ channel: 'large', event: 'big', data: large });
      const outcome = await Promise.race([socket.next('big'), socket.closed]);
      expect(outcome).toMatchObject({ event: 'big', data: large });
      expect(server.realtime.connectionCount()).toBe(1);
    } finally {
      await server.dispose();
    }
  });
});
