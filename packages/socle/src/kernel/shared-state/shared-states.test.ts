import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { redisUnavailable, testRedisUrl } from '../../testing/test-redis.js';
import { systemClock } from '../clock/index.js';
import { createSilentLogger } from '../log/index.js';
import { createRedisConnections } from '../redis/index.js';
import { createSharedStates, type SharedStatesOwner } from './index.js';

/** The same calls on either adapter: the module using the state does not know which it has. */
async function exerciseArea(states: SharedStatesOwner, area: string) {
  const [a, b] = [states.open({ area, nodeId: 'node-a' }), states.open({ area, nodeId: 'node-b' })];
  const joined = await a.join('app', 'presence-room', 's1', { userId: 'u1' }, 1);
  const full = await a.join('app', 'presence-room', 's2', { userId: 'u2' }, 1);
  expect(joined).toEqual({ userId: 'u1', changed: true });
  expect(full).toBe('full');
  expect(await a.occupy('app', 'presence-room', 1)).toBe(1);
  await a.cacheEvent('app', 'cache-x', 'frame', 60_000);
  expect(await a.cachedEvent('app', 'cache-x')).toBe('frame');
  expect(await a.leave('app', 'presence-room', 's1')).toEqual({ userId: 'u1', changed: true });
  // Closed by its module (here) and again by the kernel at shutdown: once only.
  await a.close();
  await a.close();
  // b is left open, as a module that never closed it: the kernel closes it at shutdown.
  expect(b.nodeId).toBe('node-b');
  await states.close();
}

describe('context.sharedState: the kernel picks the adapter', () => {
  it('is in process when embedded (no REDIS_URL)', async () => {
    const states = createSharedStates({ redis: undefined, clock: systemClock, log: createSilentLogger() });
    expect(states.kind).toBe('memory');
    await exerciseArea(states, 'test');
  });

  it.skipIf(redisUnavailable !== undefined)(
    'is in Redis with REDIS_URL, over the process connections, under <namespace>:<area>:',
    async () => {
      const namespace = `socle-test-${randomBytes(4).toString('hex')}`;
      const redis = createRedisConnections({ url: testRedisUrl, namespace });
      try {
        const states = createSharedStates({ redis, clock: systemClock, log: createSilentLogger() });
        expect(states.kind).toBe('redis');
        await exerciseArea(states, 'test');
        const direct = redis.open();
        const keys = await direct.keys(`${namespace}:*`);
        expect(keys.every((key) => key.startsWith(`${namespace}:test:`))).toBe(true);
        const leftovers = await direct.keys(`${namespace}:*`);
        if (leftovers.length > 0) await direct.del(...leftovers);
      } finally {
        await redis.close();
      }
    },
  );
});
