import { type TestUser, testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, caller, manualMonotonic, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer game rules [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    const clock = manualMonotonic();
    const settings = {
      roomSize: 3,
      minPlayers: 2,
      matchWaitSeconds: 10,
      questionsPerGame: 3,
      startDelayMs: 1000,
      questionSeconds: 10,
      answerSeconds: 5,
      revealMs: 1000,
      maxCompensationMs: 100,
      reconnectGraceSeconds: 5,
    };

    beforeAll(async () => {
      if (!target.available) return;
      world = await startBuzzerWorld(target, { settings, now: clock.now, questions: 6 });
    });
    afterAll(() => world?.socle.dispose());

    const call = (...args: Parameters<ReturnType<typeof caller>>) => caller(world.socle)(...args);
    const play = async (user: TestUser, body: object = { mode: 'classic', language: 'fr' }) =>
      call(user, 'POST', '/strategybuzzer/play', body);
    const tick = async (ms = 0) => {
      clock.advance(ms);
      await world.services.game.tick();
    };
    const room = async (user: TestUser) => (await world.services.game.current(user.userId)).room;

    /** Two players matched into a room, its first question open. */
    async function roomOfTwo() {
      const a = await world.socle.newUser();
      const b = await world.socle.newUser();
      const code = world.services.game.newCode();
      expect((await play(a, { mode: 'classic', language: 'fr', code })).statusCode).toBe(202);
      expect((await play(b, { mode: 'classic', language: 'fr', code })).statusCode).toBe(202);
      await tick(10_000); // the wait is over: the two start
      const roomId = (await world.services.game.roomOf(a.userId)) as string;
      expect(await world.services.game.roomOf(b.userId)).toBe(roomId);
      await tick(1000); // start delay
      expect(await room(a)).toMatchObject({ phase: 'question', no: 0 });
      return { a, b, roomId };
    }

    it.skipIf(!target.available)(
      'matches by region then level, fills rooms of N, starts after the wait, never seats a player twice',
      async () => {
        const players = await Promise.all(Array.from({ length: 5 }, () => world.socle.newUser()));
        for (const player of players) expect((await play(player)).statusCode, 'play').toBe(202);
        // Asking again keeps the one ticket.
        expect((await play(players[0] as TestUser)).json().ticket.id).toBe(
          (await world.services.game.current((players[0] as TestUser).userId)).ticket?.id,
        );
        // An unknown region is refused, naming the regions.
        const far = await world.socle.newUser();
        const refused = await play(far, { mode: 'classic', language: 'fr', region: 'mars' });
        expect(refused.statusCode).toBe(400);
        expect(refused.json()).toMatchObject({ code: 'strategybuzzer.unknown_region', regions: ['local'] });
        // A language without questions is refused.
        expect((await play(far, { mode: 'classic', language: 'de' })).json().code).toBe(
          'strategybuzzer.no_questions',
        );

        await tick(0); // 5 tickets, rooms of 3: one full room at once, two wait
        const seatOf = (player: TestUser) => world.services.game.roomOf(player.userId);
        const seated: TestUser[] = [];
        for (const player of players) if ((await seatOf(player)) !== undefined) seated.push(player);
        expect(seated).toHaveLength(3);
        const inRoom = seated[0] as TestUser;
        const again = await play(inRoom);
        expect(again.statusCode).toBe(409);
        expect(again.json().code).toBe('strategybuzzer.already_in_room');

        await tick(5_000);
        expect(
          (await Promise.all(players.map(seatOf))).filter((roomId) => roomId !== undefined),
        ).toHaveLength(3);
        await tick(5_000); // the oldest waited 10 s: the two left start together
        const rooms = new Set(await Promise.all(players.map(seatOf)));
        expect(rooms.size).toBe(2);
        expect(rooms.has(undefined)).toBe(false);
      },
    );

    it.skipIf(!target.available)(
      'orders buzzes by arrival minus capped one-way latency, one buzz each, a wrong answer passes the floor',
      async () => {
        const { a, b, roomId } = await roomOfTwo();
        const { game } = world.services;
        await tick(500);
        const t = clock.now();
        // b pressed 10 ms before a but is far (90 ms each way): its buzz arrives 70 ms after a's.
        await game.buzz(a.userId, roomId, 0, t + 10, { samples: 5, rttMs: 20, minRttMs: 18, oneWayMs: 10 });
        await game.buzz(b.userId, roomId, 0, t + 80, { samples: 5, rttMs: 180, minRttMs: 170, oneWayMs: 90 });
        await expect(
          game.buzz(b.userId, roomId, 0, t + 90, { samples: 5, rttMs: 180, minRttMs: 170, oneWayMs: 90 }),
        ).rejects.toMatchObject({ code: 'strategybuzzer.already_buzzed' });
        await tick(200); // past the settling window (the cap)
        expect(await room(a)).toMatchObject({ order: [b.userId, a.userId], floor: { userId: b.userId } });

        // Only the floor holder answers; b is wrong: the floor passes to a, who is right.
        expect(() => game.answer(a.userId, roomId, 0, 0)).toThrow(
          expect.objectContaining({ code: 'strategybuzzer.not_your_turn' }),
        );
        expect(game.answer(b.userId, roomId, 0, 2)).toBe(false);
        expect(await room(a)).toMatchObject({ floor: { userId: a.userId } });
        expect(game.answer(a.userId, roomId, 0, 0)).toBe(true);
        expect(await room(a)).toMatchObject({ phase: 'reveal', answer: 0 });
        const scores = Object.fromEntries(
          ((await room(a))?.scores ?? []).map((seat) => [seat.userId, seat.score]),
        );
        expect(scores).toEqual({ [a.userId]: 10, [b.userId]: -5 });

        // Question 2: a buzz on the closed question is refused; a player faking 500 ms of lag
        // gains the cap (100 ms) and no more: the honest near player who pressed 150 ms before
        // the faker's arrival wins.
        await tick(1000);
        await expect(game.buzz(a.userId, roomId, 0, clock.now(), undefined)).rejects.toMatchObject({
          code: 'strategybuzzer.question_closed',
        });
        const t2 = clock.now();
        await game.buzz(a.userId, roomId, 1, t2 + 10, { samples: 5, rttMs: 20, minRttMs: 18, oneWayMs: 10 });
        await game.buzz(b.userId, roomId, 1, t2 + 105, {
          samples: 5,
          rttMs: 1000,
          minRttMs: 900,
          oneWayMs: 500,
        });
        await tick(300);
        expect(await room(a)).toMatchObject({ order: [a.userId, b.userId], floor: { userId: a.userId } });
        // a lets the answer time run out: a wrong answer, the floor passes to b.
        await tick(5000);
        expect(await room(a)).toMatchObject({ floor: { userId: b.userId } });
        expect(game.answer(b.userId, roomId, 1, 0)).toBe(true); // b's streak starts

        // Question 3: nobody buzzes; the deadline reveals it; then the game ends.
        await tick(1000);
        expect(await room(a)).toMatchObject({ phase: 'question', no: 2 });
        await tick(10_000);
        expect(await room(a)).toMatchObject({ phase: 'reveal', no: 2 });
        await tick(1000);
        expect(await room(a)).toMatchObject({ phase: 'finished' });
        await world.services.game.published(roomId);

        // Results persisted, stats added, the players free to play again.
        // a: +10 then -5 (time ran out); b: -5 then +10. Equal scores share the first rank.
        await expect
          .poll(async () => (await call(a, 'GET', `/strategybuzzer/games/${roomId}`)).json().players)
          .toEqual(
            expect.arrayContaining([
              expect.objectContaining({ userId: b.userId, score: 5, rank: 1, correct: 1, wrong: 1 }),
              expect.objectContaining({ userId: a.userId, score: 5, rank: 1, correct: 1, wrong: 1 }),
            ]),
          );
        const me = (await call(a, 'GET', '/strategybuzzer/me')).json();
        expect(me.player).toMatchObject({ games: 1, points: 5, bestStreak: 1 });
        expect(me.room).toMatchObject({ phase: 'finished' }); // results readable a while
        expect((await play(a)).statusCode).toBe(202);
        await call(a, 'DELETE', '/strategybuzzer/play');
      },
    );

    it.skipIf(!target.available)(
      'resyncs a player who comes back: the seat and the running question',
      async () => {
        const { a, b, roomId } = await roomOfTwo();
        await world.services.game.buzz(b.userId, roomId, 0, clock.now(), undefined);
        await tick(200);
        // a reloads the page (a new socket): the snapshot draws the room as it is.
        const me = (await call(a, 'GET', '/strategybuzzer/me')).json();
        expect(me.room).toMatchObject({
          roomId,
          phase: 'question',
          no: 0,
          floor: { userId: b.userId },
          buzzed: [b.userId],
        });
        expect(me.room.answer).toBeUndefined(); // the right answer is not sent before it is revealed
        expect(me.channels).toEqual({
          player: `private-sb-player-${a.userId}`,
          room: `private-sb-room-${roomId}`,
          chat: `private-sb-chat-${roomId}`,
        });
      },
    );

    it.skipIf(!target.available)(
      'keeps the seat of a player whose socket closed for the grace period, then frees it',
      async () => {
        const { a, b, roomId } = await roomOfTwo();
        const { game } = world.services;
        const hello = (socketId: string) =>
          game.onClientEvent({
            appId: world.app.appId,
            channel: `private-sb-player-${a.userId}`,
            event: 'client-hello',
            data: '{}',
            socketId,
            userId: undefined,
            receivedAt: clock.now(),
            latency: undefined,
          });
        await hello('1.1');
        await game.onSocketClosed('1.1');
        await tick(4_000); // within the 5 s grace
        expect(await game.roomOf(a.userId)).toBe(roomId);
        await hello('1.2'); // back from a new socket: the seat is theirs again
        await tick(2_000);
        expect(await game.roomOf(a.userId)).toBe(roomId);

        await game.onSocketClosed('9.9'); // somebody else's socket: nothing changes
        await game.onSocketClosed('1.2');
        await tick(5_000);
        expect(await game.roomOf(a.userId)).toBeUndefined(); // gone: free to play elsewhere
        expect(await game.roomOf(b.userId)).toBe(roomId);
        await tick(1_000); // question 1 opens
        expect(await room(b)).toMatchObject({ phase: 'question', no: 1 });
        await expect(game.buzz(a.userId, roomId, 1, clock.now(), undefined)).rejects.toMatchObject({
          code: 'strategybuzzer.not_in_room',
        });
        // The one left buzzing is enough to end the question when they fail.
        await game.buzz(b.userId, roomId, 1, clock.now(), undefined);
        await tick(300);
        expect(game.answer(b.userId, roomId, 1, 1)).toBe(false);
        expect(await room(b)).toMatchObject({ phase: 'reveal', no: 1 });
      },
    );

    it.skipIf(!target.available)(
      'keeps chat in the room: length and rate limits, last messages on join',
      async () => {
        const { a, b, roomId } = await roomOfTwo();
        const { game } = world.services;
        await game.chat(a.userId, roomId, '  salut  ');
        await expect(game.chat(a.userId, roomId, 'x'.repeat(281))).rejects.toMatchObject({
          code: 'strategybuzzer.invalid_message',
        });
        await expect(game.chat(a.userId, roomId, '   ')).rejects.toMatchObject({
          code: 'strategybuzzer.invalid_message',
        });
        for (let n = 0; n < 4; n++) await game.chat(b.userId, roomId, `b${n}`);
        await game.chat(b.userId, roomId, 'b4');
        await expect(game.chat(b.userId, roomId, 'too many')).rejects.toMatchObject({
          code: 'strategybuzzer.chat_rate_limited',
        });
        const outsider = await world.socle.newUser();
        await expect(game.chat(outsider.userId, roomId, 'hi')).rejects.toMatchObject({
          code: 'strategybuzzer.not_in_room',
        });
        const history = await call(a, 'GET', `/strategybuzzer/rooms/${roomId}/chat`);
        expect(history.json().messages.map((message: { body: string }) => message.body)).toEqual([
          'salut',
          'b0',
          'b1',
          'b2',
          'b3',
          'b4',
        ]);
        expect((await call(outsider, 'GET', `/strategybuzzer/rooms/${roomId}/chat`)).statusCode).toBe(404);
      },
    );

    it.skipIf(!target.available)(
      'imports questions from JSON and CSV, all or none, admins only',
      async () => {
        const admin = { 'x-org-id': world.admin.orgId };
        const before = (
          await call(world.admin, 'GET', '/strategybuzzer/admin/overview', undefined, admin)
        ).json().questions;
        const csv = [
          'language,category,level,prompt,choice1,choice2,choice3,choice4,answer',
          'fr,histoire,2,"Année de la prise de la Bastille ?",1789,1792,1799,1804,1',
          'en,science,1,"H2O is…",water,salt,,,1',
        ].join('\n');
        const imported = await call(world.admin, 'POST', '/strategybuzzer/admin/questions', csv, {
          ...admin,
          'content-type': 'text/csv',
        });
        expect(imported.json()).toEqual({ imported: 2, skipped: 0 });
        // The same again: skipped, not doubled.
        expect(
          (
            await call(world.admin, 'POST', '/strategybuzzer/admin/questions', csv, {
              ...admin,
              'content-type': 'text/csv',
            })
          ).json(),
        ).toEqual({ imported: 0, skipped: 2 });

        // One bad row: nothing written, each problem named by row and column.
        const bad = await call(
          world.admin,
          'POST',
          '/strategybuzzer/admin/questions',
          ['prompt,choice1,choice2,answer', 'Good ?,a,b,1', 'Bad ?,a,b,3', ',a,b,1'].join('\n'),
          { ...admin, 'content-type': 'text/csv' },
        );
        expect(bad.statusCode).toBe(400);
        expect(bad.json().code).toBe('strategybuzzer.invalid_questions');
        expect(bad.json().problems).toEqual([
          'row/3/answer: must be the 1-based number of the right choice',
          'row/4/prompt: must be text of 1 to 500 characters',
        ]);
        const badJson = await call(
          world.admin,
          'POST',
          '/strategybuzzer/admin/questions',
          [{ prompt: 'x', choices: ['a'], answer: 0 }],
          admin,
        );
        expect(badJson.json().problems).toEqual([
          'body/0/choices: must be 2 to 6 texts of 1 to 200 characters',
        ]);
        const after = (
          await call(world.admin, 'GET', '/strategybuzzer/admin/overview', undefined, admin)
        ).json();
        expect(after.questions).toBe(before + 2);

        // A player, or an admin of another organization, may not import.
        const player = await world.socle.newUser();
        const otherOrg = await world.socle.newTenant();
        expect(
          (
            await call(otherOrg.owner, 'POST', '/strategybuzzer/admin/questions', [], {
              'x-org-id': otherOrg.id,
            })
          ).json().code,
        ).toBe('strategybuzzer.not_admin');
        expect((await call(player, 'POST', '/strategybuzzer/admin/questions', [])).statusCode).toBe(400); // no organization
        // Nor claim the game for their organization.
        expect(
          (
            await call(otherOrg.owner, 'POST', '/strategybuzzer/admin/claim', undefined, {
              'x-org-id': otherOrg.id,
            })
          ).json().code,
        ).toBe('strategybuzzer.already_claimed');
      },
    );
  },
);
