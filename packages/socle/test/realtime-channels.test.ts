import { expect, it } from 'vitest';
import { channelAuth } from '../src/modules/realtime/index.js';
import { callAs, type TestUser } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';
import { connected, nextEvent, type PresenceChannel, pusherServer } from './support/realtime-clients.js';

import { useRealtimeServer } from './support/realtime-server.js';

describeEachDatabase('Realtime: private, presence and encrypted channels', (target) => {
  const server = useRealtimeServer(target);

  it('serves private-encrypted channels end to end: shared_secret as the pusher SDK derives it, events encrypted by the SDK or realtime.publish and opened by pusher-js', async () => {
    const channelName = 'private-encrypted-room-1';
    const subscriber = server.client(server.alice.token);
    const socketId = await connected(subscriber);
    // The auth endpoint answers exactly what the official SDK, given the master key, would.
    const authorized = await callAs(server.socle, server.alice, 'POST', '/realtime/auth', {
      payload: { socket_id: socketId, channel_name: channelName },
    });
    expect(authorized.json()).toEqual(
      pusherServer(server.baseUrl, server.app).authorizeChannel(socketId, channelName),
    );
    expect(authorized.json().shared_secret).toEqual(expect.any(String));

    const channel = subscriber.subscribe(channelName);
    await nextEvent(channel, 'pusher:subscription_succeeded');
    const fromSdk = nextEvent(channel, 'secret-note');
    await pusherServer(server.baseUrl, server.app).trigger(channelName, 'secret-note', {
      text: 'only for you',
    });
    expect(await fromSdk).toEqual({ text: 'only for you' });
    const fromServer = nextEvent(channel, 'secret-note');
    await server.realtime.publish({
      channel: channelName,
      event: 'secret-note',
      data: { text: 'from a job' },
    });
    expect(await fromServer).toEqual({ text: 'from a job' });

    // Plain text to an encrypted channel is refused, naming the channel.
    // (The SDK's typings say `body` is a string; it JSON-encodes what it is given.)
    const body = { name: 'leak', channel: channelName, data: '{"text":"oops"}' } as unknown as string;
    const plain = await pusherServer(server.baseUrl, server.app)
      .post({ path: '/events', body })
      .catch((error: { status: number; body: string }) => error);
    expect(plain, JSON.stringify(plain)).toMatchObject({ status: 400 });
    expect(JSON.parse((plain as { body: string }).body)).toMatchObject({
      code: 'realtime.unencrypted_payload',
      channel: channelName,
    });
  });

  it('lets a signed-in user join a private channel a module allows, and refuses others', async () => {
    const own = server.client(server.alice.token);
    const mine = own.subscribe(`private-notes-${server.alice.userId}`);
    await nextEvent(mine, 'pusher:subscription_succeeded');
    const received = nextEvent(mine, 'note');
    await pusherServer(server.baseUrl, server.app).trigger(
      `private-notes-${server.alice.userId}`,
      'note',
      'hello',
    );
    expect(await received).toBe('hello');

    const other = own.subscribe(`private-notes-${server.bob.userId}`);
    expect(await nextEvent<{ status: number }>(other, 'pusher:subscription_error')).toMatchObject({
      status: 403,
    });

    const anonymous = server.client();
    const refused = anonymous.subscribe(`private-notes-${server.alice.userId}`);
    expect(await nextEvent<{ status: number }>(refused, 'pusher:subscription_error')).toMatchObject({
      status: 401,
    });
  });

  it('refuses a private subscription whose signature was made for another socket', async () => {
    const socket = server.raw();
    await socket.socketId();
    const forged = channelAuth(
      { key: server.app.appKey, secret: server.app.appSecret },
      '1.1',
      'private-chat-forged',
    );
    socket.send({ event: 'pusher:subscribe', data: { channel: 'private-chat-forged', auth: forged } });
    const error = await socket.next('pusher:subscription_error');
    expect(error).toMatchObject({ channel: 'private-chat-forged', data: { status: 401 } });
  });

  it('keeps presence members, announces joins and leaves, and lists them over the HTTP API', async () => {
    const first = server.client(server.alice.token);
    const room = first.subscribe('presence-room-1') as PresenceChannel;
    await nextEvent(room, 'pusher:subscription_succeeded');
    expect(room.members.count).toBe(1);

    const added = nextEvent<{ id: string }>(room, 'pusher:member_added');
    const second = server.client(server.bob.token);
    const bobRoom = second.subscribe('presence-room-1') as PresenceChannel;
    await nextEvent(bobRoom, 'pusher:subscription_succeeded');
    expect(bobRoom.members.count).toBe(2);
    expect((await added).id).toBe(server.bob.userId);

    const users = await pusherServer(server.baseUrl, server.app).get({
      path: '/channels/presence-room-1/users',
    });
    const ids = ((await users.json()) as { users: { id: string }[] }).users.map((user) => user.id).sort();
    expect(ids).toEqual([server.alice.userId, server.bob.userId].sort());

    const removed = nextEvent<{ id: string }>(room, 'pusher:member_removed');
    second.unsubscribe('presence-room-1');
    expect((await removed).id).toBe(server.bob.userId);
    expect(room.members.count).toBe(1);

    const closed = server.client(server.alice.token).subscribe('presence-room-closed');
    expect(await nextEvent<{ status: number }>(closed, 'pusher:subscription_error')).toMatchObject({
      status: 403,
    });
  });

  it('relays client events on private channels to everyone but the sender, and refuses them on public ones', async () => {
    const sender = server.client(server.alice.token);
    const receiver = server.client(server.bob.token);
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
    await pusherServer(server.baseUrl, server.app).trigger('private-chat-7', 'server-done', {});
    await after;
    expect(echoed).toBe(false);

    const socket = server.raw();
    await socket.socketId();
    socket.send({ event: 'pusher:subscribe', data: { channel: 'lobby' } });
    await socket.next('pusher_internal:subscription_succeeded');
    socket.send({ event: 'client-hello', channel: 'lobby', data: {} });
    expect(await socket.next('pusher:error')).toMatchObject({ data: { code: 4301 } });
  });

  it('rate-limits client events per connection with pusher:error 4301', async () => {
    const socket = server.raw();
    const socketId = await socket.socketId();
    const auth = channelAuth(
      { key: server.app.appKey, secret: server.app.appSecret },
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

  it('signs a user in, delivers to #server-to-user, and terminates their connections', async () => {
    const signedIn = server.client(server.alice.token);
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
    await pusherServer(server.baseUrl, server.app).sendToUser(server.alice.userId, 'direct', { hi: true });
    expect(await received).toEqual({ hi: true });

    const socket = server.raw();
    await socket.socketId();
    socket.send({ event: 'pusher:subscribe', data: { channel: `#server-to-user-${server.alice.userId}` } });
    expect(await socket.next('pusher:subscription_error')).toMatchObject({ data: { status: 403 } });

    const disconnected = new Promise<void>((resolve) => signedIn.connection.bind('disconnected', resolve));
    const response = await pusherServer(server.baseUrl, server.app).terminateUserConnections(
      server.alice.userId,
    );
    expect(response.status).toBe(200);
    await disconnected;
  });

  it('works with laravel-echo: public events, presence here/joining, private whispers', async () => {
    const { default: Echo } = await import('laravel-echo');
    const { default: PusherForEcho } = await import('pusher-js');
    const { hostname, port } = new URL(server.baseUrl);
    const echoFor = (user: TestUser) =>
      new Echo({
        broadcaster: 'pusher',
        key: server.app.appKey,
        cluster: 'local',
        wsHost: hostname,
        wsPort: Number(port),
        forceTLS: false,
        enabledTransports: ['ws'],
        disableStats: true,
        authEndpoint: `${server.baseUrl}/realtime/auth`,
        auth: { headers: { authorization: `Bearer ${user.token}` } },
        Pusher: PusherForEcho,
      });
    const aliceEcho = echoFor(server.alice);
    const bobEcho = echoFor(server.bob);
    try {
      const shipped = new Promise((resolve) => aliceEcho.channel('orders').listen('.OrderShipped', resolve));
      await new Promise<void>((resolve) =>
        aliceEcho.connector.pusher.channel('orders').bind('pusher:subscription_succeeded', resolve),
      );
      await pusherServer(server.baseUrl, server.app).trigger('orders', 'OrderShipped', { id: 7 });
      expect(await shipped).toEqual({ id: 7 });

      // Echo hands out each member's user_info (the module's authorizer gave { email }).
      const here = new Promise<unknown[]>((resolve) => aliceEcho.join('room-echo').here(resolve));
      expect(await here).toEqual([{ email: server.alice.userId.slice(0, 8) }]);
      const joining = new Promise<unknown>((resolve) => aliceEcho.join('room-echo').joining(resolve));
      bobEcho.join('room-echo');
      expect(await joining).toEqual({ email: server.bob.userId.slice(0, 8) });

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
});
