import { type LedgerServices, tenantSettings } from 'socle';
import { testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, type PusherJs, pusherFor, subscribed } from './pusher-clients.js';
import { type BuzzerWorld, caller, manualMonotonic, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer premium entries given back when a game is cut short [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    let baseUrl: string;
    const clock = manualMonotonic();
    const clients: PusherJs[] = [];
    const extraNodes: BuzzerWorld[] = [];

    beforeAll(async () => {
      if (!target.available) return;
      world = await startBuzzerWorld(target, {
        now: clock.now,
        settings: {
          roomSize: 2,
          minPlayers: 2,
          startDelayMs: 60_000,
          starterCoins: 100,
          premiumEntryCoins: 20,
        },
      });
      baseUrl = await world.socle.listen();
    });
    afterAll(async () => {
      for (const client of clients) client.disconnect();
      for (const node of extraNodes) await node.socle.dispose();
      await world?.socle.dispose();
    });

    const call = (...args: Parameters<ReturnType<typeof caller>>) => caller(world.socle)(...args);
    const coinsOf = async (user: { token: string }) =>
      (await call(user, 'GET', '/strategybuzzer/me')).json().coins as number;

    /** The wallet's transfers, oldest first, as the player reads them. */
    async function walletTransfers(userId: string) {
      const { ledger } = world.socle.servicesOf<LedgerServices>('ledger');
      const walletId = await world.services.coins.wallet(userId);
      const page = await world.socle.db.transaction((trx) => ledger.history(trx, walletId, { limit: 1000 }), {
        // The player's own request reads it: the coins are theirs, outside any organization.
        settings: tenantSettings({ userId }),
      });
      return page.transfers.reverse();
    }

    /** Two players with a friends' code in a premium room that started (their fees taken). */
    async function premiumRoom() {
      const players = [await world.socle.newUser(), await world.socle.newUser()];
      const code = world.services.game.newCode();
      for (const player of players)
        expect(
          (await call(player, 'POST', '/strategybuzzer/play', { mode: 'premium', language: 'fr', code }))
            .statusCode,
        ).toBe(202);
      return { players, code };
    }

    // Two more processes on the database: Postgres only (an embedded database has one process).
    it.skipIf(!target.available || target.dialect !== 'postgres')(
      'gives each fee back once, as a reversal of its posting, when two nodes race to end a room whose host died, and again after a restart',
      { timeout: 120_000 },
      async () => {
        const { players } = await premiumRoom();
        await world.services.game.tick();
        const roomId = (await world.services.game.roomOf(players[0]?.userId as string)) as string;
        expect(roomId).toBeDefined();
        for (const player of players) expect(await coinsOf(player)).toBe(80);
        const revenueBefore = await world.services.coins.revenue(world.admin.userId);

        // The host is gone (its process crashed before the first question): two processes
        // started on its database at once each end the rooms nobody runs any more.
        const restarted = await Promise.all(
          [0, 1].map(() =>
            startBuzzerWorld(target, {
              now: clock.now,
              settings: { roomSize: 2, minPlayers: 2, starterCoins: 100, premiumEntryCoins: 20 },
              // The same database, an embedded bus each (no Redis): a process that restarted.
              node: { of: world },
            }),
          ),
        );
        extraNodes.push(...restarted);
        for (const player of players) expect(await coinsOf(player)).toBe(100);
        expect(await world.services.coins.revenue(world.admin.userId)).toBe(revenueBefore - 40);
        for (const player of players) {
          const transfers = await walletTransfers(player.userId);
          const refunds = transfers.filter((transfer) => transfer.code === 'premium_refund');
          expect(refunds).toHaveLength(1);
          const posting = transfers.find((transfer) => transfer.kind === 'post');
          expect(refunds[0]).toMatchObject({ reversesId: posting?.id, amount: 20n });
          // Free to play again.
          expect((await world.services.game.current(player.userId)).ticket).toBeNull();
        }

        // Another restart (the end retried) gives nothing more.
        extraNodes.push(
          await startBuzzerWorld(target, {
            now: clock.now,
            node: { of: world },
          }),
        );
        for (const player of players) expect(await coinsOf(player)).toBe(100);
        expect(await world.services.coins.revenue(world.admin.userId)).toBe(revenueBefore - 40);
      },
    );

    it.skipIf(!target.available)(
      "gives the fee back to the player left alone when another's entry could not be taken, the balance pushed live",
      async () => {
        const { players } = await premiumRoom();
        const [alone, gone] = players as [(typeof players)[0], (typeof players)[0]];
        const client = pusherFor(world, baseUrl, alone);
        clients.push(client);
        const own = await subscribed(client, `private-sb-player-${alone.userId}`);
        const pushed = collect<{ balance: number }>(own, 'coins');
        const errors = collect<{ code: string }>(own, 'error');
        // The other's hold is gone before the room takes it (e.g. expired): only one could play.
        const ticket = (await world.services.game.current(gone.userId)).ticket as { id: string };
        await world.services.coins.release(gone.userId, `entry:${ticket.id}`);
        expect(await coinsOf(alone)).toBe(80);

        await world.services.game.tick();
        expect(await world.services.game.roomOf(alone.userId)).toBeUndefined();
        await expect.poll(() => errors.at(-1)?.code, { timeout: 20_000 }).toBe('strategybuzzer.room_failed');
        await expect.poll(() => pushed.at(-1), { timeout: 20_000 }).toEqual({ balance: 100 });
        expect(await coinsOf(alone)).toBe(100);
        expect(await coinsOf(gone)).toBe(100);
        const refunds = (await walletTransfers(alone.userId)).filter(
          (transfer) => transfer.code === 'premium_refund',
        );
        expect(refunds).toHaveLength(1);
        expect((await world.services.game.current(alone.userId)).ticket).toBeNull();
      },
    );

    it.skipIf(!target.available)(
      'gives the fees back when the hosting node stops before the game ended',
      async () => {
        const { players } = await premiumRoom();
        await world.services.game.tick();
        for (const player of players) expect(await coinsOf(player)).toBe(80);
        await world.services.game.stop();
        for (const player of players) expect(await coinsOf(player)).toBe(100);
        for (const player of players)
          expect(
            (await walletTransfers(player.userId)).filter((transfer) => transfer.code === 'premium_refund'),
          ).toHaveLength(1);
      },
    );
  },
);
