import type { Page } from 'playwright-core';
import { chromiumAvailable, launchBrowser, testDatabaseTargets, watchPage } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, signUpInBrowser, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer web client in Chromium [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    let baseUrl: string;

    beforeAll(async () => {
      if (!target.available || !chromiumAvailable()) return;
      world = await startBuzzerWorld(target, {
        timers: true,
        questions: 4,
        settings: {
          roomSize: 2,
          minPlayers: 2,
          questionsPerGame: 2,
          startDelayMs: 1500,
          questionSeconds: 60,
          answerSeconds: 30,
          revealMs: 2000,
        },
      });
      baseUrl = await world.socle.listen();
    });
    afterAll(() => world?.socle.dispose());

    const signUp = (page: Page, name: string) => signUpInBrowser(page, baseUrl, name);

    it.skipIf(!target.available || !chromiumAvailable())(
      'two players sign up, are matched into one room, one buzzes and scores, both see it; chat reaches the other',
      async () => {
        const browser = await launchBrowser();
        try {
          const alice = await (await browser.newContext()).newPage();
          const bob = await (await browser.newContext()).newPage();
          const watched = [watchPage(alice), watchPage(bob)];
          await signUp(alice, 'Alice');
          await signUp(bob, 'Bob');
          await expect.poll(() => alice.textContent('#coins')).toBe('100');

          // Alice makes a friends' code, Bob plays with it.
          await alice.click('#new-code');
          await expect.poll(async () => (await alice.inputValue('#code')).length).toBe(6);
          const code = await alice.inputValue('#code');
          await bob.fill('#code', code);
          await alice.click('#play');
          await alice.locator('#lobby-status', { hasText: 'Waiting' }).waitFor();
          await bob.click('#play');

          // Both see the same question; Alice buzzes and answers right (the first choice).
          for (const page of [alice, bob])
            await page.locator('#prompt', { hasText: /^Question \d+ \?$/ }).waitFor();
          expect(await alice.textContent('#prompt')).toBe(await bob.textContent('#prompt'));
          await alice.click('#buzz');
          for (const page of [alice, bob])
            await page.locator('#floor', { hasText: 'Alice answers' }).waitFor();
          expect(await bob.isDisabled('#choices li:first-child button')).toBe(true);
          await alice.click('#choices li:first-child button');
          for (const page of [alice, bob]) {
            await page.locator('#floor', { hasText: 'Alice scores' }).waitFor();
            await page.locator('#scores li', { hasText: 'Alice: 10' }).waitFor();
            await page.locator('#scores li', { hasText: 'Bob: 0' }).waitFor();
            expect(await page.textContent('#order')).toBe('Alice');
          }

          // Chat: Bob's message reaches Alice.
          await bob.fill('#chat-input', 'bien joué');
          await bob.click('#chat-send');
          await alice.locator('#chat li', { hasText: 'Bob: bien joué' }).waitFor();

          // Reloading keeps the seat: Bob's page draws the running room again.
          await bob.reload();
          await bob.locator('#room').waitFor();
          await bob.locator('#scores li', { hasText: 'Alice: 10' }).waitFor();
          await bob.locator('#chat li', { hasText: 'Bob: bien joué' }).waitFor();

          for (const [index, page] of watched.entries()) await page.assertClean(`strategybuzzer-${index}`);
        } finally {
          await browser.close();
        }
      },
    );
  },
);
