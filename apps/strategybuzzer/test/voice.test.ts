import { type TestUser, testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { turnCredentials } from '../src/voice.js';
import { collect, type PusherJs, pusherFor, subscribed } from './pusher-clients.js';
import { type BuzzerWorld, caller, startBuzzerWorld } from './support.js';

const TURN_SECRET = 'coturn-static-auth-secret';

/** base64(HMAC-SHA1(secret, username)) by WebCrypto: another implementation than the app's. */
async function hmacSha1Base64(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-1' },
    false,
    ['sign'],
  );
  const signature = await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(message));
  return Buffer.from(signature).toString('base64');
}

describe("coTURN's REST credentials", () => {
  it('signs expiry:userId with HMAC-SHA1 of the static-auth-secret, in base64', async () => {
    const userId = '0b6c8d2e-5f1a-4c3b-9d7e-2a1f3e4d5c6b';
    const made = turnCredentials(TURN_SECRET, userId, { nowSeconds: 1767225000.7, ttlSeconds: 600 });
    expect(made.username).toBe(`1767225600:${userId}`);
    expect(made.expiresAt).toBe(1767225600);
    // Computed once with Python's hmac module (hmac.new(secret, username, sha1), base64).
    expect(made.credential).toBe('QOCjZfLtV6MO9NN25Svv5760kmQ=');
    expect(made.credential).toBe(await hmacSha1Base64(TURN_SECRET, made.username));
  });
});

