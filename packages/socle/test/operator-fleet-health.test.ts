import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createIdentityModule, createMailModule } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { redisUnavailable, testRedisUrl } from '../src/testing/test-redis.js';
import { postgresTarget } from './support/each-database.js';

const OPERATOR_TOKEN = 'operator-token-of-the-fleet-health-suite-0123456789';
const asOperator = { 'x-operator-token': OPERATOR_TOKEN };

interface NodeHealth {
  node: string;
  pid: number;
  gone: boolean;
  self: boolean;
  requests: number;
  errors: number;
  buckets: [number, number][];
}

// Two nodes share one database (Postgres: PGlite is one process) and one Redis namespace.
const skipReason = !postgresTarget.available ? postgresTarget.reason : redisUnavailable;
describe.skipIf(skipReason !== undefined)(
  `Operator: the health of every node of a fleet [postgres + redis${skipReason ? `: ${skipReason}` : ''}]`,
  () => {
    const nodes: TestSocle[] = [];
    const redisNamespace = `fleet-health-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

    beforeAll(async () => {
      for (let index = 0; index < 2; index++) {
        nodes.push(
          await createTestSocle(postgresTarget, {
            config: { redisUrl: testRedisUrl, redisNamespace, jobsQueues: [] },
            settings: { identity: { operatorToken: OPERATOR_TOKEN } },
            ...(nodes[0] ? { database: nodes[0].database } : {}),
            modules: [createMailModule(), createIdentityModule({ rateLimits: false })],
          }),
        );
      }
    }, 60_000);
    afterAll(async () => {
      for (const node of [...nodes].reverse()) await node.dispose();
    });

    const fleetSeenBy = async (node: TestSocle) => {
      const response = await node.app.inject({
        method: 'GET',
        url: '/operator/health/nodes',
        headers: asOperator,
      });
      expect(response.statusCode, response.body).toBe(200);
      return response.json<{ nodes: NodeHealth[] }>().nodes;
    };

    it('shows on the first node the traffic the second one served, as the second one reports it', async () => {
      const [first, second] = nodes as [TestSocle, TestSocle];
      await vi.waitFor(async () => expect(await fleetSeenBy(first)).toHaveLength(2), { timeout: 20_000 });
      const secondAsItSaidLast = (await fleetSeenBy(second)).find((node) => node.self) as NodeHealth;
      expect((await fleetSeenBy(first)).find((node) => node.self)?.node).not.toBe(secondAsItSaidLast.node);
      // 40 requests hit the second node only: 30 answered, 10 refused (401: not a server error).
      for (let index = 0; index < 30; index++)
        expect((await second.app.inject({ method: 'GET', url: '/livez' })).statusCode).toBe(200);
      for (let index = 0; index < 10; index++)
        expect((await second.app.inject({ method: 'GET', url: '/operator/health/nodes' })).statusCode).toBe(
          401,
        );
      await vi.waitFor(
        async () => {
          const seen = (await fleetSeenBy(first)).find((node) => node.node === secondAsItSaidLast.node);
          expect(seen?.gone).toBe(false);
          expect(seen?.self).toBe(false);
          expect((seen?.requests ?? 0) - secondAsItSaidLast.requests).toBeGreaterThanOrEqual(40);
          expect(seen?.errors).toBe(0);
          // The histogram's buckets hold the requests counted, none more.
          const counts = (seen?.buckets ?? []).map(([, count]) => count);
          expect(counts.length).toBeGreaterThan(0);
          expect(Math.max(...counts)).toBeLessThanOrEqual(seen?.requests ?? 0);
        },
        { timeout: 20_000, interval: 250 },
      );
    }, 60_000);

    it('refuses without the operator token', async () => {
      const response = await (nodes[0] as TestSocle).app.inject({
        method: 'GET',
        url: '/operator/health/nodes',
      });
      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('auth.not_operator');
    });
  },
);
