import { testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetTime, forwardedArrival } from '../src/fleet.js';
import { connectPlayer, eventsOf, type FleetPlayer, redisReason, redisUrl } from './fleet-support.js';
import { type BuzzerWorld, caller, startBuzzerWorld } from './support.js';

describe('forwardedArrival: a buzz forwarded between nodes, on the host clock', () => {
  const forwarded = (receivedAt: number, sentAt: number) =>
    ({
      kind: 'event',
      userId: 'u',
      socketId: 's',
      event: 'client-buzz',
      data: '{}',
      receivedAt,
      sentAt,
      latency: null,
    }) as const;

  it('keeps the time the event waited on its node (one clock) and the measured transit, within the skew cap', () => {
    const hostNow = 50_000;
    const fleetNow = fleetTime(hostNow);
    // Held 3 ms on the socket's node, 2 ms on the way: arrived 5 ms ago.
    expect(forwardedArrival(forwarded(fleetNow - 5, fleetNow - 2), hostNow, 25)).toBeCloseTo(hostNow - 5, 6);
    // The forwarding node's clock is 500 ms behind: its events look 500 ms in transit; the cap
    // (25 ms) is all they gain.
    expect(forwardedArrival(forwarded(fleetNow - 503, fleetNow - 500), hostNow, 25)).toBeCloseTo(
      hostNow - 28,
      6,
    );
    // Its clock is ahead: the transit looks negative; the arrival is never after the host saw it.
    expect(forwardedArrival(forwarded(fleetNow + 97, fleetNow + 100), hostNow, 25)).toBeCloseTo(
      hostNow - 3,
      6,
    );
  });
});

const targets = await testDatabaseTargets();
const postgres = targets.find((target) => target.dialect === 'postgres');
const redisSkip = await redisReason();
const skipReason = postgres?.available ? redisSkip : 'no Postgres';

