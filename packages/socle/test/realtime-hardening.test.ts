import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { defineModule } from '../src/index.js';
import { type AuditModule, createAuditModule } from '../src/modules/audit/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { channelAuth, createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { callAs, type TestUser } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';
import {
  nextEvent,
  type PusherJs,
  pusherClient,
  pusherServer,
  RawPusherSocket,
  testRealtimeApp,
} from './support/realtime-clients.js';

/** A module whose presence channel hands out a `user_info` as large as the room name says. */
const rooms = defineModule({
  name: 'rooms',
  dependsOn: ['realtime'],
  channels: {
    'presence-big-{size}': (_request, { size }) => ({ userInfo: { pad: 'x'.repeat(Number(size)) } }),
  },
});

describeEachDatabase('Realtime: limits, names and protocol details', (target) => {
  let socle: TestSocle;
  let audit: AuditModule;
  let baseUrl: string;
  let alice: TestUser;
  let bob: TestUser;
  const app = testRealtimeApp('-hardening');
  const signer = { key: app.appKey, secret: app.appSecret };
  const raws: RawPusherSocket[] = [];
  const clients: PusherJs[] = [];
  const raw = () => {
    const created = new RawPusherSocket(baseUrl, app.appKey);
    raws.push(created);
    return created;
  };
  const client = (token: string, headers: Record<string, string> = {}) => {
    const created = pusherClient(baseUrl, app, token, { headers });
    clients.push(created);
    return created;
  };
  const invitations = new Map<string, string>();
  /** Subscribes a raw socket to a presence channel with a self-signed `channel_data`. */
  const joinPresence = async (socket: RawPusherSocket, channel: string, member: object) => {
    const socketId = await socket.socketId();
    const channelData = JSON.stringify(member);
    socket.send({
      event: 'pusher:subscribe',
      data: { channel, auth: channelAuth(signer, socketId, channel, channelData), channel_data: channelData },
    });
    return Promise.race([
      socket.next('pusher_internal:subscription_succeeded'),
      socket.next('pusher:subscription_error'),
    ]);
  };

  beforeAll(async () => {
    audit = createAuditModule({ flushIntervalMs: 10 });
    socle = await createTestSocle(target, {
      settings: {
        realtime: {
          ...app,
          channelRules: [
            { pattern: 'private-org-{orgId}-billing-*', role: 'admin' },
            { pattern: 'presence-lobby-*', role: 'user' },
          ],
        },
      },
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule({
          deliverInvitation: async (invitation) => {
            invitations.set(invitation.email, invitation.token);
          },
        }),
        audit,
        createRealtimeModule(),
        rooms,
      ],
    });
    baseUrl = await socle.listen();
    alice = await socle.newUser({ email: `alice-hardening-${Date.now()}@example.com` });
    bob = await socle.newUser({ email: `bob-hardening-${Date.now()}@example.com` });
  });
  afterAll(async () => {
    for (const created of clients) created.disconnect();
    for (const created of raws) created.close();
    await socle?.dispose();
  });

  it('lists a channel named __proto__ (or constructor) among the occupied channels', async () => {
    const socket = raw();
    await socket.socketId();
    for (const channel of ['__proto__', 'constructor', 'toString']) {
      socket.send({ event: 'pusher:subscribe', data: { channel } });
    }
    for (let seen = 0; seen < 3; ) {
      await socket.next('pusher_internal:subscription_succeeded');
      seen = socket.frames.filter((frame) => frame.event === 'pusher_internal:subscription_succeeded').length;
    }
    const response = await pusherServer(baseUrl, app).get({ path: '/channels' });
    const { channels } = (await response.json()) as { channels: Record<string, unknown> };
    expect(Object.keys(channels).sort()).toEqual(['__proto__', 'constructor', 'toString']);
    const one = await pusherServer(baseUrl, app).get({
      path: '/channels/__proto__',
      params: { info: 'subscription_count' },
    });
    expect(await one.json()).toEqual({ occupied: true, subscription_count: 1 });
    socket.close();
    await socket.closed;
  });

  it('answers POST /events with the requested info of each channel, as Pusher does', async () => {
    const socket = raw();
    const joined = await joinPresence(socket, 'presence-info', { user_id: 'info-user' });
    expect(joined.event).toBe('pusher_internal:subscription_succeeded');
    socket.send({ event: 'pusher:subscribe', data: { channel: 'info-public' } });
    await socket.next('pusher_internal:subscription_succeeded');
    const pusher = pusherServer(baseUrl, app);
    // The pusher SDK puts `info` in the body; some clients put it in the query: both work.
    const viaBody = await pusher.trigger(['presence-info', 'info-public', 'info-empty'], 'e', 'x', {
      info: 'subscription_count,user_count',
    });
    expect(await viaBody.json()).toEqual({
      channels: {
        'presence-info': { subscription_count: 1, user_count: 1 },
        'info-public': { subscription_count: 1 },
        'info-empty': { subscription_count: 0 },
      },
    });
    const batch = await pusher.triggerBatch([
      { channel: 'presence-info', name: 'e', data: 'x', info: 'user_count' },
      { channel: 'info-public', name: 'e', data: 'x' },
    ]);
    expect(await batch.json()).toEqual({ batch: [{ user_count: 1 }, {}] });
    const plain = await pusher.trigger('info-public', 'e', 'x');
    expect(await plain.json()).toEqual({});
    socket.close();
  });

  it('answers a WebSocket on a path other than /app/{key} with error 4005, then closes', async () => {
    const socket = new WebSocket(`${baseUrl.replace('http', 'ws')}/nothing/here?protocol=7`);
    const frames: string[] = [];
    socket.on('message', (data) => frames.push(data.toString()));
    socket.on('error', () => {});
    const closed = await new Promise<{ code: number }>((resolve) =>
      socket.on('close', (code) => resolve({ code })),
    );
    expect(closed.code).toBe(4005);
    expect(JSON.parse(frames[0] as string)).toMatchObject({
      event: 'pusher:error',
      data: { code: 4005, message: 'Path not found' },
    });
  });

  it('keeps a presence channel to 100 members when 120 join at once', async () => {
    const sockets = Array.from({ length: 120 }, () => raw());
    const results = await Promise.all(
      sockets.map((socket, index) => joinPresence(socket, 'presence-crowd', { user_id: `crowd-${index}` })),
    );
    const accepted = results.filter((frame) => frame.event === 'pusher_internal:subscription_succeeded');
    const refused = results.filter((frame) => frame.event === 'pusher:subscription_error');
    expect(accepted).toHaveLength(100);
    expect(refused).toHaveLength(20);
    expect(refused[0]?.data).toMatchObject({ type: 'LimitReached', status: 403 });
    const users = await pusherServer(baseUrl, app).get({ path: '/channels/presence-crowd/users' });
    expect(((await users.json()) as { users: unknown[] }).users).toHaveLength(100);
    // A second socket of a member already in counts no more: it is accepted.
    const again = await joinPresence(raw(), 'presence-crowd', { user_id: 'crowd-0' });
    expect(again.event).toBe('pusher_internal:subscription_succeeded');
    for (const socket of sockets) socket.close();
  });

  it('refuses a user_info over 1 KB and a user_id over 128 characters, on the socket and at /realtime/auth', async () => {
    const bigInfo = await joinPresence(raw(), 'presence-sizes', {
      user_id: 'sized',
      user_info: { pad: 'x'.repeat(1100) },
    });
    expect(bigInfo).toMatchObject({ event: 'pusher:subscription_error', data: { status: 400 } });
    expect(JSON.stringify(bigInfo.data)).toContain('1024 bytes');
    const longId = await joinPresence(raw(), 'presence-sizes', { user_id: 'u'.repeat(129) });
    expect(longId).toMatchObject({ event: 'pusher:subscription_error', data: { status: 400 } });
    expect(JSON.stringify(longId.data)).toContain('128 characters');
    const fits = await joinPresence(raw(), 'presence-sizes', {
      user_id: 'u'.repeat(128),
      user_info: { pad: 'x'.repeat(900) },
    });
    expect(fits.event).toBe('pusher_internal:subscription_succeeded');

    const socketId = '123.456';
    const tooBig = await callAs(socle, alice, 'POST', '/realtime/auth', {
      payload: { socket_id: socketId, channel_name: 'presence-big-2000' },
    });
    expect(tooBig.statusCode).toBe(400);
    expect(tooBig.headers['content-type']).toContain('application/problem+json');
    expect(tooBig.json()).toMatchObject({ code: 'realtime.user_info_too_large' });
    const small = await callAs(socle, alice, 'POST', '/realtime/auth', {
      payload: { socket_id: socketId, channel_name: 'presence-big-10' },
    });
    expect(small.statusCode).toBe(200);
  });

  it("authorizes a user's own private-user channel and their organizations' channels by default", async () => {
    const own = await callAs(socle, alice, 'POST', '/realtime/auth', {
      payload: { socket_id: '1.2', channel_name: `private-user-${alice.userId}` },
    });
    expect(own.statusCode).toBe(200);
    const others = await callAs(socle, alice, 'POST', '/realtime/auth', {
      payload: { socket_id: '1.2', channel_name: `private-user-${bob.userId}` },
    });
    expect(others.statusCode).toBe(403);
    // The client example of docs/realtime.md, as written, with pusher-js.
    const subscriber = client(alice.token);
    const channel = subscriber.subscribe(`private-user-${alice.userId}`);
    await nextEvent(channel, 'pusher:subscription_succeeded');

    const org = (await socle.newTenant({ owner: alice, name: 'Hardening Co' })).id;
    const inOrg = (user: TestUser, channelName: string) =>
      callAs(socle, user, 'POST', '/realtime/auth', {
        orgId: org,
        payload: { socket_id: '1.2', channel_name: channelName },
      });
    expect((await inOrg(alice, `private-org-${org}-chat`)).statusCode).toBe(200);
    const presence = await inOrg(alice, `presence-org-${org}-room`);
    expect(presence.statusCode).toBe(200);
    expect(JSON.parse(presence.json().channel_data)).toEqual({ user_id: alice.userId });
    // Not a member: the tenancy module refuses to act in the organization at all.
    expect((await inOrg(bob, `private-org-${org}-chat`)).statusCode).toBe(403);
    // A member acting in another organization (or none) does not get this one's channels.
    const withoutOrg = await callAs(socle, alice, 'POST', '/realtime/auth', {
      payload: { socket_id: '1.2', channel_name: `private-org-${org}-chat` },
    });
    expect(withoutOrg.statusCode).toBe(403);

    const pusherOrg = client(alice.token, { 'x-org-id': org }).subscribe(`presence-org-${org}-room`);
    await nextEvent(pusherOrg, 'pusher:subscription_succeeded');
  });

  it('applies channel rules from the configuration: a role in the organization, or any signed-in user', async () => {
    const org = (await socle.newTenant({ owner: alice, name: 'Rules Co' })).id;
    await socle.newMember(
      { id: org, owner: alice },
      { user: bob, role: 'member', invitationToken: (email) => invitations.get(email) },
    );
    const billing = `private-org-${org}-billing-invoices`;
    const as = (user: TestUser, channelName: string) =>
      callAs(socle, user, 'POST', '/realtime/auth', {
        orgId: org,
        payload: { socket_id: '1.2', channel_name: channelName },
      });
    expect((await as(alice, billing)).statusCode).toBe(200);
    const member = await as(bob, billing);
    expect(member.statusCode).toBe(403);
    expect(member.json()).toMatchObject({ code: 'realtime.channel_forbidden' });
    expect((await as(bob, `private-org-${org}-chat`)).statusCode).toBe(200);
    expect(
      (
        await callAs(socle, bob, 'POST', '/realtime/auth', {
          payload: { socket_id: '1.2', channel_name: 'presence-lobby-main' },
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (
        await callAs(socle, bob, 'POST', '/realtime/auth', {
          payload: { socket_id: '1.2', channel_name: 'private-foo' },
        })
      ).statusCode,
    ).toBe(403);
  });

  it('audits refused channel authorizations only, not every granted one', async () => {
    const granted = await callAs(socle, alice, 'POST', '/realtime/auth', {
      payload: { socket_id: '7.7', channel_name: `private-user-${alice.userId}` },
    });
    expect(granted.statusCode).toBe(200);
    const refused = await callAs(socle, alice, 'POST', '/realtime/auth', {
      payload: { socket_id: '7.8', channel_name: `private-user-${bob.userId}` },
    });
    expect(refused.statusCode).toBe(403);
    await new Promise((resolve) => setImmediate(resolve));
    await socle.servicesOf(audit).flush();
    const { rows } = await socle.db.withConnection(
      (connection) =>
        connection.query<{ status: number }>(
          'select status from audit.events where request_id = any($1) order by occurred_at',
          [[granted.headers['x-request-id'], refused.headers['x-request-id']]],
        ),
      'owner',
    );
    expect(rows.map((row) => row.status)).toEqual([403]);
  });
});
