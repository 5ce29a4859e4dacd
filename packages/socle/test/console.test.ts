import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_SECURITY_POLICY } from '../src/index.js';
import { createConsoleModule } from '../src/modules/console/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import {
  chromiumAvailable,
  createTestSocle,
  launchBrowser,
  TEST_PASSWORD,
  type TestSocle,
  watchPage,
} from '../src/testing/index.js';
import { createJobsFixtureModule } from './fixtures/jobs-module.js';
import { describeEachDatabase } from './support/each-database.js';

const OPERATOR_TOKEN = 'operator-token-of-the-console-suite-0123456789';

describeEachDatabase('Operator console', (target) => {
  let socle: TestSocle;
  let baseUrl: string;
  let failedJob: string;
  let orgId: string;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [...createBuiltInModules(), createJobsFixtureModule().module, createConsoleModule()],
      // No worker: the failing job is run once by hand, so the test does not wait on polling.
      config: { jobsQueues: [] },
      settings: { jobs: { operatorToken: OPERATOR_TOKEN } },
    });
    const alice = await socle.newUser({ email: 'alice@console.test' });
    await socle.newTenant({ owner: await socle.newUser(), name: 'Cabinet Beta' });
    orgId = (await socle.newTenant({ owner: alice, name: 'Cabinet Alpha' })).id;
    failedJob = (
      await socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.failing', { n: 1 }, { maxAttempts: 1 })
    ).id;
    await socle.jobs.runDueJobs();
    expect((await socle.jobs.get(failedJob, null)).state).toBe('failed');
    baseUrl = await socle.listen();
  }, 60_000);
  afterAll(async () => {
    await socle?.dispose();
  });

  it('serves the built client at /console/ under the strict CSP, any route of it as index.html', async () => {
    for (const path of ['/console/', '/console/jobs']) {
      const response = await fetch(`${baseUrl}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-security-policy')).toBe(DEFAULT_CONTENT_SECURITY_POLICY);
      expect(await response.text()).toContain('<script type="module" src="/console/app.js"></script>');
    }
    expect((await fetch(`${baseUrl}/console/app.js`)).headers.get('content-type')).toMatch(/javascript/);
  });

  describe.skipIf(!chromiumAvailable())('in Chromium', () => {
    it('signs in as operator, finds a tenant, invites a member, retries a failed job, erases an account', async () => {
      const browser = await launchBrowser();
      try {
        const page = await browser.newPage();
        page.setDefaultTimeout(10_000);
        const watched = watchPage(page);
        page.on('dialog', (dialog) => void dialog.accept());
        await page.goto(`${baseUrl}/console/`);
        await page.getByRole('combobox', { name: 'Language' }).selectOption('en');

        // Sign in: an organization owner's account and the operator token.
        await page.getByLabel('Email').fill('alice@console.test');
        await page.getByLabel('Password').fill(TEST_PASSWORD);
        await page.getByLabel('Operator token (optional)').fill(OPERATOR_TOKEN);
        await page.getByRole('button', { name: 'Sign in' }).click();

        // Find the tenant and invite a member.
        await page.getByRole('searchbox', { name: 'Search' }).fill('alpha');
        await page.getByRole('button', { name: 'Open Cabinet Alpha' }).click();
        await page.getByLabel('Email to invite').fill('new.member@console.test');
        await page.getByRole('button', { name: 'Invite', exact: true }).click();
        await page.getByText('Invitation sent to new.member@console.test.').waitFor();
        await page.getByRole('cell', { name: 'new.member@console.test' }).waitFor();
        const invitations = await socle.app.inject({
          method: 'GET',
          url: '/org/invitations',
          headers: {
            authorization: `Bearer ${(await signIn('alice@console.test')).accessToken}`,
            'x-org-id': orgId,
          },
        });
        expect(invitations.json()).toEqual([expect.objectContaining({ email: 'new.member@console.test' })]);

        // The failed job, its error, and a retry (the operator sees every tenant's jobs).
        await page.getByRole('link', { name: 'Jobs' }).click();
        const row = page.locator(`tr[data-job-id="${failedJob}"]`);
        await row.waitFor();
        expect(await row.textContent()).toContain('failed');
        await row.getByRole('button', { name: /^Retry/ }).click();
        await page.getByText(`Job ${failedJob} queued again.`).waitFor();
        expect(['created', 'retry']).toContain((await socle.jobs.get(failedJob, null)).state);

        // The audit log shows the invitation the console made through the API.
        await page.getByRole('link', { name: 'Audit log' }).click();
        await page.getByRole('cell', { name: 'POST /org/invitations' }).first().waitFor();

        // French too.
        await page.getByRole('combobox', { name: 'Language' }).selectOption('fr');
        await page.getByRole('link', { name: 'Santé' }).click();
        await page.getByRole('heading', { name: 'Disponibilité' }).waitFor();
        await page.getByRole('combobox', { name: 'Langue' }).selectOption('en');

        // Erase the account, after typing its email in the confirmation dialog.
        await page.getByRole('link', { name: 'Account' }).click();
        await page.getByRole('button', { name: 'Erase this account' }).click();
        const dialog = page.getByRole('dialog');
        const confirm = dialog.getByRole('button', { name: 'Erase this account' });
        await dialog.getByLabel('Password').fill(TEST_PASSWORD);
        expect(await confirm.isDisabled()).toBe(true);
        await dialog.getByLabel('Type the account email to confirm').fill('alice@console.test');
        await confirm.click();
        await page.getByRole('button', { name: 'Sign in' }).waitFor();
        const gone = await socle.app.inject({
          method: 'POST',
          url: '/auth/sign-in',
          payload: { email: 'alice@console.test', password: TEST_PASSWORD },
        });
        expect(gone.statusCode).toBe(401);

        await watched.assertClean('console');
      } finally {
        await browser.close();
      }
    }, 60_000);
  });

  async function signIn(email: string): Promise<{ accessToken: string }> {
    const response = await socle.app.inject({
      method: 'POST',
      url: '/auth/sign-in',
      payload: { email, password: TEST_PASSWORD },
    });
    return response.json();
  }
});
