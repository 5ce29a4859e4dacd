import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { RawPusherSocket, testRealtimeApp } from './support/realtime-clients.js';

const LIMIT = 20;

// The app key is public (it ships in every pusher-js page): one socket subscribing to thousands of
// channels must not make the cluster hold thousands of channels, state writes and webhooks for it.
describeEachDatabase('Realtime: channels per connection are capped', (target) => {
  const app = testRealtimeApp('-channel-limit');
  let socle: TestSocle;
  let url: string;
  const sockets: RawPusherSocket[] = [];
  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: createBuiltInModules(),
      settings: { realtime: { ...app, maxChannelsPerConnection: LIMIT } },
    });
    url = await socle.listen();
  });
  afterAll(async () => {
    for (const socket of sockets) socket.close();
    await socle?.dispose();
  });

  it('refuses subscriptions past the limit in one burst with LimitReached, and keeps the socket', async () => {
    const socket = new RawPusherSocket(url, app.appKey);
    sockets.push(socket);
    await socket.socketId();
    const burst = 3 * LIMIT;
    for (let index = 0; index < burst; index++)
      socket.send({ event: 'pusher:subscribe', data: { channel: `burst-${index}` } });
    socket.send({ event: 'pusher:ping', data: {} });
    await socket.next('pusher:pong');
    const answers = (event: string) => socket.frames.filter((frame) => frame.event === event);
    expect(answers('pusher_internal:subscription_succeeded')).toHaveLength(LIMIT);
    const refused = answers('pusher:subscription_error');
    expect(refused).toHaveLength(burst - LIMIT);
    expect(refused[0]?.data).toMatchObject({ type: 'LimitReached', status: 403 });

    // Leaving a channel frees a place.
    socket.send({ event: 'pusher:unsubscribe', data: { channel: 'burst-0' } });
    socket.send({ event: 'pusher:subscribe', data: { channel: 'after-leaving' } });
    socket.send({ event: 'pusher:ping', data: {} });
    await new Promise((resolve) => setTimeout(resolve, 0));
    await expect.poll(() => socket.frames.some((frame) => frame.channel === 'after-leaving')).toBe(true);
    expect(socket.frames.find((frame) => frame.channel === 'after-leaving')?.event).toBe(
      'pusher_internal:subscription_succeeded',
    );
  });
});
