import type { Socket } from 'node:net';
import { afterEach, expect, it, vi } from 'vitest';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { RawPusherSocket, testRealtimeApp } from './support/realtime-clients.js';

/** Long enough that two publishes a few loop turns apart always fall in one window, loaded or not. */
const WINDOW_MS = 1000;

/** A few turns of the event loop: each polls I/O, so a frame written meanwhile has been read. */
async function someTurns() {
  for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
}

describeEachDatabase('Realtime: frames to a socket coalesced into one write', (target) => {
  const opened: { socle: TestSocle; sockets: RawPusherSocket[] }[] = [];
  afterEach(async () => {
    for (const { socle, sockets } of opened.splice(0)) {
      for (const socket of sockets) socket.close();
      await socle.dispose();
    }
  });

  /** A subscriber of `channel` whose TCP reads are recorded (each chunk as the kernel gave it). */
  async function subscriber(writeCoalesceMs: number) {
    const app = testRealtimeApp();
    const realtimeModule = createRealtimeModule();
    const socle = await createTestSocle(target, {
      settings: { realtime: { ...app, writeCoalesceMs } },
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        realtimeModule,
      ],
    });
    const socket = new RawPusherSocket(await socle.listen(), app.appKey);
    opened.push({ socle, sockets: [socket] });
    await socket.socketId();
    const reads: string[] = [];
    (socket.socket as unknown as { _socket: Socket })._socket.prependListener('data', (chunk: Buffer) =>
      reads.push(chunk.toString('latin1')),
    );
    socket.send({ event: 'pusher:subscribe', data: { channel: 'scores' } });
    await socket.next('pusher_internal:subscription_succeeded');
    const realtime = socle.servicesOf(realtimeModule);
    const publish = (event: string) => realtime.publish({ channel: 'scores', event, data: { event } });
    const received = (event: string) => socket.frames.some((frame) => frame.event === event);
    return { reads, publish, received };
  }

  it('sends the frames of a burst, published turns apart, in one write; the first at once', async () => {
    const { reads, publish, received } = await subscriber(WINDOW_MS);
    await publish('first');
    await vi.waitFor(() => expect(received('first')).toBe(true));
    // Published in separate turns of the event loop, both within the window of the first's write.
    await publish('second');
    await someTurns();
    await publish('third');
    await vi.waitFor(() => expect(received('third')).toBe(true), { timeout: 10 * WINDOW_MS });
    const together = reads.filter((chunk) => chunk.includes('"second"') || chunk.includes('"third"'));
    expect(together).toHaveLength(1);
    expect(together[0]).toContain('"second"');
    expect(together[0]).toContain('"third"');
    // In order, and nothing lost.
    expect(received('second')).toBe(true);
    expect(reads.join('').indexOf('"second"')).toBeLessThan(reads.join('').indexOf('"third"'));
  });

  it('without a window (the default), each turn writes what it produced', async () => {
    const { reads, publish, received } = await subscriber(0);
    await publish('first');
    await vi.waitFor(() => expect(received('first')).toBe(true));
    await publish('second');
    await someTurns();
    await vi.waitFor(() => expect(received('second')).toBe(true));
    await publish('third');
    await vi.waitFor(() => expect(received('third')).toBe(true));
    expect(reads.filter((chunk) => chunk.includes('"second"') && chunk.includes('"third"'))).toHaveLength(0);
  });
});
