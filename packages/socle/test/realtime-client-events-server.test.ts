import { expect, it } from 'vitest';
import type { ReceivedClientEvent } from '../src/index.js';
import { monotonicNow } from '../src/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { nextEvent } from './support/realtime-clients.js';
import { useRealtimeServer } from './support/realtime-server.js';

describeEachDatabase('Realtime: client events and latency for server code', (target) => {
  const server = useRealtimeServer(target);

  it('hands every client event to server code with its sender, arrival instant and measured latency', async () => {
    const received: ReceivedClientEvent[] = [];
    const stop = server.realtime.onClientEvent((event) => {
      received.push(event);
    });
    try {
      const client = server.client(server.alice.token);
      const channel = client.subscribe(`private-notes-${server.alice.userId}`);
      await nextEvent(channel, 'pusher:subscription_succeeded');
      const socketId = client.connection.socket_id as string;

      // Before any probe the socket has no estimate; three probes give three samples (pusher-js
      // answers each server ping with a pong).
      expect(server.realtime.latency(socketId)).toBeUndefined();
      expect(server.realtime.probeLatency(socketId, 3)).toBe(true);
      expect(server.realtime.probeLatency('1.2', 3)).toBe(false); // not a socket of this node
      await expect.poll(() => server.realtime.latency(socketId)?.samples, { timeout: 5000 }).toBe(3);
      const latency = server.realtime.latency(socketId);
      expect(latency?.rttMs).toBeGreaterThanOrEqual(latency?.minRttMs ?? Number.NaN);
      expect(latency?.oneWayMs).toBe((latency?.rttMs ?? 0) / 2);

      const before = monotonicNow();
      channel.trigger('client-buzz', { question: 7 });
      await expect.poll(() => received.length, { timeout: 5000 }).toBe(1);
      expect(received[0]).toMatchObject({
        channel: `private-notes-${server.alice.userId}`,
        event: 'client-buzz',
        data: '{"question":7}',
        socketId,
        latency: { samples: 3 },
      });
      expect(received[0]?.receivedAt).toBeGreaterThanOrEqual(before);
      expect(received[0]?.receivedAt).toBeLessThanOrEqual(monotonicNow());
    } finally {
      stop();
    }
  });

  it("tells server code the key clients connect with (a module's web client learns it from its API)", async () => {
    expect(await server.realtime.clientKey()).toBe(server.app.appKey);
    expect(await server.realtime.clientKey(server.limitedApp.id)).toBe(server.limitedApp.key);
    expect(await server.realtime.clientKey('no-such-app')).toBeUndefined();
  });

  it('tells server code when a socket closed, with the user it signed in as', async () => {
    const closed: { socketId: string; userId: string | undefined }[] = [];
    const stop = server.realtime.onSocketClosed(({ socketId, userId }) => closed.push({ socketId, userId }));
    try {
      const client = server.client(server.alice.token);
      client.signin();
      await expect
        .poll(() => client.user.serverToUserChannel?.subscribed ?? false, { timeout: 5000 })
        .toBe(true);
      const socketId = client.connection.socket_id as string;
      client.disconnect();
      await expect
        .poll(() => closed.find((entry) => entry.socketId === socketId), { timeout: 5000 })
        .toEqual({
          socketId,
          userId: server.alice.userId,
        });
    } finally {
      stop();
    }
  });

  it('names the sender: the presence member, else the signed-in user; ignores unsolicited pongs', async () => {
    const received: ReceivedClientEvent[] = [];
    const stop = server.realtime.onClientEvent((event) => {
      received.push(event);
    });
    try {
      const presence = server.client(server.bob.token);
      const room = presence.subscribe('presence-room-lobby');
      await nextEvent(room, 'pusher:subscription_succeeded');
      room.trigger('client-hello', 'hi');
      await expect.poll(() => received.length, { timeout: 5000 }).toBe(1);
      expect(received[0]).toMatchObject({ userId: server.bob.userId, data: 'hi' });

      const signedIn = server.client(server.alice.token);
      signedIn.signin();
      await expect
        .poll(() => signedIn.user.serverToUserChannel?.subscribed ?? false, { timeout: 5000 })
        .toBe(true);
      const chat = signedIn.subscribe('private-chat-1');
      await nextEvent(chat, 'pusher:subscription_succeeded');
      chat.trigger('client-message', { text: 'x' });
      await expect.poll(() => received.length, { timeout: 5000 }).toBe(2);
      expect(received[1]).toMatchObject({ userId: server.alice.userId, channel: 'private-chat-1' });

      // A pong nobody asked for is no sample: a client cannot make itself look faster than its path.
      const raw = server.raw();
      const rawId = await raw.socketId();
      raw.send({ event: 'pusher:pong', data: {} });
      raw.send({ event: 'pusher:ping', data: {} });
      await raw.next('pusher:pong');
      expect(server.realtime.latency(rawId)).toBeUndefined();
    } finally {
      stop();
    }
  });
});
