import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import type { Realtime } from '../src/modules/realtime/index.js';
import { createTestSocle, type TestSocle, type TestUser } from '../src/testing/index.js';
import { createJobsFixtureModule } from './fixtures/jobs-module.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';
import { connected, type PusherJs, pusherClient, RawPusherSocket } from './support/realtime-clients.js';

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
  let orgId: string;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [...createBuiltInModules(), createJobsFixtureModule().module],
      // No worker: the test runs jobs by hand.
      config: { jobsQueues: [] },
      settings: { identity: { operatorToken: OPERATOR_TOKEN } },
    });
    alice = await socle.newUser();
    orgId = (await socle.newTenant({ owner: alice, name: 'Quiz Co' })).id;
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
    // The operator's endpoint (form-encoded, as pusher-js posts), not /realtime/auth.
    const client = pusherClient(baseUrl, { appKey: key }, undefined, {
      authEndpoint: '/operator/realtime/auth',
      headers: asOperator,
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

  describe("an organization's feed, for its admins", () => {
    let bruno: TestUser;
    let member: TestUser;
    let otherOrg: string;
    let other: { id: string; key: string };

    beforeAll(async () => {
      bruno = await socle.newUser();
      const tenant = await socle.newTenant({ owner: bruno, name: 'Other Co' });
      otherOrg = tenant.id;
      member = await socle.newMember({ id: orgId, owner: alice }, { role: 'member' });
      const created = await callAs(socle, bruno, 'POST', '/realtime/apps', {
        orgId: otherOrg,
        payload: { name: 'Other' },
      });
      expect(created.statusCode, created.body).toBe(201);
      other = created.json();
    });

    it("tells an admin where the organization's feed is and signs its channel only, for its admins only", async () => {
      const feed = await callAs(socle, alice, 'GET', '/org/realtime/feed', { orgId });
      expect(feed.statusCode, feed.body).toBe(200);
      expect(feed.json()).toEqual({ key: 'socle-operator', channel: `private-socle-org-${orgId}` });
      const auth = (channel: string, user: TestUser, actingIn: string) =>
        callAs(socle, user, 'POST', '/org/realtime/feed/auth', {
          orgId: actingIn,
          payload: { socket_id: '1.2', channel_name: channel },
        });
      expect((await auth(`private-socle-org-${orgId}`, alice, orgId)).statusCode).toBe(200);
      // Another organization's channel, acting in one's own: refused, naming the channel.
      const stranger = await auth(`private-socle-org-${otherOrg}`, alice, orgId);
      expect(stranger.statusCode).toBe(403);
      expect(stranger.json().code).toBe('realtime.channel_forbidden');
      // Acting in an organization one is not a member of; the operator's channel; a plain member.
      expect((await auth(`private-socle-org-${otherOrg}`, alice, otherOrg)).statusCode).toBe(403);
      expect((await auth('private-socle-operator', alice, orgId)).statusCode).toBe(403);
      expect((await auth(`private-socle-org-${orgId}`, member, orgId)).statusCode).toBe(403);
      expect((await callAs(socle, member, 'GET', '/org/realtime/feed', { orgId })).statusCode).toBe(403);
      // No user: the operator token alone does not open an organization's feed.
      const operatorOnly = await socle.app.inject({
        method: 'POST',
        url: '/org/realtime/feed/auth',
        headers: { ...asOperator, 'x-org-id': orgId },
        payload: { socket_id: '1.2', channel_name: `private-socle-org-${orgId}` },
      });
      expect(operatorOnly.statusCode).toBe(401);
      // The users' endpoint never signs for the feed's app, whatever the channel.
      const user = await callAs(socle, alice, 'POST', '/realtime/auth', {
        orgId,
        payload: { socket_id: '1.2', channel_name: `private-socle-org-${orgId}`, app_key: 'socle-operator' },
      });
      expect(user.statusCode).toBe(404);
    });

    it("pushes each admin its own organization's job counts, apps and payment notices, never another's", async () => {
      const clientOf = (user: TestUser, actingIn: string): PusherJs =>
        pusherClient(baseUrl, { appKey: 'socle-operator' }, user.token, {
          authEndpoint: '/org/realtime/feed/auth',
          headers: { 'x-org-id': actingIn },
        });
      const aliceClient = clientOf(alice, orgId);
      const brunoClient = clientOf(bruno, otherOrg);
      const ofAlice = recorder(aliceClient, `private-socle-org-${orgId}`);
      const ofBruno = recorder(brunoClient, `private-socle-org-${otherOrg}`);
      const countsOf = async (tenantId: string | null) =>
        (await socle.jobs.counts(tenantId)).find((queue) => queue.queue === 'default');
      try {
        await Promise.all([connected(aliceClient), connected(brunoClient)]);
        await Promise.all([ofAlice.subscribed, ofBruno.subscribed]);
        // The first reading: each organization's own counts.
        const aliceBefore = defaultQueue(await ofAlice.next('jobs', () => true)).created;
        expect(aliceBefore).toBe((await countsOf(orgId))?.created ?? 0);
        const brunoBefore = defaultQueue(await ofBruno.next('jobs', () => true)).created;

        // A global job and one of the other organization, then one of Alice's.
        await socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.effect', { label: 'global' });
        await socle.scope.run({ tenantId: otherOrg, userId: bruno.userId }, () =>
          socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.effect', { label: 'of Other Co' }),
        );
        await ofBruno.next('jobs', (data) => defaultQueue(data).created === brunoBefore + 1);
        await socle.scope.run({ tenantId: orgId, userId: alice.userId }, () =>
          socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.effect', { label: 'of Quiz Co' }),
        );
        await ofAlice.next('jobs', (data) => defaultQueue(data).created === aliceBefore + 1);
        // Every count Alice was sent is her organization's: never the global job's nor Other Co's.
        const aliceCounts = ofAlice.all
          .filter((entry) => entry.event === 'jobs')
          .map((entry) => defaultQueue(entry.data).created);
        expect(Math.max(...aliceCounts)).toBe(aliceBefore + 1);

        // Sockets of the other organization's app, then of Alice's: each admin hears of its own.
        const otherSocket = new RawPusherSocket(baseUrl, other.key);
        await otherSocket.socketId();
        await ofBruno.next('realtime', (data) => appsOf(data).some((app) => app.appId === other.id));
        const quizSocket = new RawPusherSocket(baseUrl, quiz.key);
        await quizSocket.socketId();
        await ofAlice.next('realtime', (data) => appsOf(data).some((app) => app.appId === quiz.id));
        otherSocket.close();
        quizSocket.close();

        // A module's notice (the payments module's, for an event of Other Co, then of Quiz Co).
        const realtime = socle.servicesOf<Realtime>('realtime');
        await realtime.notifyConsole({
          event: 'payments',
          orgId: otherOrg,
          data: { provider: 'stripe', eventId: 'evt_other', status: 'failed' },
        });
        await realtime.notifyConsole({
          event: 'payments',
          orgId,
          data: { provider: 'stripe', eventId: 'evt_quiz', status: 'applied' },
        });
        await ofBruno.next('payments', (data) => (data as { eventId: string }).eventId === 'evt_other');
        await ofAlice.next('payments', (data) => (data as { eventId: string }).eventId === 'evt_quiz');
        const heard = JSON.stringify(ofAlice.all);
        expect(heard).not.toContain(other.id);
        expect(heard).not.toContain('evt_other');
        expect(JSON.stringify(ofBruno.all)).not.toContain(quiz.id);
        expect(JSON.stringify(ofBruno.all)).not.toContain('evt_quiz');
      } finally {
        aliceClient.disconnect();
        brunoClient.disconnect();
      }
    }, 60_000);
  });
});

function appsOf(data: unknown): { appId: string; connections: number }[] {
  return (data as { apps: { appId: string; connections: number }[] }).apps;
}

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
