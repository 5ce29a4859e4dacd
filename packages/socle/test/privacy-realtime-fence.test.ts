import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestDatabaseTarget, type TestSocle } from '../src/testing/index.js';
import { redisUnavailable, testRedisUrl } from '../src/testing/test-redis.js';
import { callAs, TEST_PASSWORD, type TestUser } from './support/api-client.js';
import { databaseTargets, postgresTarget } from './support/each-database.js';
import { RawPusherSocket } from './support/realtime-clients.js';

/**
 * Erasure fences the person out at once (issue 11 item 8): their open realtime sockets too, on
 * every node: the one signed in as them, and the one that joined a presence channel in their name.
 */
function erasureClosesSockets(name: string, target: TestDatabaseTarget, redisUrl: string | undefined) {
  const nodeCount = redisUrl === undefined ? 1 : 2;
  describe(`Erasure closes the person's realtime sockets [${name}]`, () => {
    const nodes: { socle: TestSocle; url: string }[] = [];
    const sockets: RawPusherSocket[] = [];
    beforeAll(async () => {
      for (let index = 0; index < nodeCount; index++) {
        const socle = await createTestSocle(target, {
          modules: createBuiltInModules(),
          config: redisUrl === undefined ? {} : { redisUrl },
          settings: { realtime: { channelRules: [{ pattern: 'presence-fence-*', role: 'user' }] } },
          ...(nodes[0] ? { database: nodes[0].socle.database } : {}),
        });
        nodes.push({ socle, url: await socle.listen() });
      }
    }, 60_000);
    afterAll(async () => {
      for (const socket of sockets) socket.close();
      for (const node of nodes) await node.socle.dispose();
    });

    /** A socket of `user` on node `index`: signed in as them, or only in a presence channel. */
    async function socketOf(user: TestUser, orgId: string, appKey: string, index: number, signIn: boolean) {
      const { socle, url } = nodes[index % nodeCount] as { socle: TestSocle; url: string };
      const socket = new RawPusherSocket(url, appKey);
      sockets.push(socket);
      const socketId = await socket.socketId();
      const body = { socket_id: socketId, app_key: appKey };
      if (signIn) {
        const auth = await callAs(socle, user, 'POST', '/realtime/user-auth', { orgId, payload: body });
        expect(auth.statusCode, auth.body).toBe(200);
        socket.send({ event: 'pusher:signin', data: auth.json() });
        await socket.next('pusher:signin_success');
      } else {
        const channel = 'presence-fence-1';
        const auth = await callAs(socle, user, 'POST', '/realtime/auth', {
          orgId,
          payload: { ...body, channel_name: channel },
        });
        expect(auth.statusCode, auth.body).toBe(200);
        socket.send({ event: 'pusher:subscribe', data: { channel, ...auth.json() } });
        await socket.next('pusher_internal:subscription_succeeded');
      }
      return socket;
    }

    it('closes every socket of the erased person, on every node, and no one else’s', async () => {
      const socle = (nodes[0] as { socle: TestSocle }).socle;
      const slug = name.replaceAll(/\W+/g, '-');
      const eve = await socle.newUser({ email: `eve.${slug}@fence.example` });
      const ann = await socle.newUser({ email: `ann.${slug}@fence.example` });
      const orgId = (await callAs(socle, eve, 'POST', '/orgs', { payload: { name: 'Fence' } })).json().id;
      const app = await callAs(socle, eve, 'POST', '/realtime/apps', { orgId, payload: { name: 'fence' } });
      expect(app.statusCode, app.body).toBe(201);
      const appKey = app.json().key as string;
      const signedIn = await socketOf(eve, orgId, appKey, 0, true);
      const present = await socketOf(eve, orgId, appKey, 1, false);
      const annOrg = (await callAs(socle, ann, 'POST', '/orgs', { payload: { name: 'Other' } })).json().id;
      const annApp = (
        await callAs(socle, ann, 'POST', '/realtime/apps', { orgId: annOrg, payload: { name: 'other' } })
      ).json();
      const bystander = await socketOf(ann, annOrg, annApp.key, 1, true);

      const erased = await callAs(socle, eve, 'POST', '/me/erase', { payload: { password: TEST_PASSWORD } });
      expect(erased.statusCode, erased.body).toBe(200);
      // Closed by the server with Pusher's "unauthorized" code, within a bounded wait.
      for (const socket of [signedIn, present]) {
        const closed = await Promise.race([
          socket.closed,
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000)),
        ]);
        expect(closed?.code).toBe(4009);
      }
      bystander.send({ event: 'pusher:ping', data: {} });
      expect((await bystander.next('pusher:pong')).event).toBe('pusher:pong');
    });
  });
}

const pglite = databaseTargets.find((target) => target.dialect === 'pglite') as TestDatabaseTarget;
erasureClosesSockets('pglite', pglite, undefined);
const skipReason = !postgresTarget.available ? postgresTarget.reason : redisUnavailable;
// Visibly skipped without Postgres or Redis, required in CI (test-redis.ts and each-database.ts throw).
describe.skipIf(skipReason !== undefined)(`two nodes${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  erasureClosesSockets('postgres + redis, two nodes', postgresTarget, testRedisUrl);
});
