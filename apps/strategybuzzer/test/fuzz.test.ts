import {
  createFakeAppStore,
  type FakeAppStore,
  type FakeStripe,
  type FuzzCredential,
  type FuzzPreparation,
  fuzzEveryOperation,
  startFakeStripe,
  type TestUser,
  testDatabaseTargets,
} from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

/** An 8×8 red PNG: the avatar the gate uploads. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFWEXHbQSACj/P8Fu7N9hAAAAAElFTkSuQmCC',
  'base64',
);

/**
 * The fuzz gate over StrategyBuzzer's own operations (`only`), as the built-in modules have theirs:
 * every malformed request (missing or wrong-typed fields, bad ids, broken JSON or CSV, oversized or
 * hostile strings, raw-socket garbage) gets a 4xx problem+json, never a 5xx, as a player, as the
 * game's admin and without credentials; and each operation's valid request is prepared (a player
 * seated in a room, a Stripe and an App Store to buy from, an image) so every one of them answers
 * 2xx at least once: what lies behind the checks is fuzzed too.
 */
describe.each(targets.map((target) => [target.dialect, target] as const))(
  'Fuzz gate over the StrategyBuzzer operations [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    let url: string;
    let stripe: FakeStripe;
    let appStore: FakeAppStore;
    beforeAll(async () => {
      if (!target.available) return;
      stripe = await startFakeStripe();
      appStore = createFakeAppStore({ bundleId: 'com.strategybuzzer.app', environment: 'Sandbox' });
      // Rooms of two: the gate's seated pair starts at once.
      world = await startBuzzerWorld(target, { stripe, appStore, settings: { roomSize: 2 } });
      url = await world.socle.listen();
    });
    afterAll(async () => {
      await world?.socle.dispose();
      await stripe?.close();
    });

    const bearer = (user: Pick<TestUser, 'token'>) => ({ authorization: `Bearer ${user.token}` });

    /** Two players with a friends' code, seated in one room: the first, and the room. */
    async function seatedPlayer() {
      const players = [await world.socle.newUser(), await world.socle.newUser()];
      const code = world.services.game.newCode();
      for (const player of players) {
        const played = await world.socle.app.inject({
          method: 'POST',
          url: '/strategybuzzer/play',
          headers: bearer(player),
          payload: { mode: 'classic', language: 'fr', code },
        });
        if (played.statusCode !== 202) throw new Error(`play: ${played.body}`);
      }
      await world.services.game.tick();
      const player = players[0] as TestUser;
      const roomId = await world.services.game.roomOf(player.userId);
      if (roomId === undefined) throw new Error('the players were not seated');
      return { player, roomId };
    }

    it.skipIf(!target.available)(
      'answers every malformed request with a 4xx problem+json, never a 5xx',
      { timeout: 600_000 },
      async () => {
        const player = await world.socle.newUser();
        const seated = await seatedPlayer();
        // The seated player's own requests (their room, their relay credentials).
        const asSeated = { headers: bearer(seated.player) };
        const preparations: Record<string, (credential: FuzzCredential) => Promise<FuzzPreparation>> = {
          'GET /strategybuzzer/rooms/{roomId}/chat': async () => ({
            ...asSeated,
            path: { roomId: seated.roomId },
          }),
          'GET /strategybuzzer/voice/credentials': async () => asSeated,
          'GET /strategybuzzer/players/{userId}': async () => ({ path: { userId: seated.player.userId } }),
          'POST /strategybuzzer/shop/checkout': async () => ({
            body: {
              packId: 'coins-500',
              successUrl: 'https://sb.test/paid',
              cancelUrl: 'https://sb.test/shop',
            },
          }),
          // A StoreKit purchase of the player, signed by the fake App Store: a new one each time.
          'POST /strategybuzzer/shop/purchases/{store}': async () => ({
            path: { store: 'apple' },
            body: {
              signedTransaction: appStore.purchase('com.strategybuzzer.coins500', {
                appAccountToken: player.userId,
              }).signedTransaction,
            },
          }),
          'PUT /strategybuzzer/me/avatar': async () => ({
            rawBody: { contentType: 'image/png', bytes: PNG },
          }),
        };
        const credentials: FuzzCredential[] = [
          { name: 'anonymous', headers: {} },
          { name: 'player', headers: { authorization: `Bearer ${player.token}` }, scheme: 'accessToken' },
          {
            name: 'admin',
            headers: { authorization: `Bearer ${world.admin.token}`, 'x-org-id': world.admin.orgId },
            scheme: 'accessToken',
          },
        ];
        const report = await fuzzEveryOperation(world.socle, {
          url,
          credentials: async () => credentials,
          only: (operation) => / \/strategybuzzer\//.test(operation),
          prepare: async (operation, credential) => {
            // A valid question bank for the import (the schema alone cannot say what a question is).
            if (operation === 'POST /strategybuzzer/admin/questions')
              return credential.name === 'admin'
                ? { body: [{ language: 'en', prompt: 'Fuzz?', choices: ['yes', 'no'], answer: 0, level: 1 }] }
                : undefined;
            return credential.name === 'player' ? preparations[operation]?.(credential) : undefined;
          },
        });
        console.log(
          `fuzz gate strategybuzzer [${target.dialect}]: ${report.sent} requests over ${report.operations.length} operations, ${report.serverErrors} × 5xx; never 2xx: ${report.operations.filter((operation) => !report.succeeded.includes(operation)).join(', ') || 'none'}`,
        );
        expect(report.findings).toEqual([]);
        // Every operation got past its checks at least once.
        expect(report.operations.filter((operation) => !report.succeeded.includes(operation))).toEqual([]);
        expect(report.serverErrors).toBe(0);
        expect(report.operations.length).toBeGreaterThanOrEqual(11);
        expect(report.sent).toBeGreaterThan(report.operations.length * 50);
      },
    );
  },
);