const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer voice: TURN credentials and WebRTC signalling [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    let baseUrl: string;
    const clients: PusherJs[] = [];

    beforeAll(async () => {
      if (!target.available) return;
      world = await startBuzzerWorld(target, {
        settings: {
          roomSize: 3,
          minPlayers: 3,
          startDelayMs: 0,
          voiceMaxPeers: 2,
          turnSecret: TURN_SECRET,
          turnUrls: ['turn:turn.example.test:3478?transport=udp', 'turns:turn.example.test:5349'],
          turnTtlSeconds: 600,
        },
      });
      baseUrl = await world.socle.listen();
    });
    afterAll(async () => {
      for (const client of clients) client.disconnect();
      await world?.socle.dispose();
    });

    const call = (...args: Parameters<ReturnType<typeof caller>>) => caller(world.socle)(...args);

    /** Three players seated in one room (a friends' code). */
    async function seatThree(): Promise<[TestUser, TestUser, TestUser]> {
      const players: [TestUser, TestUser, TestUser] = [
        await world.socle.newUser(),
        await world.socle.newUser(),
        await world.socle.newUser(),
      ];
      const code = world.services.game.newCode();
      for (const player of players)
        expect(
          (await call(player, 'POST', '/strategybuzzer/play', { mode: 'classic', language: 'fr', code }))
            .statusCode,
        ).toBe(202);
      await world.services.game.tick();
      const roomId = await world.services.game.roomOf(players[0].userId);
      expect(roomId).toBeDefined();
      for (const player of players) expect(await world.services.game.roomOf(player.userId)).toBe(roomId);
      return players;
    }

    it.skipIf(!target.available)(
      'gives a seated player their own short-lived TURN credentials, which verify independently; others get 404',
      async () => {
        const outsider = await world.socle.newUser();
        const refused = await call(outsider, 'GET', '/strategybuzzer/voice/credentials');
        expect(refused.statusCode).toBe(404);
        expect(refused.json()).toMatchObject({ code: 'strategybuzzer.not_in_room' });

        const [player] = await seatThree();
        const before = Math.floor(Date.now() / 1000);
        const answer = await call(player, 'GET', '/strategybuzzer/voice/credentials');
        expect(answer.statusCode).toBe(200);
        const { iceServers, maxPeers } = answer.json() as {
          iceServers: { urls: string[]; username: string; credential: string }[];
          maxPeers: number;
        };
        expect(maxPeers).toBe(2);
        expect(iceServers).toHaveLength(1);
        const [server] = iceServers as [{ urls: string[]; username: string; credential: string }];
        expect(server.urls).toEqual([
          'turn:turn.example.test:3478?transport=udp',
          'turns:turn.example.test:5349',
        ]);
        const [expiry, userId] = server.username.split(':');
        expect(userId).toBe(player.userId);
        expect(Number(expiry)).toBeGreaterThanOrEqual(before + 600);
        expect(Number(expiry)).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 600);
        expect(server.credential).toBe(await hmacSha1Base64(TURN_SECRET, server.username));
        // Another player's credentials are their own, never a shared password.
        const other = await call(await world.socle.newUser(), 'GET', '/strategybuzzer/voice/credentials');
        expect(other.statusCode).toBe(404);
      },
    );

    it.skipIf(!target.available)(
      'relays offer, answer and ICE between two pusher-js players of the room, from the sender the server knows; caps the mesh',
      async () => {
        const [alice, bob, carol] = await seatThree();
        const roomId = (await world.services.game.roomOf(alice.userId)) as string;
        const connect = async (user: TestUser) => {
          const client = pusherFor(world, baseUrl, user);
          clients.push(client);
          const own = await subscribed(client, `private-sb-player-${user.userId}`);
          return {
            own,
            peers: collect<{ roomId: string; peers: string[] }>(own, 'voice-peers'),
            joined: collect<{ userId: string }>(own, 'voice-joined'),
            left: collect<{ userId: string }>(own, 'voice-left'),
            signals: collect<{ from: string; kind: string; data: unknown }>(own, 'voice-signal'),
            errors: collect<{ event: string; code: string }>(own, 'error'),
          };
        };
        const [a, b, c] = [await connect(alice), await connect(bob), await connect(carol)];
        const poll = <T>(read: () => T) => expect.poll(read, { timeout: 15_000, interval: 25 });

        a.own.trigger('client-voice-join', { roomId });
        await poll(() => a.peers).toEqual([{ roomId, peers: [] }]);
        b.own.trigger('client-voice-join', { roomId });
        await poll(() => b.peers).toEqual([{ roomId, peers: [alice.userId] }]);
        await poll(() => a.joined).toEqual([{ roomId, userId: bob.userId }]);

        // The newcomer offers to whoever was there; the answer and candidates go back the same way.
        const offer = { type: 'offer', sdp: 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n' };
        b.own.trigger('client-voice-signal', { roomId, to: alice.userId, kind: 'offer', data: offer });
        await poll(() => a.signals).toEqual([{ roomId, from: bob.userId, kind: 'offer', data: offer }]);
        const answerSdp = { type: 'answer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' };
        a.own.trigger('client-voice-signal', { roomId, to: bob.userId, kind: 'answer', data: answerSdp });
        const candidate = { candidate: 'candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host', sdpMid: '0' };
        a.own.trigger('client-voice-signal', { roomId, to: bob.userId, kind: 'ice', data: candidate });
        await poll(() => b.signals).toEqual([
          { roomId, from: alice.userId, kind: 'answer', data: answerSdp },
          { roomId, from: alice.userId, kind: 'ice', data: candidate },
        ]);

        // A third voice is over the cap (2 here); outside the voice, nothing is relayed.
        c.own.trigger('client-voice-join', { roomId });
        await poll(() => c.errors.map((error) => error.code)).toEqual(['strategybuzzer.voice_full']);
        c.own.trigger('client-voice-signal', { roomId, to: alice.userId, kind: 'offer', data: offer });
        await poll(() => c.errors.map((error) => error.code)).toEqual([
          'strategybuzzer.voice_full',
          'strategybuzzer.not_in_voice',
        ]);
        b.own.trigger('client-voice-signal', { roomId, to: alice.userId, kind: 'video', data: offer });
        await poll(() => b.errors.map((error) => error.code)).toEqual(['strategybuzzer.invalid_signal']);
        expect(a.signals).toHaveLength(1); // nothing from Carol, nothing bad from Bob

        // Alice leaves: Bob is told, and Carol may join in her place.
        a.own.trigger('client-voice-leave', { roomId });
        await poll(() => b.left).toEqual([{ roomId, userId: alice.userId }]);
        c.own.trigger('client-voice-join', { roomId });
        await poll(() => c.peers).toEqual([{ roomId, peers: [bob.userId] }]);
        expect(world.services.voice.members(roomId)).toEqual([bob.userId, carol.userId]);
      },
    );
  },
);
