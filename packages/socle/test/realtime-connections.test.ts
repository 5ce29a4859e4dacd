import { expect, it, vi } from 'vitest';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { RawPusherSocket, testRealtimeApp } from './support/realtime-clients.js';

import { useRealtimeServer } from './support/realtime-server.js';

describeEachDatabase('Realtime: connections of the Pusher protocol with real clients', (target) => {
  const server = useRealtimeServer(target);

  it('greets a connection with a socket id and the activity timeout, and answers pings', async () => {
    const socket = server.raw();
    const established = await socket.next('pusher:connection_established');
    const data = JSON.parse(established.data as string);
    expect(data.socket_id).toMatch(/^\d+\.\d+$/);
    expect(data.activity_timeout).toBe(120);
    socket.send({ event: 'pusher:ping', data: {} });
    expect((await socket.next('pusher:pong')).event).toBe('pusher:pong');
  });

  it('refuses an unknown app key with 4001 and a missing protocol with 4008', async () => {
    const unknown = server.raw(undefined, 'no-such-key');
    expect((await unknown.closed).code).toBe(4001);
    const noProtocol = server.raw('client=raw');
    expect((await noProtocol.closed).code).toBe(4008);
  });

  it('refuses connections of an app beyond its limit with 4004, and accepts again once one left', async () => {
    const first = server.raw(undefined, server.limitedApp.key);
    await first.socketId();
    expect(await server.realtime.fleetConnectionCount(server.limitedApp.id)).toBe(1);
    const second = server.raw(undefined, server.limitedApp.key);
    expect((await second.closed).code).toBe(4004);
    first.close();
    await first.closed;
    await vi.waitFor(async () =>
      expect(await server.realtime.fleetConnectionCount(server.limitedApp.id)).toBe(0),
    );
    const third = server.raw(undefined, server.limitedApp.key);
    expect(await third.socketId()).toMatch(/^\d+\.\d+$/);
  });

  it('closes a socket that sends malformed frames with 4002 and keeps serving others', async () => {
    const bad = server.raw();
    await bad.socketId();
    bad.send('this is not json');
    expect((await bad.closed).code).toBe(4002);

    const good = server.raw();
    await good.socketId();
    good.send({ event: 'pusher:ping', data: {} });
    await good.next('pusher:pong');
  });

  it('pings a silent socket and closes it with 4201 when it never answers', async () => {
    const silent = server.raw();
    await silent.socketId();
    server.clock.advance(120_000);
    server.realtime.checkActivity();
    await silent.next('pusher:ping');
    server.clock.advance(30_000);
    server.realtime.checkActivity();
    expect((await silent.closed).code).toBe(4201);
  });
});

describeEachDatabase('Realtime: shutdown', (target) => {
  it('closes every socket with 4200 (reconnect now) when Socle stops', async () => {
    const app = testRealtimeApp();
    const socle = await createTestSocle(target, {
      settings: { realtime: app },
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createRealtimeModule(),
      ],
    });
    const baseUrl = await socle.listen();
    const socket = new RawPusherSocket(baseUrl, app.appKey);
    await socket.socketId();
    const result = await socle.dispose().then(() => socket.closed);
    expect(result.code).toBe(4200);
  });
});
