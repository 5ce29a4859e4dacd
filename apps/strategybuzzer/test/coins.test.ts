import { type LedgerServices, tenantSettings } from 'socle';
import { testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, caller, manualMonotonic, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer coins in the ledger [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    const clock = manualMonotonic();

    beforeAll(async () => {
      if (!target.available) return;
      world = await startBuzzerWorld(target, {
        now: clock.now,
        settings: {
          roomSize: 2,
          minPlayers: 2,
          startDelayMs: 0,
          starterCoins: 100,
          premiumEntryCoins: 20,
          hintCoins: 5,
        },
      });
    });
    afterAll(() => world?.socle.dispose());

    const call = (...args: Parameters<ReturnType<typeof caller>>) => caller(world.socle)(...args);
    const coinsOf = async (user: { token: string }) =>
      (await call(user, 'GET', '/strategybuzzer/me')).json().coins;

    it.skipIf(!target.available)(
      'grants starter coins once, holds a premium entry, gives it back on leaving, takes it when the room starts',
      async () => {
        const a = await world.socle.newUser();
        const b = await world.socle.newUser();
        // Two first uses at once open one wallet with one grant.
        const [first, second] = await Promise.all([coinsOf(a), coinsOf(a)]);
        expect([first, second]).toEqual([100, 100]);

        const code = world.services.game.newCode();
        expect(
          (await call(a, 'POST', '/strategybuzzer/play', { mode: 'premium', language: 'fr', code }))
            .statusCode,
        ).toBe(202);
        expect(await coinsOf(a)).toBe(80); // held
        expect((await call(a, 'DELETE', '/strategybuzzer/play')).statusCode).toBe(204);
        expect(await coinsOf(a)).toBe(100); // given back

        const revenueBefore = await world.services.coins.revenue(world.admin.userId);
        await call(a, 'POST', '/strategybuzzer/play', { mode: 'premium', language: 'fr', code });
        await call(b, 'POST', '/strategybuzzer/play', { mode: 'premium', language: 'fr', code });
        await world.services.game.tick();
        expect(await world.services.game.roomOf(a.userId)).toBeDefined();
        expect([await coinsOf(a), await coinsOf(b)]).toEqual([80, 80]);
        expect(await world.services.coins.revenue(world.admin.userId)).toBe(revenueBefore + 40);
      },
    );

    it.skipIf(!target.available)(
      "keeps a player's coins outside any organization: theirs to read, not the organization's that runs the game",
      async () => {
        const { ledger } = world.socle.servicesOf<LedgerServices>('ledger');
        const player = await world.socle.newUser();
        expect(await coinsOf(player)).toBe(100);
        const walletId = await world.services.coins.wallet(player.userId);
        const asPlayer = await world.socle.db.transaction((trx) => ledger.accounts(trx, {}), {
          settings: tenantSettings({ userId: player.userId }),
        });
        expect(asPlayer).toEqual([
          expect.objectContaining({
            id: walletId,
            owner: { kind: 'user', userId: player.userId },
            unit: 'coins',
            balance: expect.objectContaining({ posted: 100n }),
          }),
        ]);
        // The organization that runs the game holds no account of the player's, nor any coins.
        const inHouse = await world.socle.db.transaction((trx) => ledger.accounts(trx, {}), {
          settings: tenantSettings({ tenantId: world.admin.orgId }),
        });
        expect(inHouse.filter((account) => account.unit === 'coins')).toEqual([]);
        // Another player does not read it.
        const other = await world.socle.newUser();
        await expect(
          world.socle.db.transaction((trx) => ledger.account(trx, walletId), {
            settings: tenantSettings({ userId: other.userId }),
          }),
        ).rejects.toMatchObject({ code: 'ledger.account_not_found' });
      },
    );

    it.skipIf(!target.available)(
      'sells a hint to the player holding the floor, once per question',
      async () => {
        const a = await world.socle.newUser();
        const b = await world.socle.newUser();
        const code = world.services.game.newCode();
        await call(a, 'POST', '/strategybuzzer/play', { mode: 'classic', language: 'fr', code });
        await call(b, 'POST', '/strategybuzzer/play', { mode: 'classic', language: 'fr', code });
        await world.services.game.tick();
        const roomId = (await world.services.game.roomOf(a.userId)) as string;
        const { game } = world.services;
        await expect(game.hint(a.userId, roomId, 0)).rejects.toMatchObject({
          code: 'strategybuzzer.not_your_turn',
        });
        await game.buzz(a.userId, roomId, 0, clock.now(), undefined);
        clock.advance(1000);
        await game.tick();
        expect(await game.hint(a.userId, roomId, 0)).toEqual([1, 2]); // two wrong choices struck out
        expect(await coinsOf(a)).toBe(95);
        await expect(game.hint(a.userId, roomId, 0)).rejects.toMatchObject({
          code: 'strategybuzzer.not_your_turn',
        });
        expect(await coinsOf(a)).toBe(95);
      },
    );

    it.skipIf(!target.available)(
      'never goes negative under concurrent spends, and a replayed spend is charged once',
      async () => {
        const player = await world.socle.newUser();
        expect(await coinsOf(player)).toBe(100);
        const outcomes = await Promise.allSettled(
          Array.from({ length: 30 }, (_, n) =>
            world.services.coins.spend(player.userId, `test:${player.userId}:${n}`, 5, 'hint'),
          ),
        );
        expect(outcomes.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(20);
        for (const outcome of outcomes)
          if (outcome.status === 'rejected')
            expect(outcome.reason).toMatchObject({ code: 'ledger.insufficient_funds' });
        expect(await coinsOf(player)).toBe(0);
        // A spend that succeeded, sent again (a retry): the same transfer, no second charge.
        const succeeded = outcomes.findIndex((outcome) => outcome.status === 'fulfilled');
        await world.services.coins.spend(player.userId, `test:${player.userId}:${succeeded}`, 5, 'hint');
        expect(await coinsOf(player)).toBe(0);
        // With no coins, a premium room is refused and nothing is held.
        const refused = await call(player, 'POST', '/strategybuzzer/play', {
          mode: 'premium',
          language: 'fr',
        });
        expect(refused.statusCode).toBe(422);
        expect(refused.json().code).toBe('ledger.insufficient_funds');
        expect((await world.services.game.current(player.userId)).ticket).toBeNull();
      },
    );
  },
);
