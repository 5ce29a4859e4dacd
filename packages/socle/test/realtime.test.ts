import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { defineModule, requireUser } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { channelAuth, createRealtimeModule, type Realtime } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { callAs, signUpUser, type TestUser } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';
import {
  connected,
  limitedRealtimeApp,
  nextEvent,
  type PresenceChannel,
  type PusherJs,
  pusherClient,
  pusherServer,
  RawPusherSocket,
  testRealtimeApp,
} from './support/realtime-clients.js';

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

describeEachDatabase('Realtime: the Pusher protocol with real clients', (target) => {
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
  const client = (token?: string) => {
    const created = pusherClient(baseUrl, app, token);
    clients.push(created);
    return created;
  };
  const raw = (query?: string, key = app.realtimeAppKey) => {
    const created = new RawPusherSocket(baseUrl, key, query);
    raws.push(created);
    return created;
  };
  let counter = 0;
  /** An app of one connection at most. */
  const limitedApp = limitedRealtimeApp(app, 1);

  beforeAll(async () => {
    const realtimeModule = createRealtimeModule({ apps: [limitedApp] });
    socle = await createTestSocle(target, {
      clock,
      config: app,
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
    alice = await signUpUser(socle, `alice-${++counter}@example.com`);
    bob = await signUpUser(socle, `bob-${++counter}@example.com`);
  });
  afterAll(async () => {
    for (const created of clients) created.disconnect();
    for (const created of raws) created.close();
    await socle?.dispose();
  });

  it('greets a connection with a socket id and the activity timeout, and answers pings', async () => {
    const socket = raw();
    const established = await socket.next('pusher:connection_established');
    const data = JSON.parse(established.data as string);
    expect(data.socket_id).toMatch(/^\d+\.\d+$/);
    expect(data.activity_timeout).toBe(120);
    socket.send({ event: 'pusher:ping', data: {} });
    expect((await socket.next('pusher:pong')).event).toBe('pusher:pong');
  });

  it('refuses an unknown app key with 4001 and a missing protocol with 4008', async () => {
    const unknown = raw(undefined, 'no-such-key');
    expect((await unknown.closed).code).toBe(4001);
    const noProtocol = raw('client=raw');
    expect((await noProtocol.closed).code).toBe(4008);
  });

  it('delivers an event published with the pusher SDK to a pusher-js subscriber of a public channel', async () => {
    const subscriber = client();
    const channel = subscriber.subscribe('scores');
    await nextEvent(channel, 'pusher:subscription_succeeded');
    const received = nextEvent(channel, 'updated');
    await pusherServer(baseUrl, app).trigger('scores', 'updated', { home: 2, away: 1 });
    expect(await received).toEqual({ home: 2, away: 1 });
  });

  it('delivers events published from server code with realtime.publish (job progress, module events)', async () => {
    const subscriber = client(alice.token);
    const channel = subscriber.subscribe(`private-notes-${alice.userId}`);
    await nextEvent(channel, 'pusher:subscription_succeeded');
    const progress = nextEvent(channel, 'job.progress');
    await realtime.publish({
      channel: `private-notes-${alice.userId}`,
      event: 'job.progress',
      data: { percent: 40 },
    });
    expect(await progress).toEqual({ percent: 40 });
  });

  it('delivers a burst of events (one turn of the server, one batch call) to every subscriber, complete and in order', async () => {
    const channels = [client().subscribe('ticker'), client().subscribe('ticker')];
    await Promise.all(channels.map((channel) => nextEvent(channel, 'pusher:subscription_succeeded')));
    const received = channels.map(() => [] as number[]);
    const allArrived = Promise.all(
      channels.map(
        (channel, index) =>
          new Promise<void>((resolve) => {
            channel.bind('tick', (data: { n: number }) => {
              received[index]?.push(data.n);
              if (received[index]?.length === 60) resolve();
            });
          }),
      ),
    );
    // 50 publishes started in one turn of the event loop, then one batch_events call of 10.
    await Promise.all(
      Array.from({ length: 50 }, (_, n) =>
        realtime.publish({ channel: 'ticker', event: 'tick', data: { n } }),
      ),
    );
    await pusherServer(baseUrl, app).triggerBatch(
      Array.from({ length: 10 }, (_, index) => ({
        channel: 'ticker',
        name: 'tick',
        data: { n: 50 + index },
      })),
    );
    await allArrived;
    const expected = Array.from({ length: 60 }, (_, n) => n);
    expect(received).toEqual([expected, expected]);
  });

  it('keeps the events of every subscriber complete and in order when publishes land between the steps of a large fan-out', async () => {
    // More sockets than the writer releases per turn (128): each fan-out takes several turns, and
    // the next publish (one per turn below) reaches sockets not yet written as well as sockets done.
    const sockets = Array.from({ length: 300 }, () => raw());
    await Promise.all(
      sockets.map(async (socket) => {
        await socket.socketId();
        socket.send({ event: 'pusher:subscribe', data: { channel: 'stream' } });
        await socket.next('pusher_internal:subscription_succeeded');
      }),
    );
    const arrived = Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            const check = () => {
              if (socket.frames.filter((frame) => frame.event === 'step').length === 20) resolve();
              else setTimeout(check, 10);
            };
            check();
          }),
      ),
    );
    for (let n = 0; n < 20; n++) {
      await realtime.publish({ channel: 'stream', event: 'step', data: { n } });
      await new Promise((resolve) => setImmediate(resolve));
    }
    await arrived;
    const expected = Array.from({ length: 20 }, (_, n) => n);
    for (const socket of sockets) {
      const steps = socket.frames
        .filter((frame) => frame.event === 'step')
        .map((frame) => (JSON.parse(frame.data as string) as { n: number }).n);
      expect(steps).toEqual(expected);
      socket.close();
    }
  });

  it('refuses connections of an app beyond its limit with 4004, and accepts again once one left', async () => {
    const first = raw(undefined, limitedApp.key);
    await first.socketId();
    expect(await realtime.fleetConnectionCount(limitedApp.id)).toBe(1);
    const second = raw(undefined, limitedApp.key);
    expect((await second.closed).code).toBe(4004);
    first.close();
    await first.closed;
    await vi.waitFor(async () => expect(await realtime.fleetConnectionCount(limitedApp.id)).toBe(0));
    const third = raw(undefined, limitedApp.key);
    expect(await third.socketId()).toMatch(/^\d+\.\d+$/);
  });

  it('serves private-encrypted channels end to end: shared_secret as the pusher SDK derives it, events encrypted by the SDK or realtime.publish and opened by pusher-js', async () => {
    const channelName = 'private-encrypted-room-1';
    const subscriber = client(alice.token);
    const socketId = await connected(subscriber);
    // The auth endpoint answers exactly what the official SDK, given the master key, would.
    const authorized = await callAs(socle, alice, 'POST', '/realtime/auth', {
      payload: { socket_id: socketId, channel_name: channelName },
    });
    expect(authorized.json()).toEqual(pusherServer(baseUrl, app).authorizeChannel(socketId, channelName));
    expect(authorized.json().shared_secret).toEqual(expect.any(String));

    const channel = subscriber.subscribe(channelName);
    await nextEvent(channel, 'pusher:subscription_succeeded');
    const fromSdk = nextEvent(channel, 'secret-note');
    await pusherServer(baseUrl, app).trigger(channelName, 'secret-note', { text: 'only for you' });
    expect(await fromSdk).toEqual({ text: 'only for you' });
    const fromServer = nextEvent(channel, 'secret-note');
    await realtime.publish({ channel: channelName, event: 'secret-note', data: { text: 'from a job' } });
    expect(await fromServer).toEqual({ text: 'from a job' });

    // Plain text to an encrypted channel is refused, naming the channel.
    // (The SDK's typings say `body` is a string; it JSON-encodes what it is given.)
    const body = { name: 'leak', channel: channelName, data: '{"text":"oops"}' } as unknown as string;
    const plain = await pusherServer(baseUrl, app)
      .post({ path: '/events', body })
      .catch((error: { status: number; body: string }) => error);
    expect(plain, JSON.stringify(plain)).toMatchObject({ status: 400 });
    expect(JSON.parse((plain as { body: string }).body)).toMatchObject({
      code: 'realtime.unencrypted_payload',
      channel: channelName,
    });
  });

  it('lets a signed-in user join a private channel a module allows, and refuses others', async () => {
    const own = client(alice.token);
    const mine = own.subscribe(`private-notes-${alice.userId}`);
    await nextEvent(mine, 'pusher:subscription_succeeded');
    const received = nextEvent(mine, 'note');
    await pusherServer(baseUrl, app).trigger(`private-notes-${alice.userId}`, 'note', 'hello');
    expect(await received).toBe('hello');

    const other = own.subscribe(`private-notes-${bob.userId}`);
    expect(await nextEvent<{ status: number }>(other, 'pusher:subscription_error')).toMatchObject({
      status: 403,
    });

    const anonymous = client();
    const refused = anonymous.subscribe(`private-notes-${alice.userId}`);
    expect(await nextEvent<{ status: number }>(refused, 'pusher:subscription_error')).toMatchObject({
      status: 401,
    });
  });

  it('refuses a private subscription whose signature was made for another socket', async () => {
    const socket = raw();
    await socket.socketId();
    const forged = channelAuth(
      { key: app.realtimeAppKey, secret: app.realtimeAppSecret },
      '1.1',
      'private-chat-forged',
    );
    socket.send({ event: 'pusher:subscribe', data: { channel: 'private-chat-forged', auth: forged } });
    const error = await socket.next('pusher:subscription_error');
    expect(error).toMatchObject({ channel: 'private-chat-forged', data: { status: 401 } });
  });

  it('keeps presence members, announces joins and leaves, and lists them over the HTTP API', async () => {
    const first = client(alice.token);
    const room = first.subscribe('presence-room-1') as PresenceChannel;
    await nextEvent(room, 'pusher:subscription_succeeded');
    expect(room.members.count).toBe(1);

    const added = nextEvent<{ id: string }>(room, 'pusher:member_added');
    const second = client(bob.token);
    const bobRoom = second.subscribe('presence-room-1') as PresenceChannel;
    await nextEvent(bobRoom, 'pusher:subscription_succeeded');
    expect(bobRoom.members.count).toBe(2);
    expect((await added).id).toBe(bob.userId);

    const users = await pusherServer(baseUrl, app).get({ path: '/channels/presence-room-1/users' });
    const ids = ((await users.json()) as { users: { id: string }[] }).users.map((user) => user.id).sort();
    expect(ids).toEqual([alice.userId, bob.userId].sort());

    const removed = nextEvent<{ id: string }>(room, 'pusher:member_removed');
    second.unsubscribe('presence-room-1');
    expect((await removed).id).toBe(bob.userId);
    expect(room.members.count).toBe(1);

    const closed = client(alice.token).subscribe('presence-room-closed');
    expect(await nextEvent<{ status: number }>(closed, 'pusher:subscription_error')).toMatchObject({
      status: 403,
    });
  });

  it('relays client events on private channels to everyone but the sender, and refuses them on public ones', async () => {
    const sender = client(alice.token);
    const receiver = client(bob.token);
    const senderChannel = sender.subscribe('private-chat-7');
    const receiverChannel = receiver.subscribe('private-chat-7');
    await Promise.all([
      nextEvent(senderChannel, 'pusher:subscription_succeeded'),
      nextEvent(receiverChannel, 'pusher:subscription_succeeded'),
    ]);
    let echoed = false;
    senderChannel.bind('client-typing', () => {
      echoed = true;
    });
    const received = nextEvent(receiverChannel, 'client-typing');
    senderChannel.trigger('client-typing', { who: 'alice' });
    expect(await received).toEqual({ who: 'alice' });
    // A later event to both proves the sender would have seen its own by now.
    const after = nextEvent(senderChannel, 'server-done');
    await pusherServer(baseUrl, app).trigger('private-chat-7', 'server-done', {});
    await after;
    expect(echoed).toBe(false);

    const socket = raw();
    await socket.socketId();
    socket.send({ event: 'pusher:subscribe', data: { channel: 'lobby' } });
    await socket.next('pusher_internal:subscription_succeeded');
    socket.send({ event: 'client-hello', channel: 'lobby', data: {} });
    expect(await socket.next('pusher:error')).toMatchObject({ data: { code: 4301 } });
  });

  it('rate-limits client events per connection with pusher:error 4301', async () => {
    const socket = raw();
    const socketId = await socket.socketId();
    const auth = channelAuth(
      { key: app.realtimeAppKey, secret: app.realtimeAppSecret },
      socketId,
      'private-chat-9',
    );
    socket.send({ event: 'pusher:subscribe', data: { channel: 'private-chat-9', auth } });
    await socket.next('pusher_internal:subscription_succeeded');
    for (let index = 0; index < 11; index++)
      socket.send({ event: 'client-spam', channel: 'private-chat-9', data: {} });
    const error = await socket.next('pusher:error');
    expect(error.data).toMatchObject({ code: 4301 });
    expect((error.data as { message: string }).message).toContain('per second');
  });

  it('sends the last event of a cache channel to new subscribers, or pusher:cache_miss', async () => {
    const empty = raw();
    await empty.socketId();
    empty.send({ event: 'pusher:subscribe', data: { channel: 'cache-empty' } });
    expect((await empty.next('pusher:cache_miss')).channel).toBe('cache-empty');

    await pusherServer(baseUrl, app).trigger('cache-prices', 'price', { btc: 1 });
    const late = raw();
    await late.socketId();
    late.send({ event: 'pusher:subscribe', data: { channel: 'cache-prices' } });
    expect(await late.next('price')).toMatchObject({ channel: 'cache-prices', data: '{"btc":1}' });
  });

  it('signs a user in, delivers to #server-to-user, and terminates their connections', async () => {
    const signedIn = client(alice.token);
    await connected(signedIn);
    const received = nextEvent(signedIn.user, 'direct');
    signedIn.signin();
    // The server-to-user channel is subscribed after pusher:signin_success.
    await new Promise<void>((resolve) => {
      const check = () => {
        if (signedIn.user.serverToUserChannel?.subscribed) resolve();
        else setTimeout(check, 10);
      };
      check();
    });
    await pusherServer(baseUrl, app).sendToUser(alice.userId, 'direct', { hi: true });
    expect(await received).toEqual({ hi: true });

    const socket = raw();
    await socket.socketId();
    socket.send({ event: 'pusher:subscribe', data: { channel: `#server-to-user-${alice.userId}` } });
    expect(await socket.next('pusher:subscription_error')).toMatchObject({ data: { status: 403 } });

    const disconnected = new Promise<void>((resolve) => signedIn.connection.bind('disconnected', resolve));
    const response = await pusherServer(baseUrl, app).terminateUserConnections(alice.userId);
    expect(response.status).toBe(200);
    await disconnected;
  });

  it('refuses HTTP API calls with a wrong secret, an expired timestamp or a tampered body', async () => {
    await expect(pusherServer(baseUrl, app, 'wrong-secret').trigger('scores', 'x', {})).rejects.toMatchObject(
      {
        status: 401,
      },
    );
    // Signed correctly, 11 minutes ago.
    clock.advance(11 * 60 * 1000);
    try {
      await expect(pusherServer(baseUrl, app).trigger('scores', 'x', {})).rejects.toMatchObject({
        status: 401,
      });
    } finally {
      clock.advance(-11 * 60 * 1000);
    }
    const channels = await pusherServer(baseUrl, app).get({ path: '/channels', params: {} });
    expect(channels.status).toBe(200);

    const signed = new URL(`${baseUrl}/apps/${app.realtimeAppId}/events`);
    const body = JSON.stringify({ name: 'x', channel: 'scores', data: '{}' });
    const query = await signedQuery('POST', signed.pathname, body);
    const tampered = await fetch(`${signed}?${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body.replace('scores', 'other'),
    });
    expect(tampered.status).toBe(401);
  });

  it('closes a socket that sends malformed frames with 4002 and keeps serving others', async () => {
    const bad = raw();
    await bad.socketId();
    bad.send('this is not json');
    expect((await bad.closed).code).toBe(4002);

    const good = raw();
    await good.socketId();
    good.send({ event: 'pusher:ping', data: {} });
    await good.next('pusher:pong');
  });

  it('pings a silent socket and closes it with 4201 when it never answers', async () => {
    const silent = raw();
    await silent.socketId();
    clock.advance(120_000);
    realtime.checkActivity();
    await silent.next('pusher:ping');
    clock.advance(30_000);
    realtime.checkActivity();
    expect((await silent.closed).code).toBe(4201);
  });

  it("serves an organization's app: created by an admin, used by pusher-js and the pusher SDK, secret rotated", async () => {
    const org = await callAs(socle, alice, 'POST', '/orgs', { payload: { name: 'Quiz Co' } });
    const orgId = org.json().id as string;
    const created = await callAs(socle, alice, 'POST', '/realtime/apps', {
      orgId,
      payload: { name: 'Quiz' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const orgApp = created.json() as { id: string; key: string; secret: string };
    const config = { realtimeAppId: orgApp.id, realtimeAppKey: orgApp.key, realtimeAppSecret: orgApp.secret };

    const listed = await callAs(socle, alice, 'GET', '/realtime/apps', { orgId });
    expect(listed.json()).toEqual([expect.objectContaining({ id: orgApp.id, key: orgApp.key })]);
    expect(listed.body).not.toContain(orgApp.secret);
    // At rest the secret is sealed (secret box), never the value clients sign with.
    const { rows } = await socle.db.withConnection(
      (connection) =>
        connection.query<{ secret: string }>('select secret from realtime.apps where id = $1', [orgApp.id]),
      'owner',
    );
    expect(rows[0]?.secret).toMatch(/^sb1\./);
    expect(rows[0]?.secret).not.toContain(orgApp.secret);

    const subscriber = pusherClient(baseUrl, config);
    clients.push(subscriber);
    const channel = subscriber.subscribe('org-news');
    await nextEvent(channel, 'pusher:subscription_succeeded');
    const received = nextEvent(channel, 'hello');
    await pusherServer(baseUrl, config).trigger('org-news', 'hello', 'world');
    expect(await received).toBe('world');

    const rotated = await callAs(socle, alice, 'POST', `/realtime/apps/${orgApp.id}/rotate-secret`, {
      orgId,
    });
    expect(rotated.statusCode).toBe(200);
    await expect(pusherServer(baseUrl, config).trigger('org-news', 'hello', 'again')).rejects.toMatchObject({
      status: 401,
    });
    const fresh = { ...config, realtimeAppSecret: rotated.json().secret as string };
    expect((await pusherServer(baseUrl, fresh).trigger('org-news', 'hello', 'again')).status).toBe(200);

    // Channel authorization for an organization's app takes a member acting in that organization.
    const socketId = await raw(undefined, orgApp.key).socketId();
    const outsider = await socle.app.inject({
      method: 'POST',
      url: '/realtime/auth',
      headers: { authorization: `Bearer ${bob.token}` },
      payload: { socket_id: socketId, channel_name: 'private-chat-1', app_key: orgApp.key },
    });
    expect(outsider.statusCode).toBe(400);
    const member = await callAs(socle, alice, 'POST', '/realtime/auth', {
      orgId,
      payload: { socket_id: socketId, channel_name: 'private-chat-1', app_key: orgApp.key },
    });
    expect(member.json().auth).toBe(
      channelAuth({ key: orgApp.key, secret: rotated.json().secret }, socketId, 'private-chat-1'),
    );
  });

  it("gives an organization's app an encryption master key: shown at creation, sealed at rest, rotated, required for encrypted channels", async () => {
    const org = await callAs(socle, alice, 'POST', '/orgs', { payload: { name: 'Secret Quiz Co' } });
    const orgId = org.json().id as string;
    const created = await callAs(socle, alice, 'POST', '/realtime/apps', {
      orgId,
      payload: { name: 'Quiz' },
    });
    const orgApp = created.json() as { id: string; key: string; secret: string; encryptionMasterKey: string };
    expect(Buffer.from(orgApp.encryptionMasterKey, 'base64')).toHaveLength(32);
    const config = {
      realtimeAppId: orgApp.id,
      realtimeAppKey: orgApp.key,
      realtimeAppSecret: orgApp.secret,
      realtimeAppEncryptionMasterKey: orgApp.encryptionMasterKey,
    };
    const listed = await callAs(socle, alice, 'GET', '/realtime/apps', { orgId });
    expect(listed.json()).toEqual([expect.objectContaining({ id: orgApp.id, hasEncryptionMasterKey: true })]);
    expect(listed.body).not.toContain(orgApp.encryptionMasterKey);
    const stored = async () =>
      (
        await socle.db.withConnection(
          (connection) =>
            connection.query<{ encryption_master_key: string | null }>(
              'select encryption_master_key from realtime.apps where id = $1',
              [orgApp.id],
            ),
          'owner',
        )
      ).rows[0]?.encryption_master_key;
    expect(await stored()).toMatch(/^sb1\./);
    expect(await stored()).not.toContain(orgApp.encryptionMasterKey);

    const socketId = await raw(undefined, orgApp.key).socketId();
    const authorize = () =>
      callAs(socle, alice, 'POST', '/realtime/auth', {
        orgId,
        payload: { socket_id: socketId, channel_name: 'private-encrypted-room-7', app_key: orgApp.key },
      });
    expect((await authorize()).json()).toEqual(
      pusherServer(baseUrl, config).authorizeChannel(socketId, 'private-encrypted-room-7'),
    );

    // An app from before encryption keys existed has none: encrypted channels are refused until
    // an admin creates one (rotating the secret drops the cached app).
    await socle.db.withConnection(
      (connection) =>
        connection.query('update realtime.apps set encryption_master_key = null where id = $1', [orgApp.id]),
      'owner',
    );
    await callAs(socle, alice, 'POST', `/realtime/apps/${orgApp.id}/rotate-secret`, { orgId });
    const refused = await authorize();
    expect(refused.statusCode).toBe(409);
    expect(refused.json().code).toBe('realtime.no_encryption_key');
    const listedWithout = await callAs(socle, alice, 'GET', '/realtime/apps', { orgId });
    expect(listedWithout.json()).toEqual([expect.objectContaining({ hasEncryptionMasterKey: false })]);

    const rotated = await callAs(socle, alice, 'POST', `/realtime/apps/${orgApp.id}/rotate-encryption-key`, {
      orgId,
    });
    expect(rotated.statusCode).toBe(200);
    const newKey = rotated.json().encryptionMasterKey as string;
    expect(newKey).not.toBe(orgApp.encryptionMasterKey);
    expect(rotated.json().hasEncryptionMasterKey).toBe(true);
    const fresh = { ...config, realtimeAppEncryptionMasterKey: newKey };
    expect((await authorize()).json().shared_secret).toBe(
      pusherServer(baseUrl, fresh).authorizeChannel(socketId, 'private-encrypted-room-7').shared_secret,
    );
  });

  it('works with laravel-echo: public events, presence here/joining, private whispers', async () => {
    const { default: Echo } = await import('laravel-echo');
    const { default: PusherForEcho } = await import('pusher-js');
    const { hostname, port } = new URL(baseUrl);
    const echoFor = (user: TestUser) =>
      new Echo({
        broadcaster: 'pusher',
        key: app.realtimeAppKey,
        cluster: 'local',
        wsHost: hostname,
        wsPort: Number(port),
        forceTLS: false,
        enabledTransports: ['ws'],
        disableStats: true,
        authEndpoint: `${baseUrl}/realtime/auth`,
        auth: { headers: { authorization: `Bearer ${user.token}` } },
        Pusher: PusherForEcho,
      });
    const aliceEcho = echoFor(alice);
    const bobEcho = echoFor(bob);
    try {
      const shipped = new Promise((resolve) => aliceEcho.channel('orders').listen('.OrderShipped', resolve));
      await new Promise<void>((resolve) =>
        aliceEcho.connector.pusher.channel('orders').bind('pusher:subscription_succeeded', resolve),
      );
      await pusherServer(baseUrl, app).trigger('orders', 'OrderShipped', { id: 7 });
      expect(await shipped).toEqual({ id: 7 });

      // Echo hands out each member's user_info (the module's authorizer gave { email }).
      const here = new Promise<unknown[]>((resolve) => aliceEcho.join('room-echo').here(resolve));
      expect(await here).toEqual([{ email: alice.userId.slice(0, 8) }]);
      const joining = new Promise<unknown>((resolve) => aliceEcho.join('room-echo').joining(resolve));
      bobEcho.join('room-echo');
      expect(await joining).toEqual({ email: bob.userId.slice(0, 8) });

      const aliceChat = aliceEcho.private('chat-echo');
      const bobChat = bobEcho.private('chat-echo');
      const subscribed = Promise.all(
        [aliceChat, bobChat].map(
          (channel) => new Promise<void>((resolve) => channel.subscribed(() => resolve())),
        ),
      );
      const whisper = new Promise((resolve) => aliceChat.listenForWhisper('typing', resolve));
      await subscribed;
      bobChat.whisper('typing', { name: 'bob' });
      expect(await whisper).toEqual({ name: 'bob' });
    } finally {
      aliceEcho.disconnect();
      bobEcho.disconnect();
    }
  });

  async function signedQuery(method: string, path: string, body: string) {
    const { createHash, createHmac } = await import('node:crypto');
    const params: Record<string, string> = {
      auth_key: app.realtimeAppKey,
      auth_timestamp: String(Math.floor(clock.now().getTime() / 1000)),
      auth_version: '1.0',
      body_md5: createHash('md5').update(body).digest('hex'),
    };
    const text = Object.keys(params)
      .sort()
      .map((key) => `${key}=${params[key]}`)
      .join('&');
    const signature = createHmac('sha256', app.realtimeAppSecret)
      .update(`${method}\n${path}\n${text}`)
      .digest('hex');
    return `${text}&auth_signature=${signature}`;
  }
});

describeEachDatabase('Realtime: shutdown', (target) => {
  it('closes every socket with 4200 (reconnect now) when Socle stops', async () => {
    const app = testRealtimeApp();
    const socle = await createTestSocle(target, {
      config: app,
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createRealtimeModule(),
      ],
    });
    const baseUrl = await socle.listen();
    const socket = new RawPusherSocket(baseUrl, app.realtimeAppKey);
    await socket.socketId();
    const result = await socle.dispose().then(() => socket.closed);
    expect(result.code).toBe(4200);
  });
});

describeEachDatabase('Realtime: webhooks', (target) => {
  it('posts signed Pusher webhooks the pusher SDK verifies, as jobs retried when delivery fails', async () => {
    const received: { name: string; channel: string; user_id?: string }[] = [];
    let requests = 0;
    let invalid = 0;
    let waiter: (() => void) | undefined;
    const receiver = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        // The first delivery fails: the event must come again.
        if (++requests === 1) {
          response.writeHead(500).end();
          return;
        }
        const webhook = pusherServer('http://127.0.0.1:1', app).webhook({
          headers: request.headers as Record<string, string>,
          rawBody: Buffer.concat(chunks).toString(),
        });
        if (webhook.isValid()) received.push(...(webhook.getEvents() as typeof received));
        else invalid++;
        response.writeHead(200).end();
        waiter?.();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.address() as AddressInfo;
    const app = testRealtimeApp('-hooks');
    const socle = await createTestSocle(target, {
      // Retried jobs send no NOTIFY: a short poll picks the retry up quickly.
      config: {
        ...app,
        realtimeWebhookUrl: `http://127.0.0.1:${port}/pusher/webhooks`,
        jobsPollIntervalMs: 100,
      },
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createRealtimeModule({ webhookBackoff: { initialDelayMs: 10, maxDelayMs: 50 } }),
      ],
    });
    const until = async (predicate: () => boolean) => {
      while (!predicate()) await new Promise<void>((resolve) => (waiter = resolve));
    };
    const names = () => received.map((event) => `${event.name}:${event.channel}`);
    try {
      const baseUrl = await socle.listen();
      const socket = new RawPusherSocket(baseUrl, app.realtimeAppKey);
      const socketId = await socket.socketId();
      const channelData = JSON.stringify({ user_id: 'u1' });
      socket.send({
        event: 'pusher:subscribe',
        data: {
          channel: 'presence-hooks',
          auth: channelAuth(
            { key: app.realtimeAppKey, secret: app.realtimeAppSecret },
            socketId,
            'presence-hooks',
            channelData,
          ),
          channel_data: channelData,
        },
      });
      await socket.next('pusher_internal:subscription_succeeded');
      socket.send({ event: 'client-move', channel: 'presence-hooks', data: { x: 1 } });
      socket.send({ event: 'pusher:subscribe', data: { channel: 'cache-hooks' } });
      await socket.next('pusher:cache_miss');
      socket.send({ event: 'pusher:unsubscribe', data: { channel: 'presence-hooks' } });
      const expected = [
        'channel_occupied:presence-hooks',
        'member_added:presence-hooks',
        'client_event:presence-hooks',
        'channel_occupied:cache-hooks',
        'cache_miss:cache-hooks',
        'member_removed:presence-hooks',
        'channel_vacated:presence-hooks',
      ];
      // The first request (channel_occupied, member_added) was refused: they arrive by a retry.
      await until(() => expected.every((name) => names().includes(name)));
      expect(names().sort()).toEqual(expected.sort());
      expect(requests).toBeGreaterThan(1);
      expect(received.find((event) => event.name === 'member_added')?.user_id).toBe('u1');
      expect(invalid).toBe(0);
      socket.close();
    } finally {
      await socle.dispose();
      receiver.close();
    }
  });
});
