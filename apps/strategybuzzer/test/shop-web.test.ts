import {
  chromiumAvailable,
  type FakeStripe,
  launchBrowser,
  startFakeStripe,
  testDatabaseTargets,
  watchPage,
} from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BuzzerWorld, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer coin shop in Chromium [%s]',
  (_, target) => {
    let world: BuzzerWorld;
    let stripe: FakeStripe;
    let baseUrl: string;

    beforeAll(async () => {
      if (!target.available || !chromiumAvailable()) return;
      stripe = await startFakeStripe();
      world = await startBuzzerWorld(target, { stripe, settings: { starterCoins: 100 } });
      baseUrl = await world.socle.listen();
      // The fake's checkout page delivers the paid session's webhook here, as Stripe would.
      stripe.webhookUrl = `${baseUrl}/payments/webhooks/stripe`;
    });
    afterAll(async () => {
      await world?.socle.dispose();
      await stripe?.close();
    });

    it.skipIf(!target.available || !chromiumAvailable())(
      "a player buys coins through Stripe Checkout in another tab and sees the balance change without reloading the game's page",
      async () => {
        const browser = await launchBrowser();
        try {
          const page = await (await browser.newContext()).newPage();
          const watched = watchPage(page);
          await watched.run('strategybuzzer-shop', async () => {
            await page.goto(`${baseUrl}/apps/strategybuzzer/`);
            await page.fill('#email', `buyer-${Date.now()}@example.com`);
            await page.fill('#password', 'correct horse battery staple');
            await page.click('#sign-up');
            await page.locator('#lobby').waitFor();
            await expect.poll(() => page.textContent('#coins')).toBe('100');
            // Anything this page holds in memory is lost by a reload: the marker proves none happens.
            await page.evaluate(() => {
              (globalThis as unknown as { sbMarker: string }).sbMarker = 'same page';
            });

            const [checkoutTab] = await Promise.all([
              page.waitForEvent('popup'),
              page.click('#packs button[data-pack="coins-500"]'),
            ]);
            await checkoutTab.locator('#amount', { hasText: '4.99 EUR' }).waitFor();
            await checkoutTab.click('#pay');

            await expect.poll(() => page.textContent('#coins'), { timeout: 30_000 }).toBe('600');
            expect(await page.evaluate(() => (globalThis as unknown as { sbMarker?: string }).sbMarker)).toBe(
              'same page',
            );
            expect(stripe.deliveries.map((delivery) => delivery.status)).toEqual([200]);

            // The profile: an avatar chosen in the page shows as its signed 64 px variant.
            await page.setInputFiles('#avatar-file', {
              name: 'me.png',
              mimeType: 'image/png',
              buffer: Buffer.from(
                'iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFWEXHbQSACj/P8Fu7N9hAAAAAElFTkSuQmCC',
                'base64',
              ),
            });
            // (An 8 px image stays 8 px: variants never enlarge.) The image loaded under the page's CSP.
            await expect
              .poll(() =>
                page.evaluate(
                  () =>
                    (
                      globalThis as unknown as {
                        document: { querySelector(selector: string): { naturalWidth: number } };
                      }
                    ).document.querySelector('#avatar').naturalWidth,
                ),
              )
              .toBe(8);
            expect(await page.getAttribute('#avatar', 'src')).toContain('/files/variant/sb-avatars/');
            const weekly = page.waitForResponse((response) => response.url().includes('period=week'));
            await page.selectOption('#leaderboard-period', 'week');
            expect((await weekly).status()).toBe(200);
          });
        } finally {
          await browser.close();
        }
      },
    );
  },
);
