import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { channelAuth } from '../src/modules/realtime/index.js';
import { TEST_SECRET_KEY, type TestDatabase } from '../src/testing/index.js';
import { redisUnavailable, testRedisUrl } from '../src/testing/test-redis.js';
import { type CliProcess, killCliProcesses, spawnCli, waitForListening } from './support/cli-process.js';
import { postgresTarget } from './support/each-database.js';
import { pusherServer, RawPusherSocket, testRealtimeApp } from './support/realtime-clients.js';
import { createTempDirectory, removeTempDirectories } from './support/temp-directories.js';
import { webhookReceiver } from './support/webhook-receiver.js';

const START_TIMEOUT_MS = 90_000;
/** The liveness expiry these nodes run with: a dead node must be announced within 1.25 × this. */
const EXPIRY_SECONDS = 2;

// Three `socle start` processes on one Postgres and one Redis; one is killed with SIGKILL.
const skipReason = !postgresTarget.available ? postgresTarget.reason : redisUnavailable;
describe.skipIf(skipReason !== undefined)(
  `Realtime after kill -9 of a node [postgres + redis${skipReason ? `: ${skipReason}` : ''}]`,
  () => {
    const app = testRealtimeApp('-crash');
    const signer = { key: app.appKey, secret: app.appSecret };
    let database: TestDatabase;
    let receiver: Awaited<ReturnType<typeof webhookReceiver>>;
    const nodes: { cli: CliProcess; url: string }[] = [];
    const sockets: RawPusherSocket[] = [];

    const startNode = async () => {
      const cli = spawnCli(['start'], {
        cwd: createTempDirectory('socle-crash-'),
        env: {
          DATABASE_URL: database.url as string,
          REDIS_URL: testRedisUrl,
          SECRET_KEY: TEST_SECRET_KEY,
          REALTIME_APP_ID: app.appId,
          REALTIME_APP_KEY: app.appKey,
          REALTIME_APP_SECRET: app.appSecret,
          REALTIME_WEBHOOK_URL: receiver.url,
          REALTIME_NODE_EXPIRY_SECONDS: String(EXPIRY_SECONDS),
          JOBS_POLL_INTERVAL_MS: '500',
        },
      });
      nodes.push({ cli, url: await waitForListening(cli, START_TIMEOUT_MS) });
    };
    const joinPresence = async (node: number, userId: string) => {
      const socket = new RawPusherSocket((nodes[node] as { url: string }).url, app.appKey);
      sockets.push(socket);
      const socketId = await socket.socketId();
      const channelData = JSON.stringify({ user_id: userId });
      socket.send({
        event: 'pusher:subscribe',
        data: {
          channel: 'presence-crash',
          auth: channelAuth(signer, socketId, 'presence-crash', channelData),
          channel_data: channelData,
        },
      });
      await socket.next('pusher_internal:subscription_succeeded');
      return socket;
    };

    beforeAll(async () => {
      database = await postgresTarget.create();
      receiver = await webhookReceiver(app);
      // One after the other: the first applies the migrations.
      for (let index = 0; index < 3; index++) await startNode();
    }, 3 * START_TIMEOUT_MS);
    afterAll(async () => {
      for (const socket of sockets) socket.close();
      await killCliProcesses();
      await receiver?.close();
      await database?.drop();
      await removeTempDirectories();
    });

    it('announces member_removed to the survivors and sends member_removed / channel_vacated webhooks, once, within 1.25 × the expiry', {
      timeout: 60_000,
    }, async () => {
      const onFirst = await joinPresence(0, 'survivor-1');
      const onSecond = await joinPresence(1, 'survivor-2');
      const victim = await joinPresence(2, 'victim');
      victim.send({ event: 'pusher:subscribe', data: { channel: 'crash-public' } });
      await vi.waitFor(() =>
        expect(
          victim.frames.filter((frame) => frame.event === 'pusher_internal:subscription_succeeded'),
        ).toHaveLength(2),
      );
      await vi.waitFor(() => expect(receiver.count('member_added')).toBe(3), { timeout: 10_000 });

      const killedAt = Date.now();
      (nodes[2] as { cli: CliProcess }).cli.signal('SIGKILL');
      await (nodes[2] as { cli: CliProcess }).cli.exited;
      const removed = await Promise.all(
        [onFirst, onSecond].map((socket) => socket.next('pusher_internal:member_removed')),
      );
      const announcedAfter = Date.now() - killedAt;
      for (const frame of removed) {
        expect(frame.channel).toBe('presence-crash');
        expect(JSON.parse(frame.data as string)).toEqual({ user_id: 'victim' });
      }
      // Announced within the documented bound (the expiry plus one sweep interval), with slack
      // for a loaded machine well below the 30 s a client would otherwise wait.
      expect(announcedAfter).toBeLessThan(EXPIRY_SECONDS * 1250 + 10_000);
      await vi.waitFor(
        () => {
          expect(receiver.events.get('member_removed:presence-crash')).toBe(1);
          expect(receiver.events.get('channel_vacated:crash-public')).toBe(1);
        },
        { timeout: 15_000, interval: 100 },
      );
      // Two survivors sweep; one announced. Nothing more comes afterwards.
      await new Promise((resolve) => setTimeout(resolve, EXPIRY_SECONDS * 1000));
      for (const socket of [onFirst, onSecond]) {
        expect(
          socket.frames.filter((frame) => frame.event === 'pusher_internal:member_removed'),
        ).toHaveLength(1);
      }
      expect(receiver.events.get('member_removed:presence-crash')).toBe(1);
      expect(receiver.events.get('channel_vacated:crash-public')).toBe(1);
      expect(receiver.events.get('channel_vacated:presence-crash')).toBeUndefined();
      const users = await pusherServer((nodes[0] as { url: string }).url, app).get({
        path: '/channels/presence-crash/users',
      });
      expect(
        ((await users.json()) as { users: { id: string }[] }).users.map((user) => user.id).sort(),
      ).toEqual(['survivor-1', 'survivor-2']);
      const channels = await pusherServer((nodes[1] as { url: string }).url, app).get({ path: '/channels' });
      expect(Object.keys(((await channels.json()) as { channels: object }).channels)).toEqual([
        'presence-crash',
      ]);
      console.info(`realtime node crash: member_removed announced ${announcedAfter} ms after SIGKILL`);
    });
  },
);
