import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle, type TestUser } from '../src/testing/index.js';
import { createJobsFixtureModule } from './fixtures/jobs-module.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';
import { connected, PusherJs, RawPusherSocket } from './support/realtime-clients.js';

const OPERATOR_TOKEN = 'operator-token-of-the-feed-suite-0123456789';
const asOperator = { 'x-operator-token': OPERATOR_TOKEN };

interface QueueCounts {
  queue: string;
  created: number;
  failed: number;
}

describeEachDatabase('Realtime operator feed', (target) => {
  let socle: TestSocle;
  let baseUrl: string;
  let alice: TestUser;
  let quiz: { id: string; key: string };

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [...createBuiltInModules(), createJobsFixtureModule().module],
      // No worker: the test runs jobs by hand.
      config: { jobsQueues: [] },
      settings: { identity: { operatorToken: OPERATOR_TOKEN } },
    });
    alice = await socle.newUser();
    const orgId = (await socle.newTenant({ owner: alice, name: 'Quiz Co' })).id;
    const created = await callAs(socle, alice, 'POST', '/realtime/apps', {
      orgId,
      payload: { name: 'Quiz' },
    });
    expect(created.statusCode, created.body).toBe(201);
    quiz = created.json();
    baseUrl = await socle.listen();
  }, 60_000);
  afterAll(() => socle?.dispose());

  it('tells the operator token where the feed is and signs its one channel, for nobody else', async () => {
    expect((await socle.app.inject({ method: 'GET', url: '/operator/realtime/feed' })).statusCode).toBe(401);
    const feed = await socle.app.inject({
      method: 'GET',
      url: '/operator/realtime/feed',
      headers: asOperator,
    });
    expect(feed.statusCode, feed.body).toBe(200);
    const { key, channel } = feed.json();
    expect(channel).toBe('private-socle-operator');

    const other = await socle.app.inject({
      method: 'POST',
      url: '/operator/realtime/auth',
      headers: asOperator,
      payload: { socket_id: '1.2', channel_name: `private-user-${alice.userId}` },
    });
    expect(other.statusCode).toBe(403);
    expect(other.json().code).toBe('realtime.channel_forbidden');
    const anonymous = await socle.app.inject({
      method: 'POST',
      url: '/operator/realtime/auth',
      payload: { socket_id: '1.2', channel_name: channel },
    });
    expect(anonymous.statusCode).toBe(401);
    // A user's own channel on the operator app: allowed by the built-in rule on any other app,
    // refused here (the app signs for the operator token only).
    const user = await callAs(socle, alice, 'POST', '/realtime/auth', {
      payload: { socket_id: '1.2', channel_name: `private-user-${alice.userId}`, app_key: key },
    });
    expect(user.statusCode, user.body).toBe(404);
    expect(user.json().code).toBe('realtime.app_not_found');
  });

  it("pushes job counts as they change and an app's sockets as they come, to pusher-js on the operator channel", async () => {
    const { key, channel } = (
      await socle.app.inject({ method: 'GET', url: '/operator/realtime/feed', headers: asOperator })
    ).json();
    const { hostname, port } = new URL(baseUrl);
    const client: PusherJs = new PusherJs(key, {
      cluster: 'local',
      wsHost: hostname,
      wsPort: Number(port),
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      // The operator's endpoint (form-encoded, as pusher-js posts), not /realtime/auth.
      channelAuthorization: {
        endpoint: `${baseUrl}/operator/realtime/auth`,
        transport: 'ajax',
        headers: asOperator,
      },
    });
    const received = recorder(client, channel);
    try {
      await connected(client);
      await received.subscribed;
      // The first reading comes as soon as the channel is watched.
      const before = await received.next('jobs', () => true);
      const queued = (before as { queues: QueueCounts[] }).queues[1] as QueueCounts;
      expect(queued.queue).toBe('default');

      const failing = await socle.jobs.enqueue(
        socle.db.kysely,
        'jobs_fixture.failing',
        {},
        { maxAttempts: 1 },
      );
      await received.next('jobs', (data) => defaultQueue(data).created === queued.created + 1);
      await socle.jobs.runDueJobs();
      expect((await socle.jobs.get(failing.id, null)).state).toBe('failed');
      await received.next(
        'jobs',
        (data) =>
          defaultQueue(data).failed === queued.failed + 1 && defaultQueue(data).created === queued.created,
      );

      // A socket of an organization's app: the feed names the app and its sockets now.
      const socket = new RawPusherSocket(baseUrl, quiz.key);
      try {
        await socket.socketId();
        await received.next('realtime', (data) =>
          (data as { apps: { appId: string; connections: number }[] }).apps.some(
            (app) => app.appId === quiz.id && app.connections === 1,
          ),
        );
      } finally {
        socket.close();
      }
      await received.next('realtime', (data) =>
        (data as { apps: { appId: string; connections: number }[] }).apps.some(
          (app) => app.appId === quiz.id && app.connections === 0,
        ),
      );
      // The operator's own socket is not reported.
      expect(received.all.some((event) => JSON.stringify(event.data).includes('socle-operator'))).toBe(false);
    } finally {
      client.disconnect();
    }
  }, 60_000);
});

function defaultQueue(data: unknown): QueueCounts {
  return (data as { queues: QueueCounts[] }).queues.find((queue) => queue.queue === 'default') as QueueCounts;
}

/** Every event of the channel, and a wait for the first (past or coming) that matches. */
function recorder(client: PusherJs, channelName: string) {
  const all: { event: string; data: unknown }[] = [];
  let waiters: { event: string; matches(data: unknown): boolean; resolve(data: unknown): void }[] = [];
  const channel = client.subscribe(channelName);
  const subscribed = new Promise<void>((resolve, reject) => {
    channel.bind('pusher:subscription_succeeded', () => resolve());
    channel.bind('pusher:subscription_error', (error: unknown) =>
      reject(new Error(`subscription refused: ${JSON.stringify(error)}`)),
    );
  });
  channel.bind_global((event: string, data: unknown) => {
    if (event.startsWith('pusher:')) return;
    all.push({ event, data });
    waiters = waiters.filter((waiter) => {
      if (waiter.event !== event || !waiter.matches(data)) return true;
      waiter.resolve(data);
      return false;
    });
  });
  return {
    all,
    subscribed,
    next(event: string, matches: (data: unknown) => boolean): Promise<unknown> {
      const known = all.find((entry) => entry.event === event && matches(entry.data));
      if (known) return Promise.resolve(known.data);
      return new Promise((resolve) => waiters.push({ event, matches, resolve }));
    },
  };
}
