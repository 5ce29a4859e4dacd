import { testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, caller, manualMonotonic, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer on a node without rooms [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    const clock = manualMonotonic();

    beforeAll(async () => {
      if (!target.available) return;
      world = await startBuzzerWorld(target, {
        // The module's own timers, as `socle start` runs them; the rooms' clock is moved by hand.
        timers: true,
        now: clock.now,
        questions: 2,
        settings: {
          roomSize: 2,
          minPlayers: 2,
          matchWaitSeconds: 0,
          questionsPerGame: 1,
          startDelayMs: 1000,
          questionSeconds: 5,
          answerSeconds: 5,
          revealMs: 1000,
        },
      });
    });
    afterAll(() => world?.socle.dispose());

    it.skipIf(!target.available)(
      'schedules the game tick only while a room is hosted here: not before the first, not after the last',
      async () => {
        const { game } = world.services;
        expect(world.services.ticking(), 'no room yet').toBe(false);

        const call = caller(world.socle);
        const a = await world.socle.newUser();
        const b = await world.socle.newUser();
        const code = game.newCode();
        for (const player of [a, b])
          expect(
            (await call(player, 'POST', '/strategybuzzer/play', { mode: 'classic', language: 'fr', code }))
              .statusCode,
          ).toBe(202);
        await game.match(true);
        const roomId = (await game.roomOf(a.userId)) as string;
        expect(roomId).toBeDefined();
        expect(game.hosts(roomId)).toBe(true);
        expect(world.services.ticking(), 'a room is hosted').toBe(true);

        // Nobody buzzes: the question times out, the game ends, its results are kept a minute,
        // then the room is forgotten. Each step moves the rooms' clock past every deadline.
        for (let step = 0; step < 10 && game.hosts(roomId); step++) {
          clock.advance(61_000);
          await game.advance();
          await game.published(roomId);
        }
        expect(game.hosts(roomId), 'the room is over and forgotten').toBe(false);
        expect(world.services.ticking(), 'the last room is gone').toBe(false);
      },
    );
  },
);
