import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createOutboundModule,
  defineModule,
  defineProvider,
  isSocleError,
  type OutboundClient,
  type OutboundServices,
} from '../src/index.js';
import {
  createTestSocle,
  type FaultyProvider,
  startFaultyProvider,
  type TestSocle,
} from '../src/testing/index.js';
import { redisUnavailable, testRedisUrl } from '../src/testing/test-redis.js';
import { databaseTargets } from './support/each-database.js';

const pglite = databaseTargets.find((target) => target.dialect === 'pglite');
const skipReason = redisUnavailable ?? (pglite?.available ? undefined : 'no PGlite target');

/** A node of the fleet: a Socle with the outbound module and a module holding the provider's client. */
async function startNode(provider: ReturnType<typeof defineProvider>, redisUrl: string | undefined) {
  const holder = defineModule({
    name: 'transcription',
    dependsOn: ['outbound'],
    setup: (context) => ({
      openai: context.servicesOf<OutboundServices>('outbound').outbound.client(provider),
    }),
  });
  const socle = await createTestSocle(pglite as NonNullable<typeof pglite>, {
    modules: [createOutboundModule(), holder],
    config: { jobsQueues: [], ...(redisUrl === undefined ? {} : { redisUrl }) },
  });
  return { socle, client: socle.servicesOf(holder).openai as OutboundClient };
}

/** Fires `count` calls at once; resolves to how many went through and how many the limit refused. */
async function burst(client: OutboundClient, count: number) {
  const outcomes = await Promise.all(
    Array.from({ length: count }, () =>
      client.request({ method: 'GET', path: 'models' }).then(
        () => 'ok',
        (error: unknown) => (isSocleError(error) ? error.code : String(error)),
      ),
    ),
  );
  return {
    ok: outcomes.filter((outcome) => outcome === 'ok').length,
    limited: outcomes.filter((outcome) => outcome === 'outbound.rate_limited').length,
  };
}

describe.skipIf(skipReason !== undefined)(
  `Outbound rate limit shared by two nodes on one Redis${skipReason === undefined ? '' : ` [skipped: ${skipReason}]`}`,
  () => {
    let fake: FaultyProvider;
    const nodes: TestSocle[] = [];

    beforeAll(async () => {
      fake = await startFaultyProvider();
    });
    afterAll(async () => {
      for (const node of nodes.reverse()) await node.dispose();
      await fake?.close();
    });

    // A limit whose refill (12 s a unit) is far longer than a call may wait (2 s): exactly
    // `limit` calls go through, whatever the timing, and the rest are refused.
    const declare = () =>
      defineProvider(`openai-${randomBytes(4).toString('hex')}`, {
        baseUrl: fake.url,
        rateLimit: { limit: 5, windowMs: 60_000 },
        timeoutMs: { attemptMs: 2000, totalMs: 2000 },
      });

    it('lets the limit through across both nodes together, not per node', async () => {
      const provider = declare();
      const first = await startNode(provider, testRedisUrl);
      nodes.push(first.socle);
      const second = await startNode(provider, testRedisUrl);
      nodes.push(second.socle);
      const before = fake.requests.length;
      const [a, b] = await Promise.all([burst(first.client, 6), burst(second.client, 6)]);
      expect({ ok: a.ok + b.ok, limited: a.limited + b.limited }).toEqual({ ok: 5, limited: 7 });
      expect(fake.requests.length - before).toBe(5);
    }, 120_000);

    it('embedded (no Redis), each node counts its own budget', async () => {
      const provider = declare();
      const first = await startNode(provider, undefined);
      nodes.push(first.socle);
      const second = await startNode(provider, undefined);
      nodes.push(second.socle);
      const [a, b] = await Promise.all([burst(first.client, 6), burst(second.client, 6)]);
      expect([a.ok, b.ok]).toEqual([5, 5]);
    }, 120_000);
  },
);
