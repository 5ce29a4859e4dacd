import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import { createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { redisUnavailable, testRedisUrl } from '../src/testing/test-redis.js';
import { createJobsFixtureModule } from './fixtures/jobs-module.js';
import { postgresTarget } from './support/each-database.js';
import { connected, type PusherJs, pusherClient } from './support/realtime-clients.js';

const OPERATOR_TOKEN = 'operator-token-of-the-feed-fleet-suite-0123456789';
const asOperator = { 'x-operator-token': OPERATOR_TOKEN };

interface QueueCounts {
  queue: string;
  created: number;
}
/** What the operator feed's internals look like from a test (the module's services object). */
interface FeedInternals {
  operatorFeed: { sampleJobs(): Promise<void>; watched(): boolean };
  gateway: { publish(input: { event: string }): Promise<void> };
  state: { channels(space: string): Promise<unknown> };
}

// Two nodes share one database (Postgres: PGlite is one process) and one Redis namespace.
const skipReason = !postgresTarget.available ? postgresTarget.reason : redisUnavailable;
describe.skipIf(skipReason !== undefined)(
  `Realtime operator feed on two nodes sharing Redis [postgres + redis${skipReason ? `: ${skipReason}` : ''}]`,
  () => {
    const nodes: { socle: TestSocle; feed: FeedInternals; url: string }[] = [];
    const clients: PusherJs[] = [];
    const redisNamespace = `feed-fleet-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

    beforeAll(async () => {
      for (let index = 0; index < 2; index++) {
        const realtime = createRealtimeModule();
        const socle = await createTestSocle(postgresTarget, {
          config: { redisUrl: testRedisUrl, redisNamespace, jobsQueues: [] },
          settings: { identity: { operatorToken: OPERATOR_TOKEN } },
          ...(nodes[0] ? { database: nodes[0].socle.database } : {}),
          modules: [
            ...createBuiltInModules().filter((module) => module.name !== 'realtime'),
            realtime,
            createJobsFixtureModule().module,
          ],
        });
        nodes.push({
          socle,
          feed: socle.servicesOf(realtime) as unknown as FeedInternals,
          url: await socle.listen(),
        });
      }
    }, 60_000);
    afterAll(async () => {
      for (const client of clients) client.disconnect();
      for (const node of [...nodes].reverse()) await node.socle.dispose();
    });

    it('reads nothing, neither shared state nor job counts, while no console watches', async () => {
      for (const { socle, feed } of nodes) {
        const channels = vi.spyOn(feed.state, 'channels');
        const counts = vi.spyOn(socle.jobs, 'counts');
        try {
          await feed.operatorFeed.sampleJobs();
          expect(channels).not.toHaveBeenCalled();
          expect(counts).not.toHaveBeenCalled();
        } finally {
          channels.mockRestore();
          counts.mockRestore();
        }
      }
    });

    it('pushes each change of the job counts once to consoles on both nodes', async () => {
      const watchers = await Promise.all(nodes.map((node) => watch(node.url)));
      clients.push(...watchers.map((watcher) => watcher.client));
      // Each console gets the counts as it comes (the node that pushes reads them anew).
      const before = defaultQueue(
        await (watchers[1] as Watcher).next((data) => defaultQueue(data) !== undefined),
      );
      const first = nodes[0] as { socle: TestSocle };
      await first.socle.jobs.enqueue(first.socle.db.kysely, 'jobs_fixture.failing', {}, { maxAttempts: 1 });
      for (const watcher of watchers)
        await watcher.next((data) => defaultQueue(data)?.created === before.created + 1);
      // A second change: pushed in order after the first by the one node that pushes, so any
      // copy of the first from another node would have come before it.
      await first.socle.jobs.enqueue(first.socle.db.kysely, 'jobs_fixture.failing', {}, { maxAttempts: 1 });
      for (const watcher of watchers)
        await watcher.next((data) => defaultQueue(data)?.created === before.created + 2);
      for (const watcher of watchers) {
        const copies = watcher.all.filter((data) => defaultQueue(data)?.created === before.created + 1);
        expect(copies).toHaveLength(1);
      }
      // Both nodes know a console watches; when both leave, neither reads again.
      for (const { feed } of nodes) expect(feed.operatorFeed.watched()).toBe(true);
      for (const watcher of watchers) watcher.client.disconnect();
      await vi.waitFor(() => {
        for (const { feed } of nodes) expect(feed.operatorFeed.watched()).toBe(false);
      });
    }, 60_000);

    it("sends each change of an app's activity once, from the node that pushes the feed", async () => {
      const [first, second] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
      const owner = await first.socle.newUser();
      const orgId = (await first.socle.newTenant({ owner, name: 'Fleet Quiz' })).id;
      const created = await first.socle.app.inject({
        method: 'POST',
        url: '/realtime/apps',
        headers: { authorization: `Bearer ${owner.token}`, 'x-org-id': orgId },
        payload: { name: 'Quiz' },
      });
      expect(created.statusCode, created.body).toBe(201);
      const quiz = created.json() as { id: string; key: string };
      // The console watches through the first node only: that node pushes the feed.
      const watcher = await watch(first.url, 'realtime');
      clients.push(watcher.client);
      await vi.waitFor(() => expect(second.feed.operatorFeed.watched()).toBe(true));
      const sentBySecond = vi.spyOn(second.feed.gateway, 'publish');
      try {
        // A socket of the app connects to the second node: its activity changes there.
        const socket = pusherClient(second.url, { appKey: quiz.key });
        clients.push(socket);
        await connected(socket);
        const named = (data: unknown) =>
          (data as { apps: { appId: string; connections: number }[] }).apps.some(
            (entry) => entry.appId === quiz.id && entry.connections === 1,
          );
        await watcher.next(named);
        // Told on the bus, sent by the first node: the second sent no `realtime` event itself.
        expect(sentBySecond.mock.calls.filter(([input]) => input.event === 'realtime')).toEqual([]);
      } finally {
        sentBySecond.mockRestore();
        watcher.client.disconnect();
      }
    }, 60_000);
  },
);

interface Watcher {
  client: PusherJs;
  all: unknown[];
  next(matches: (data: unknown) => boolean): Promise<unknown>;
}

/** A console's pusher-js socket on the operator channel through `baseUrl`, recording `event` events. */
async function watch(baseUrl: string, event = 'jobs'): Promise<Watcher> {
  const feed = await fetch(`${baseUrl}/operator/realtime/feed`, { headers: asOperator });
  const { key, channel: channelName } = (await feed.json()) as { key: string; channel: string };
  const client = pusherClient(baseUrl, { appKey: key }, undefined, {
    authEndpoint: '/operator/realtime/auth',
    headers: asOperator,
  });
  const all: unknown[] = [];
  let waiters: { matches(data: unknown): boolean; resolve(data: unknown): void }[] = [];
  const channel = client.subscribe(channelName);
  const subscribed = new Promise<void>((resolve, reject) => {
    channel.bind('pusher:subscription_succeeded', () => resolve());
    channel.bind('pusher:subscription_error', (error: unknown) =>
      reject(new Error(`subscription refused: ${JSON.stringify(error)}`)),
    );
  });
  channel.bind(event, (data: unknown) => {
    all.push(data);
    waiters = waiters.filter((waiter) => {
      if (!waiter.matches(data)) return true;
      waiter.resolve(data);
      return false;
    });
  });
  await connected(client);
  await subscribed;
  return {
    client,
    all,
    next(matches) {
      const known = all.find(matches);
      if (known !== undefined) return Promise.resolve(known);
      return new Promise((resolve) => waiters.push({ matches, resolve }));
    },
  };
}

function defaultQueue(data: unknown): QueueCounts {
  return (data as { queues: QueueCounts[] }).queues.find((queue) => queue.queue === 'default') as QueueCounts;
}
