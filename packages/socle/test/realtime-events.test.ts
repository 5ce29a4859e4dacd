import { expect, it } from 'vitest';
import { describeEachDatabase } from './support/each-database.js';
import { nextEvent, pusherServer } from './support/realtime-clients.js';

import { useRealtimeServer } from './support/realtime-server.js';

describeEachDatabase('Realtime: events published to subscribers', (target) => {
  const server = useRealtimeServer(target);

  it('delivers an event published with the pusher SDK to a pusher-js subscriber of a public channel', async () => {
    const subscriber = server.client();
    const channel = subscriber.subscribe('scores');
    await nextEvent(channel, 'pusher:subscription_succeeded');
    const received = nextEvent(channel, 'updated');
    await pusherServer(server.baseUrl, server.app).trigger('scores', 'updated', { home: 2, away: 1 });
    expect(await received).toEqual({ home: 2, away: 1 });
  });

  it('delivers events published from server code with realtime.publish (job progress, module events)', async () => {
    const subscriber = server.client(server.alice.token);
    const channel = subscriber.subscribe(`private-notes-${server.alice.userId}`);
    await nextEvent(channel, 'pusher:subscription_succeeded');
    const progress = nextEvent(channel, 'job.progress');
    await server.realtime.publish({
      channel: `private-notes-${server.alice.userId}`,
      event: 'job.progress',
      data: { percent: 40 },
    });
    expect(await progress).toEqual({ percent: 40 });
  });

  it('delivers a burst of events (one turn of the server, one batch call) to every subscriber, complete and in order', async () => {
    const channels = [server.client().subscribe('ticker'), server.client().subscribe('ticker')];
    await Promise.all(channels.map((channel) => nextEvent(channel, 'pusher:subscription_succeeded')));
    const received = channels.map(() => [] as number[]);
    const allArrived = Promise.all(
      channels.map(
        (channel, index) =>
          new Promise<void>((resolve) => {
            channel.bind('tick', (data: { n: number }) => {
              received[index]?.push(data.n);
              if (received[index]?.length === 60) resolve();
            });
          }),
      ),
    );
    // 50 publishes started in one turn of the event loop, then one batch_events call of 10.
    await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        server.realtime.publish({ channel: 'ticker', event: 'tick', data: { n } }),
      ),
    );
    await pusherServer(server.baseUrl, server.app).triggerBatch(
      Array.from({ length: 10 }, (_, index) => ({
        channel: 'ticker',
        name: 'tick',
        data: { n: 50 + index },
      })),
    );
    await allArrived;
    const expected = Array.from({ length: 60 }, (_, n) => n);
    expect(received).toEqual([expected, expected]);
  });

  it('keeps the events of every subscriber complete and in order when publishes land between the steps of a large fan-out', async () => {
    // More sockets than the writer releases per turn (128): each fan-out takes several turns, and
    // the next publish (one per turn below) reaches sockets not yet written as well as sockets done.
    const sockets = Array.from({ length: 300 }, () => server.raw());
    await Promise.all(
      sockets.map(async (socket) => {
        await socket.socketId();
        socket.send({ event: 'pusher:subscribe', data: { channel: 'stream' } });
        await socket.next('pusher_internal:subscription_succeeded');
      }),
    );
    const arrived = Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            const check = () => {
              if (socket.frames.filter((frame) => frame.event === 'step').length === 20) resolve();
              else setTimeout(check, 10);
            };
            check();
          }),
      ),
    );
    for (let n = 0; n < 20; n++) {
      await server.realtime.publish({ channel: 'stream', event: 'step', data: { n } });
      await new Promise((resolve) => setImmediate(resolve));
    }
    await arrived;
    const expected = Array.from({ length: 20 }, (_, n) => n);
    for (const socket of sockets) {
      const steps = socket.frames
        .filter((frame) => frame.event === 'step')
        .map((frame) => (JSON.parse(frame.data as string) as { n: number }).n);
      expect(steps).toEqual(expected);
      socket.close();
    }
  });

  it('sends the last event of a cache channel to new subscribers, or pusher:cache_miss', async () => {
    const empty = server.raw();
    await empty.socketId();
    empty.send({ event: 'pusher:subscribe', data: { channel: 'cache-empty' } });
    expect((await empty.next('pusher:cache_miss')).channel).toBe('cache-empty');

    await pusherServer(server.baseUrl, server.app).trigger('cache-prices', 'price', { btc: 1 });
    const late = server.raw();
    await late.socketId();
    late.send({ event: 'pusher:subscribe', data: { channel: 'cache-prices' } });
    expect(await late.next('price')).toMatchObject({ channel: 'cache-prices', data: '{"btc":1}' });
  });
});
