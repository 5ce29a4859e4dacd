import { createFakeAppStore, type FakeAppStore, testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, caller, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer coins bought in the App Store (the Flutter app) [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    let appStore: FakeAppStore;
    let baseUrl: string;

    beforeAll(async () => {
      if (!target.available) return;
      appStore = createFakeAppStore({ bundleId: 'com.strategybuzzer.app', environment: 'Sandbox' });
      world = await startBuzzerWorld(target, { appStore, settings: { starterCoins: 100 } });
      baseUrl = await world.socle.listen();
    });
    afterAll(() => world?.socle.dispose());

    const call = (...args: Parameters<ReturnType<typeof caller>>) => caller(world.socle)(...args);
    const coinsOf = async (user: { token: string }) =>
      (await call(user, 'GET', '/strategybuzzer/me')).json().coins as number;

    it.skipIf(!target.available)(
      "credits a verified StoreKit purchase once however often the app posts it, refuses another player's, and Apple's refund takes it back",
      async () => {
        const player = await world.socle.newUser();
        const thief = await world.socle.newUser();
        const { transactionId, signedTransaction } = appStore.purchase('com.strategybuzzer.coins500', {
          appAccountToken: player.userId,
        });

        const first = await call(player, 'POST', '/strategybuzzer/shop/purchases/apple', {
          signedTransaction,
        });
        expect(first.statusCode).toBe(200);
        expect(first.json()).toMatchObject({
          purchase: { packId: 'coins-500', provider: 'apple', status: 'succeeded', coins: 500 },
          duplicate: false,
          balance: 600,
        });
        // The app posts again (a crash before finish(), retries), concurrently: credited once.
        const again = await Promise.all(
          Array.from({ length: 4 }, () =>
            call(player, 'POST', '/strategybuzzer/shop/purchases/apple', { signedTransaction }),
          ),
        );
        expect(again.map((answer) => [answer.statusCode, answer.json().duplicate])).toEqual(
          again.map(() => [200, true]),
        );
        expect(await coinsOf(player)).toBe(600);

        const stolen = await call(thief, 'POST', '/strategybuzzer/shop/purchases/apple', {
          signedTransaction,
        });
        expect(stolen.statusCode).toBe(409);
        expect(stolen.json()).toMatchObject({ code: 'payments.purchase_not_yours' });
        expect(await coinsOf(thief)).toBe(100);

        const forged = await call(player, 'POST', '/strategybuzzer/shop/purchases/apple', {
          signedTransaction: `${signedTransaction.slice(0, -4)}AAAA`,
        });
        expect(forged.statusCode).toBe(400);

        // Apple refunds it and says so (App Store Server Notification V2): the coins go back.
        appStore.refund(transactionId);
        for (let n = 0; n < 2; n++)
          expect(await appStore.deliver(`${baseUrl}/payments/webhooks/apple`, 'REFUND', transactionId)).toBe(
            200,
          );
        expect(await coinsOf(player)).toBe(100);
      },
    );
  },
);
