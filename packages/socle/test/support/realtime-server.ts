import { afterAll, beforeAll } from 'vitest';
import { defineModule, requireUser } from '../../src/index.js';
import { createIdentityModule } from '../../src/modules/identity/index.js';
import { createMailModule } from '../../src/modules/mail/index.js';
import { createRealtimeModule, type Realtime } from '../../src/modules/realtime/index.js';
import { createTenancyModule } from '../../src/modules/tenancy/index.js';
import {
  createTestSocle,
  type TestDatabaseTarget,
  type TestSocle,
  type TestUser,
} from '../../src/testing/index.js';
import {
  limitedRealtimeApp,
  type PusherJs,
  pusherClient,
  RawPusherSocket,
  testRealtimeApp,
} from './realtime-clients.js';

/** An app module declaring who may join its channels, as a Socle app would. */
const quiz = defineModule({
  name: 'quiz',
  dependsOn: ['realtime'],
  channels: {
    'private-notes-{userId}': (request, params) => requireUser(request).userId === params.userId,
    'presence-room-{roomId}': (request, params) =>
      params.roomId === 'closed' ? false : { userInfo: { email: requireUser(request).userId.slice(0, 8) } },
    'private-chat-{roomId}': () => true,
    'private-encrypted-room-{roomId}': () => true,
  },
});

/** The listening server of a realtime test file, its two users and its clients (closed after the file). */
export interface RealtimeServer {
  readonly socle: TestSocle;
  readonly realtime: Realtime;
  readonly baseUrl: string;
  readonly alice: TestUser;
  readonly bob: TestUser;
  /** The configured app (`REALTIME_APP_*`). */
  readonly app: ReturnType<typeof testRealtimeApp>;
  /** An app of one connection at most. */
  readonly limitedApp: ReturnType<typeof limitedRealtimeApp>;
  /** The server's clock: real time, shifted by what a test advances. */
  readonly clock: { now(): Date; advance(milliseconds: number): void };
  /** pusher-js clients made by `client()`, disconnected after the file. */
  readonly clients: PusherJs[];
  client(token?: string): PusherJs;
  raw(query?: string, key?: string): RawPusherSocket;
  /** The query string of an HTTP API call signed with the app's secret. */
  signedQuery(method: string, path: string, body: string): Promise<string>;
}

/**
 * Starts, before the tests of the enclosing describe, a listening Socle with identity, mail,
 * tenancy, realtime and an app module declaring channels; signs up alice and bob.
 */
export function useRealtimeServer(target: TestDatabaseTarget): RealtimeServer {
  let socle: TestSocle;
  let realtime: Realtime;
  let baseUrl: string;
  let alice: TestUser;
  let bob: TestUser;
  const app = testRealtimeApp();
  // The server's clock follows real time, shifted by what a test advances: the Pusher SDK signs
  // with the real clock, so a clock frozen at load would drift from it as the file runs.
  let offsetMs = 0;
  const clock = {
    now: () => new Date(Date.now() + offsetMs),
    advance: (milliseconds: number) => {
      offsetMs += milliseconds;
    },
  };
  const clients: PusherJs[] = [];
  const raws: RawPusherSocket[] = [];
  const limitedApp = limitedRealtimeApp(app, 1);

  beforeAll(async () => {
    const realtimeModule = createRealtimeModule({ apps: [limitedApp] });
    socle = await createTestSocle(target, {
      clock,
      settings: { realtime: app },
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        realtimeModule,
        quiz,
      ],
    });
    realtime = socle.servicesOf(realtimeModule);
    baseUrl = await socle.listen();
    alice = await socle.newUser({ email: 'alice-1@example.com' });
    bob = await socle.newUser({ email: 'bob-2@example.com' });
  });
  afterAll(async () => {
    for (const created of clients) created.disconnect();
    for (const created of raws) created.close();
    await socle?.dispose();
  });

  return {
    get socle() {
      return socle;
    },
    get realtime() {
      return realtime;
    },
    get baseUrl() {
      return baseUrl;
    },
    get alice() {
      return alice;
    },
    get bob() {
      return bob;
    },
    app,
    limitedApp,
    clock,
    clients,
    client(token) {
      const created = pusherClient(baseUrl, app, token);
      clients.push(created);
      return created;
    },
    raw(query, key = app.appKey) {
      const created = new RawPusherSocket(baseUrl, key, query);
      raws.push(created);
      return created;
    },
    async signedQuery(method, path, body) {
      const { createHash, createHmac } = await import('node:crypto');
      const params: Record<string, string> = {
        auth_key: app.appKey,
        auth_timestamp: String(Math.floor(clock.now().getTime() / 1000)),
        auth_version: '1.0',
        body_md5: createHash('md5').update(body).digest('hex'),
      };
      const text = Object.keys(params)
        .sort()
        .map((key) => `${key}=${params[key]}`)
        .join('&');
      const signature = createHmac('sha256', app.appSecret)
        .update(`${method}\n${path}\n${text}`)
        .digest('hex');
      return `${text}&auth_signature=${signature}`;
    },
  };
}
