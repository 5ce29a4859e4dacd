import {
  chromiumAvailable,
  launchBrowser,
  TEST_PASSWORD,
  testDatabaseTargets,
  watchPage,
} from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCryptoCare } from './cryptocare-fixture.js';
import { startFakeZoom } from './fake-zoom.js';

const targets = await testDatabaseTargets();
const credentials = { accountId: 'acc-1', clientId: 'client-1', clientSecret: 'secret-1' };

const postgres = targets.find((target) => target.dialect === 'postgres' && target.available);
const target = postgres ?? targets[0];

describe.skipIf(!chromiumAvailable() || target === undefined || !target.available)(
  'CryptoCare in Chromium',
  () => {
    let app: Awaited<ReturnType<typeof startCryptoCare>>;
    let zoom: Awaited<ReturnType<typeof startFakeZoom>>;
    let baseUrl: string;
    beforeAll(async () => {
      zoom = await startFakeZoom(credentials);
      app = await startCryptoCare(target as NonNullable<typeof target>, {
        now: new Date('2026-03-23T08:00:00Z'),
        settings: {
          zoomApiUrl: zoom.apiUrl,
          zoomTokenUrl: zoom.tokenUrl,
          zoomAccountId: credentials.accountId,
          zoomClientId: credentials.clientId,
          zoomClientSecret: credentials.clientSecret,
        },
      });
      baseUrl = await app.socle.listen();
    });
    afterAll(async () => {
      await app?.dispose();
      await zoom?.close();
    });

    it('a patient searches, books, sees the QR, then confirmed, then the Zoom link; the agenda follows live', async () => {
      const practice = await app.newPractice({
        latitude: 47.37,
        longitude: 8.54,
        specialties: ['psychiatry'],
      });
      const patient = await app.socle.newUser();
      const browser = await launchBrowser();
      try {
        const signIn = async (page: import('playwright-core').Page, email: string) => {
          await page.fill('input[name=email]', email);
          await page.fill('input[name=password]', TEST_PASSWORD);
          await page.click('#sign-in-form button');
        };
        // The professional's agenda, open before the booking.
        const agenda = await browser.newPage();
        const agendaWatch = watchPage(agenda);
        await agenda.goto(`${baseUrl}/apps/cryptocare/?key=cryptocare-key&org=${practice.tenant.id}`);
        await signIn(agenda, practice.professional.email);
        await agenda.locator('#agenda').waitFor();

        const page = await browser.newPage();
        const watched = watchPage(page);
        await page.goto(`${baseUrl}/apps/cryptocare/?key=cryptocare-key`);
        await signIn(page, patient.email);
        await page.fill('input[name=specialty]', 'psychiatry');
        await page.click('#search-form button');
        const slot = page.locator('#results .slots button').first();
        await slot.waitFor();
        await slot.click();
        await page.locator('#status', { hasText: 'held' }).waitFor();
        await page.locator('#payment svg').waitFor();
        // The payments module's invoice: BIP21 with Lightning, its QR code drawn by the module.
        expect(await page.locator('#pay-link').getAttribute('href')).toMatch(
          /^bitcoin:[^?]+\?amount=0\.0024&lightning=/,
        );
        await agenda.locator('#agenda-list li', { hasText: 'held' }).waitFor();

        // The processor (a fake BTCPay Server) settles the invoice and says so on the payments
        // module's webhook: the page turns to confirmed without reloading.
        const [appointment] = await app
          .services()
          .booking.list({ userId: patient.userId }, { from: new Date(0), to: new Date('2100-01-01') });
        const invoice = [...app.btcpay.invoices.values()].find(
          (candidate) => candidate.metadata.orderId === `appointment:${appointment?.id}`,
        );
        expect(invoice).toMatchObject({ currency: 'CHF', amount: '120.00' });
        // The wallet first sends too little: the page says what is missing and stays held.
        app.btcpay.pay(invoice?.id as string, 100_000);
        expect(
          await app.btcpay.deliver(
            `${baseUrl}/payments/webhooks/btcpay`,
            invoice?.id as string,
            'InvoiceReceivedPayment',
          ),
        ).toBe(200);
        await page
          .locator('#payment-flag', { hasText: 'Underpaid: 100000 sats received, 140000 sats missing' })
          .waitFor();
        expect(await page.locator('#status').textContent()).toBe('held');
        // Then the rest.
        app.btcpay.pay(invoice?.id as string, 140_000);
        expect(
          await app.btcpay.deliver(
            `${baseUrl}/payments/webhooks/btcpay`,
            invoice?.id as string,
            'InvoiceSettled',
          ),
        ).toBe(200);
        await page.locator('#status', { hasText: 'confirmed' }).waitFor();
        expect(await page.locator('#payment-flag').isHidden()).toBe(true);
        await agenda.locator('#agenda-list li', { hasText: 'confirmed' }).waitFor();
        // The job makes the Zoom link; it appears on both pages.
        await app.socle.jobs.runDueJobs();
        await page.locator('#zoom-link').waitFor();
        expect(await page.locator('#zoom-link').getAttribute('href')).toBe(zoom.meetings[0]?.join_url);
        await agenda.locator('#agenda-list li', { hasText: 'video ready' }).waitFor();
        expect(zoom.meetings).toHaveLength(1);
        await watched.assertClean('patient page');
        await agendaWatch.assertClean('agenda');
      } finally {
        await browser.close();
      }
    }, 120_000);
  },
);