describe.skipIf(skipReason !== undefined)(
  `StrategyBuzzer on two nodes [postgres + redis${skipReason ? `: ${skipReason}` : ''}]`,
  () => {
    const nodes: { world: BuzzerWorld; url: string }[] = [];
    const players: FleetPlayer[] = [];
    const settings = {
      roomSize: 4,
      minPlayers: 2,
      matchWaitSeconds: 60,
      questionsPerGame: 3,
      startDelayMs: 2000, // players open the room's channels before the first question
      questionSeconds: 20,
      answerSeconds: 10,
      revealMs: 300,
      maxCompensationMs: 100,
      reconnectGraceSeconds: 2,
    };

    beforeAll(async () => {
      if (postgres === undefined) return;
      const first = await startBuzzerWorld(postgres, { timers: true, settings, redisUrl, questions: 12 });
      const second = await startBuzzerWorld(postgres, {
        timers: true,
        settings,
        node: { of: first, redisUrl },
      });
      for (const world of [first, second]) nodes.push({ world, url: await world.socle.listen() });
    }, 120_000);
    afterAll(async () => {
      for (const player of players) player.pusher.disconnect();
      // The second node shares the first's database: it goes first.
      for (const node of [...nodes].reverse()) await node.world.socle.dispose();
    });

    const node = (index: number) => nodes[index] as { world: BuzzerWorld; url: string };
    const call = (index: number) => caller(node(index).world.socle);
    const newPlayer = async (index: number) => {
      const user = await node(0).world.socle.newUser();
      const player = await connectPlayer(node(index).url, node(0).world.app.appKey, user);
      players.push(player);
      // Latency is measured where the socket is: on its node, not on the other.
      await expect
        .poll(() => node(index).world.realtime.latency(player.pusher.connection.socket_id)?.samples ?? 0, {
          timeout: 15_000,
        })
        .toBeGreaterThanOrEqual(3);
      expect(node(1 - index).world.realtime.latency(player.pusher.connection.socket_id)).toBeUndefined();
      return player;
    };

    it('seats players of both nodes in one room hosted by one node; buzzes, answers, chat and resync cross nodes', {
      timeout: 120_000,
    }, async () => {
      // Two players on each node; each asks to play on its own node, with one friends' code.
      const group = [await newPlayer(0), await newPlayer(1), await newPlayer(0), await newPlayer(1)];
      const code = node(0).world.services.game.newCode();
      await Promise.all(
        group.map(async (player, index) => {
          const played = await call(index % 2)(player.user, 'POST', '/strategybuzzer/play', {
            mode: 'classic',
            language: 'fr',
            code,
          });
          expect(played.statusCode, played.body).toBe(202);
        }),
      );
      // Both nodes run their matchmaker: one room, all four in it, hosted by exactly one node.
      await expect
        .poll(() => group.every((player) => player.roomId !== undefined), { timeout: 20_000 })
        .toBe(true);
      const roomId = group[0]?.roomId as string;
      for (const player of group) expect(player.roomId).toBe(roomId);
      const hosts = nodes.map(({ world }) => world.services.game.hosts(roomId));
      expect(hosts.filter(Boolean)).toHaveLength(1);
      const hostIndex = hosts.indexOf(true);
      const remote = group[1 - hostIndex] as FleetPlayer; // a player whose socket is on the other node
      const local = group[hostIndex] as FleetPlayer;

      // The first question reaches everyone; the remote player buzzes first and holds the floor.
      await expect
        .poll(() => group.every((player) => eventsOf(player, 'room', 'question').length > 0), {
          timeout: 20_000,
        })
        .toBe(true);
      remote.trigger('client-buzz', { no: 0 });
      await expect
        .poll(() => group.every((player) => eventsOf(player, 'room', 'order').length > 0), {
          timeout: 20_000,
        })
        .toBe(true);
      // The order that gave the floor carries it, and nothing the event's name already says.
      for (const player of group)
        expect(eventsOf(player, 'room', 'order')[0]?.data).toEqual({
          no: 0,
          order: [remote.user.userId],
          floor: { userId: remote.user.userId, remainingMs: expect.any(Number) },
        });

      // A player of the host's node asks for the room through the other node (GET /me): the
      // host draws it over the bus.
      const me = await call(1 - hostIndex)(local.user, 'GET', '/strategybuzzer/me');
      expect(me.json().room).toMatchObject({
        roomId,
        phase: 'question',
        no: 0,
        floor: { userId: remote.user.userId },
        buzzed: [remote.user.userId],
      });

      // The remote player answers right; everyone sees the same scores.
      remote.trigger('client-answer', { no: 0, choice: 0 });
      await expect
        .poll(() => group.every((player) => eventsOf(player, 'room', 'reveal').length > 0), {
          timeout: 20_000,
        })
        .toBe(true);
      // A right answer is told by the reveal naming its winner.
      for (const player of group)
        expect(eventsOf(player, 'room', 'reveal')[0]?.data).toMatchObject({
          no: 0,
          winner: remote.user.userId,
          answer: 0,
        });

      // A buzz on a room the sender does not sit in is refused by the host, whichever node.
      const outsider = await newPlayer(1 - hostIndex);
      outsider.roomId = roomId;
      outsider.trigger('client-buzz', { no: 1 });
      await expect
        .poll(() => eventsOf(outsider, 'player', 'error').map((error) => error.data.code), {
          timeout: 20_000,
        })
        .toContain('strategybuzzer.not_in_room');

      // Chat from the remote node reaches all, and is kept.
      remote.trigger('client-chat', { body: 'bonjour des deux nœuds' });
      await expect
        .poll(() => group.every((player) => eventsOf(player, 'chat', 'message').length > 0), {
          timeout: 20_000,
        })
        .toBe(true);

      // Voice across nodes: its members are kept by the room's host, whichever node holds each
      // socket. A player of the host's node joins, then the remote one, who finds them there and
      // sends them an offer: it arrives from the remote player, relayed through the host.
      local.trigger('client-voice-join', {});
      await expect
        .poll(() => eventsOf(local, 'player', 'voice-peers').map((peers) => peers.data.peers), {
          timeout: 20_000,
        })
        .toEqual([[]]);
      remote.trigger('client-voice-join', {});
      await expect
        .poll(() => eventsOf(remote, 'player', 'voice-peers').map((peers) => peers.data.peers), {
          timeout: 20_000,
        })
        .toEqual([[local.user.userId]]);
      await expect
        .poll(() => eventsOf(local, 'player', 'voice-joined').map((joined) => joined.data.userId), {
          timeout: 20_000,
        })
        .toEqual([remote.user.userId]);
      const offer = { type: 'offer', sdp: 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n' };
      remote.trigger('client-voice-signal', { to: local.user.userId, kind: 'offer', data: offer });
      await expect
        .poll(() => eventsOf(local, 'player', 'voice-signal').map((signal) => signal.data), {
          timeout: 20_000,
        })
        .toEqual([{ roomId, from: remote.user.userId, kind: 'offer', data: offer }]);
    });

    it('keeps the seat of a remote player through the grace, then frees it: the host hears of sockets it does not hold', {
      timeout: 120_000,
    }, async () => {
      const [a, b] = [await newPlayer(0), await newPlayer(1)];
      const code = node(0).world.services.game.newCode();
      for (const [index, player] of [a, b].entries())
        expect(
          (
            await call(index)(player.user, 'POST', '/strategybuzzer/play', {
              mode: 'classic',
              language: 'fr',
              code,
            })
          ).statusCode,
        ).toBe(202);
      // Rooms of four (the wait is a minute): two more players, one on each node.
      const [c, d] = [await newPlayer(0), await newPlayer(1)];
      for (const [index, player] of [c, d].entries())
        expect(
          (
            await call(index)(player.user, 'POST', '/strategybuzzer/play', {
              mode: 'classic',
              language: 'fr',
              code,
            })
          ).statusCode,
        ).toBe(202);
      const group = [a, b, c, d];
      await expect
        .poll(() => group.every((player) => player.roomId !== undefined), { timeout: 20_000 })
        .toBe(true);
      const roomId = a.roomId as string;
      const hostIndex = nodes.findIndex(({ world }) => world.services.game.hosts(roomId));
      const remote = group[1 - hostIndex] as FleetPlayer;
      // The remote player's socket closes (on the node that is not the host): past the grace
      // (2 s) the host frees the seat and tells the room.
      remote.pusher.disconnect();
      await expect
        .poll(() => eventsOf(a === remote ? b : a, 'room', 'left').map((left) => left.data.userId), {
          timeout: 30_000,
        })
        .toContain(remote.user.userId);
      expect(await node(0).world.services.game.roomOf(remote.user.userId)).toBeUndefined();
      expect(
        (await call(0)(remote.user, 'POST', '/strategybuzzer/play', { mode: 'classic', language: 'fr' }))
          .statusCode,
      ).toBe(202);
      await call(0)(remote.user, 'DELETE', '/strategybuzzer/play');
    });

    it('never seats a player in two rooms when both nodes match at once', { timeout: 120_000 }, async () => {
      // 24 players, each asking to play twice at once, once on each node, rooms of 4 formed by
      // whichever node's matchmaker gets there.
      const users = await Promise.all(Array.from({ length: 24 }, () => node(0).world.socle.newUser()));
      const asked = await Promise.all(
        users.flatMap((user) =>
          [0, 1].map((index) =>
            call(index)(user, 'POST', '/strategybuzzer/play', { mode: 'classic', language: 'fr' }),
          ),
        ),
      );
      // Both requests of a player got their one ticket (or, matched meanwhile, already_in_room).
      for (const answer of asked) expect([202, 409], answer.body).toContain(answer.statusCode);
      const admin = node(0).world.admin;
      const overview = async (index: number) =>
        (
          await call(index)(admin, 'GET', '/strategybuzzer/admin/overview', undefined, {
            'x-org-id': admin.orgId,
          })
        ).json() as { rooms: { id: string; host: string; players: string[] }[]; node: string };
      const ours = new Set(users.map((user) => user.userId));
      await expect
        .poll(
          async () =>
            (await overview(0)).rooms.flatMap((room) => room.players).filter((userId) => ours.has(userId))
              .length,
          { timeout: 30_000 },
        )
        .toBe(24);
      const { rooms } = await overview(1);
      const seated = rooms.flatMap((room) => room.players).filter((userId) => ours.has(userId));
      expect(new Set(seated).size).toBe(seated.length); // nobody twice
      const nodeIds = [(await overview(0)).node, (await overview(1)).node];
      for (const room of rooms.filter((room) => room.players.some((userId) => ours.has(userId))))
        expect(nodeIds).toContain(room.host);
    });
  },
);
