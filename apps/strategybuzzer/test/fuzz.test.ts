import { type FuzzCredential, fuzzEveryOperation, testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

/**
 * The fuzz gate over StrategyBuzzer's own operations (`only`), as the built-in modules have theirs:
 * every malformed request (missing or wrong-typed fields, bad ids, broken JSON or CSV, oversized or
 * hostile strings, raw-socket garbage) gets a 4xx problem+json, never a 5xx, as a player, as the
 * game's admin and without credentials.
 */
describe.each(targets.map((target) => [target.dialect, target] as const))(
  'Fuzz gate over the StrategyBuzzer operations [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    let url: string;
    beforeAll(async () => {
      if (!target.available) return;
      world = await startBuzzerWorld(target);
      url = await world.socle.listen();
    });
    afterAll(() => world?.socle.dispose());

    it.skipIf(!target.available)(
      'answers every malformed request with a 4xx problem+json, never a 5xx',
      { timeout: 600_000 },
      async () => {
        const player = await world.socle.newUser();
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
          // A valid question bank for the import (the schema alone cannot say what a question is).
          prepare: async (operation, credential) =>
            operation === 'POST /strategybuzzer/admin/questions' && credential.name === 'admin'
              ? {
                  body: [{ language: 'en', prompt: 'Fuzz?', choices: ['yes', 'no'], answer: 0, level: 1 }],
                }
              : undefined,
        });
        console.log(
          `fuzz gate strategybuzzer [${target.dialect}]: ${report.sent} requests over ${report.operations.length} operations, ${report.serverErrors} × 5xx; never 2xx: ${report.operations.filter((operation) => !report.succeeded.includes(operation)).join(', ') || 'none'}`,
        );
        expect(report.findings).toEqual([]);
        expect(report.serverErrors).toBe(0);
        expect(report.operations.length).toBeGreaterThanOrEqual(11);
        expect(report.sent).toBeGreaterThan(report.operations.length * 50);
      },
    );
  },
);
