import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFilesModule,
  createLedgerModule,
  DEFAULT_CONTENT_SECURITY_POLICY,
  defineBucket,
  type FilesServices,
  withOwnerTransaction,
} from '../src/index.js';
import { createAuditModule } from '../src/modules/audit/index.js';
import { createConsoleModule } from '../src/modules/console/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createJobsModule } from '../src/modules/jobs/index.js';
import {
  chromiumAvailable,
  createTestSocle,
  type StripeEvent,
  TEST_PASSWORD,
  type TestSocle,
  type TestTenant,
  type TestUser,
} from '../src/testing/index.js';
import { createJobsFixtureModule } from './fixtures/jobs-module.js';
import { callAs } from './support/api-client.js';
import { signInAs, useConsoleBrowser } from './support/console-page.js';
import { describeEachDatabase } from './support/each-database.js';
import { PAYMENTS_OPERATOR_TOKEN, usePaymentsServer } from './support/payments-server.js';
import { RawPusherSocket } from './support/realtime-clients.js';

const OPERATOR_TOKEN = 'operator-token-of-the-console-suite-0123456789';
/** One Chromium for the file, a fresh context per test. */
const consoleBrowser = useConsoleBrowser();

describeEachDatabase('Operator console', (target) => {
  let socle: TestSocle;
  let baseUrl: string;
  let failedJob: string;
  let orgId: string;
  let bob: { userId: string; email: string };
  let carolTotpSecret: string;
  let carolId: string;
  let dave: TestUser;
  let quizKey: string;
  let beta: TestTenant;
  const withConsolePage = consoleBrowser.at(() => baseUrl);

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [...createBuiltInModules(), createJobsFixtureModule().module, createConsoleModule()],
      // No worker: the failing job is run once by hand, so the test does not wait on polling.
      config: { jobsQueues: [] },
      settings: {
        identity: { operatorToken: OPERATOR_TOKEN },
        realtime: { channelRules: [{ pattern: 'presence-console-*', role: 'member' }] },
      },
    });
    const alice = await socle.newUser({ email: 'alice@console.test' });
    beta = await socle.newTenant({ owner: await socle.newUser(), name: 'Cabinet Beta' });
    // Bob is erased by the operator; Carol signs in with a second factor.
    bob = await socle.newUser({ email: 'bob@console.test' });
    const carol = await socle.newUser({ email: 'carol@console.test' });
    carolId = carol.userId;
    await socle.newTenant({ owner: carol, name: 'Cabinet Gamma' });
    const asCarol = { authorization: `Bearer ${carol.token}` };
    const enrolled = await socle.app.inject({
      method: 'POST',
      url: '/auth/mfa/totp/enroll',
      headers: asCarol,
      payload: {},
    });
    carolTotpSecret = enrolled.json().secret;
    const confirmed = await socle.app.inject({
      method: 'POST',
      url: '/auth/mfa/totp/confirm',
      headers: asCarol,
      payload: { code: await totpCode(carolTotpSecret) },
    });
    expect(confirmed.statusCode, confirmed.body).toBeLessThan(300);
    const alpha = await socle.newTenant({ owner: alice, name: 'Cabinet Alpha' });
    orgId = alpha.id;
    // Dave, a member of Cabinet Alpha, joins a presence channel of its realtime app "Quiz".
    dave = await socle.newMember(alpha);
    const quiz = await callAs(socle, alice, 'POST', '/realtime/apps', { orgId, payload: { name: 'Quiz' } });
    expect(quiz.statusCode, quiz.body).toBe(201);
    quizKey = quiz.json().key;
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
    it("fails a page on a CSP violation or a missing file, not on the API's own refusals", async () => {
      const { page, watched, close } = await consoleBrowser.newPage();
      try {
        await page.goto(`${baseUrl}/console/`);
        await page.getByRole('button', { name: /Sign in|Se connecter/ }).waitFor();
        // A refusal the page handles: problem+json to its fetch (a wrong operator token).
        await page.evaluate(() => fetch('/operator/users', { headers: { 'x-operator-token': 'wrong' } }));
        expect(watched.problems).toEqual([]);
        // An inline script (refused by the CSP) and an image that does not exist (not under
        // /console/, where any path is the single-page client). A script's text: it runs in the
        // page, whose types this Node project does not load.
        await page.evaluate(`(() => {
          const script = document.createElement('script');
          script.textContent = 'window.injected = true';
          document.head.append(script);
          const image = document.createElement('img');
          image.src = '/realtime/client/missing.png';
          document.body.append(image);
        })()`);
        await expect
          .poll(() => watched.problems.join('\n'))
          .toMatch(/client error: GET \S+\/realtime\/client\/missing\.png → 404/);
        expect(watched.problems.join('\n')).toMatch(/CSP violation: script-src/);
        const refused = await watched.assertClean('csp-check').then(
          () => undefined,
          (error: Error) => error,
        );
        expect(refused?.message).toMatch(/problem/);
        // Its screenshot was taken on purpose: not one of a failed test's, which CI lists.
        const screenshot = /Screenshot: (.+)$/m.exec(refused?.message ?? '')?.[1];
        if (screenshot !== undefined) await rm(screenshot, { force: true });
      } finally {
        await close();
      }
    }, 60_000);

    it(
      'signs in with a second factor (TOTP) in the browser',
      () =>
        withConsolePage('console-2fa', async (page) => {
          await signInAs(page, { email: 'carol@console.test' });
          // The password was right; the console asks for the code (the next step's: each is used once).
          await page
            .getByLabel('Authentication code (TOTP or recovery code)')
            .fill(await totpCode(carolTotpSecret, 1));
          await page.getByRole('button', { name: 'Verify' }).click();
          await page.getByRole('combobox', { name: 'Organization' }).waitFor();
          expect(await page.getByRole('combobox', { name: 'Organization' }).textContent()).toContain(
            'Cabinet Gamma',
          );
          await page.getByRole('button', { name: 'Sign out' }).click();
          await page.getByRole('button', { name: 'Sign in' }).waitFor();
        }),
      60_000,
    );

    it(
      'signs in as operator, finds a tenant, invites a member, retries a failed job, erases another user, then the account',
      () =>
        withConsolePage('console', async (page) => {
          page.on('dialog', (dialog) => void dialog.accept());
          const requested: string[] = [];
          page.on('request', (request) => requested.push(new URL(request.url()).pathname));

          // Sign in: an organization owner's account and the operator token.
          await signInAs(page, { email: 'alice@console.test', operatorToken: OPERATOR_TOKEN });

          // The operator sees every organization, Alice's and others'.
          const every = page.getByRole('region', { name: 'Every organization (operator token)' });
          await every.getByRole('searchbox').fill('cabinet');
          await every.getByRole('button', { name: 'Search' }).click();
          await every.getByRole('cell', { name: 'Cabinet Beta', exact: true }).waitFor();
          await every.getByRole('cell', { name: 'Cabinet Gamma', exact: true }).waitFor();
          // The members of an organization the operator does not belong to.
          await every.getByRole('button', { name: 'Members of Cabinet Gamma' }).click();
          await page
            .getByRole('region', { name: 'Members of Cabinet Gamma' })
            .getByRole('cell', { name: 'carol@console.test' })
            .waitFor();

          // Find the tenant and invite a member.
          await page.getByRole('searchbox', { name: 'Search', exact: true }).fill('alpha');
          await page.getByRole('button', { name: 'Open Cabinet Alpha' }).first().click();
          // Alpha's members (Gamma's, the operator's view of them, are on the page too).
          const alphaMembers = page.getByRole('region', { name: 'Members — Cabinet Alpha' });
          await alphaMembers.getByLabel('Email to invite').fill('new.member@console.test');
          await alphaMembers.getByRole('button', { name: 'Invite', exact: true }).click();
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

          // Live, pushed by the realtime gateway on the operator channel: a job enqueued, then
          // failing, shows up without a reload, and the counts were not read again (no polling).
          await page.getByRole('status').filter({ hasText: 'Live updates on' }).waitFor();
          await page.getByText(/Updated live/).waitFor();
          const count = async (testId: string) => Number(await page.getByTestId(testId).textContent());
          // The retried job waits (with whatever else the server queued meanwhile).
          await expect.poll(() => count('waiting-default'), { timeout: 15_000 }).toBeGreaterThan(0);
          const waiting = await count('waiting-default');
          const failed = await count('failed-default');
          const countsRead = requested.filter((path) => path === '/operator/jobs/counts').length;
          expect(countsRead).toBeGreaterThanOrEqual(1);
          const another = (
            await socle.jobs.enqueue(socle.db.kysely, 'jobs_fixture.failing', { n: 2 }, { maxAttempts: 1 })
          ).id;
          await expect.poll(() => count('waiting-default'), { timeout: 15_000 }).toBe(waiting + 1);
          await socle.jobs.runDueJobs();
          expect((await socle.jobs.get(another, null)).state).toBe('failed');
          await page.locator(`tr[data-job-id="${another}"]`).waitFor();
          await expect.poll(() => count('failed-default'), { timeout: 15_000 }).toBeGreaterThan(failed);
          expect(requested.filter((path) => path === '/operator/jobs/counts').length).toBe(countsRead);

          // A realtime channel's presence, watched as it changes: Dave joins, then leaves.
          await page.getByRole('link', { name: 'Realtime' }).click();
          await page.getByRole('heading', { name: 'Activity of Quiz' }).waitFor();
          await page.getByText('No occupied channel.').waitFor();
          // Read again when the feed says the app changed, not every 2 s.
          await page.getByText(/Updated live/).waitFor();
          const socket = new RawPusherSocket(baseUrl, quizKey);
          try {
            const channel = 'presence-console-room';
            const auth = await callAs(socle, dave, 'POST', '/realtime/auth', {
              orgId,
              payload: { socket_id: await socket.socketId(), app_key: quizKey, channel_name: channel },
            });
            expect(auth.statusCode, auth.body).toBe(200);
            socket.send({ event: 'pusher:subscribe', data: { channel, ...auth.json() } });
            await socket.next('pusher_internal:subscription_succeeded');
            const members = page.getByRole('list', { name: `Members of ${channel}` });
            await members.getByText(dave.userId).waitFor();
            expect(await page.getByTestId('connections').textContent()).toBe('1');
            socket.send({ event: 'pusher:unsubscribe', data: { channel } });
            await page.getByText('No occupied channel.').waitFor();
          } finally {
            socket.close();
          }

          // Another person's account: found, exported, erased after typing their email again.
          await page.getByRole('link', { name: 'Users' }).click();
          await page.getByRole('searchbox', { name: 'Search accounts (email or name)' }).fill('bob@');
          await page.getByRole('button', { name: 'Search', exact: true }).click();
          await page.getByRole('button', { name: 'Export bob@console.test' }).click();
          await page.getByText(/^Archive of bob@console.test: \d+ bytes$/).waitFor();
          await page.getByRole('button', { name: 'Erase bob@console.test' }).click();
          const eraseBob = page.getByRole('dialog');
          const confirmBob = eraseBob.getByRole('button', { name: 'Erase', exact: true });
          await eraseBob.getByLabel('Type the account email to confirm').fill('alice@console.test');
          expect(await confirmBob.isDisabled()).toBe(true);
          await eraseBob.getByLabel('Type the account email to confirm').fill('bob@console.test');
          await confirmBob.click();
          await page.getByText('The account bob@console.test was erased.').waitFor();
          const bobGone = await socle.app.inject({
            method: 'POST',
            url: '/auth/sign-in',
            payload: { email: bob.email, password: TEST_PASSWORD },
          });
          expect(bobGone.statusCode).toBe(401);
          // The operator is still signed in as Alice.
          expect((await signIn('alice@console.test')).accessToken).toEqual(expect.any(String));

          // Another account's sessions: one revoked after a confirmation (accepted above), audited.
          const carolSessions = async () =>
            (
              await socle.app.inject({
                method: 'GET',
                url: `/operator/users/${carolId}/sessions`,
                headers: { 'x-operator-token': OPERATOR_TOKEN },
              })
            ).json().sessions as { id: string }[];
          const [carolSession] = await carolSessions();
          expect(carolSession).toBeDefined();
          const sessionsBefore = (await carolSessions()).length;
          await page.getByRole('searchbox', { name: 'Search accounts (email or name)' }).fill('carol@');
          await page.getByRole('button', { name: 'Search', exact: true }).click();
          await page.getByRole('button', { name: 'Sessions of carol@console.test' }).click();
          const sessionsRegion = page.getByRole('region', { name: 'Sessions of carol@console.test' });
          await sessionsRegion
            .locator(`tr[data-session-id="${carolSession?.id}"]`)
            .getByRole('button', { name: /^Revoke/ })
            .click();
          await page.getByText('A session of carol@console.test was revoked.').waitFor();
          expect((await carolSessions()).map((session) => session.id)).not.toContain(carolSession?.id);
          expect((await carolSessions()).length).toBe(sessionsBefore - 1);

          // The audit log shows the invitation the console made through the API.
          await page.getByRole('link', { name: 'Audit log' }).click();
          await page.getByRole('cell', { name: 'POST /org/invitations' }).first().waitFor();

          // The configuration, read-only, the operator token masked.
          await page.getByRole('link', { name: 'Configuration' }).click();
          const tokenRow = page.locator('tr[data-setting="OPERATOR_TOKEN"]');
          await tokenRow.waitFor();
          expect(await tokenRow.textContent()).toContain('secret, set');
          expect(await page.content()).not.toContain(OPERATOR_TOKEN);

          // French too.
          await page.getByRole('combobox', { name: 'Language' }).selectOption('fr');
          await page.getByRole('link', { name: 'Utilisateurs' }).click();
          await page.getByRole('searchbox', { name: 'Rechercher des comptes (e-mail ou nom)' }).waitFor();
          await page.getByRole('link', { name: 'Santé' }).click();
          await page.getByRole('heading', { name: 'Disponibilité' }).waitFor();
          await page.getByRole('combobox', { name: 'Langue' }).selectOption('en');

          // The charts: the second report of the node (5 s later) gives the first point.
          await page.getByRole('link', { name: 'Health' }).click();
          await page.getByRole('img', { name: /^Requests, last value \d/ }).waitFor({ timeout: 30_000 });
          await page.getByRole('img', { name: /^Jobs finished, last value \d/ }).waitFor();
          // With the operator token, the charts are the fleet's: here one node, this one, and the sum.
          const fleet = page.getByRole('region', { name: 'Nodes' });
          await fleet.getByRole('row', { name: /live \(this node\)/ }).waitFor();
          await fleet
            .getByRole('row', { name: /^Fleet \(1 live\)/ })
            .getByRole('cell', { name: /^\d+(\.\d+)?\/s$/ })
            .first()
            .waitFor();

          // Without the ledger module (not loaded here) there is no ledger page, and nothing failed.
          expect(await page.getByRole('link', { name: 'Ledger' }).count()).toBe(0);

          // Erase the signed-in account, after typing its email in the confirmation dialog.
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
        }),
      90_000,
    );
  });

  it.skipIf(!chromiumAvailable())(
    "with the operator token alone: changes another organization's members, reads every organization's audit log and apps",
    async () => {
      const erin = await socle.newMember(beta, { role: 'member' });
      const operator = { 'x-operator-token': OPERATOR_TOKEN };
      const betaMembers = async () =>
        (
          await socle.app.inject({
            method: 'GET',
            url: `/operator/organizations/${beta.id}/members`,
            headers: operator,
          })
        ).json().members as { userId: string; role: string }[];
      await withConsolePage('console-operator-alone', async (page) => {
        page.on('dialog', (dialog) => void dialog.accept());
        await signInAs(page, { operatorToken: OPERATOR_TOKEN });
        const every = page.getByRole('region', { name: 'Every organization (operator token)' });
        await every.getByRole('searchbox').fill('beta');
        await every.getByRole('button', { name: 'Search' }).click();
        await every.getByRole('button', { name: 'Members of Cabinet Beta' }).click();
        const members = page.getByRole('region', { name: 'Members of Cabinet Beta' });
        // A role changed with the keyboard, by an operator who does not belong to the organization.
        const roleOfErin = members.getByRole('combobox', { name: `Role of ${erin.email}` });
        await roleOfErin.focus();
        await roleOfErin.selectOption('admin');
        await expect
          .poll(async () => (await betaMembers()).find((member) => member.userId === erin.userId)?.role)
          .toBe('admin');
        // An invitation, then Erin removed after a confirmation (accepted above).
        await members.getByLabel('Email to invite').fill('invited.by.operator@console.test');
        await members.getByRole('button', { name: 'Invite', exact: true }).click();
        await members.getByRole('cell', { name: 'invited.by.operator@console.test' }).waitFor();
        await members
          .getByRole('row')
          .filter({ hasText: erin.email })
          .getByRole('button', { name: 'Remove' })
          .click();
        await expect
          .poll(async () => (await betaMembers()).map((member) => member.userId))
          .not.toContain(erin.userId);

        // The audit log of every organization, the operator named as the actor, filtered by organization.
        await page.getByRole('link', { name: 'Audit log' }).click();
        await page.getByText("Every organization's events and those of none (operator token)").waitFor();
        await page.getByLabel('Organization (id)').fill(beta.id);
        await page.getByRole('button', { name: 'Filter' }).click();
        const changed = page
          .getByRole('row')
          .filter({ hasText: 'PATCH /operator/organizations/:orgId/members/:userId' });
        await changed.waitFor();
        expect(await changed.textContent()).toContain('the operator');
        expect(await changed.textContent()).toContain(beta.id);

        // Every organization's realtime apps, Alpha's Quiz among them, and its activity.
        await page.getByRole('link', { name: 'Realtime' }).click();
        await page.getByText("Every organization's apps (operator token)").waitFor();
        await page.getByRole('row').filter({ hasText: orgId }).filter({ hasText: 'Quiz' }).waitFor();
        await page.getByRole('heading', { name: 'Activity of Quiz' }).waitFor();

        await page.getByRole('combobox', { name: 'Language' }).selectOption('fr');
        await page.getByRole('link', { name: "Journal d'audit" }).click();
        await page.getByLabel('Organisation (id)').fill(beta.id);
        await page.getByRole('button', { name: 'Filtrer' }).click();
        await page.getByRole('row').filter({ hasText: "l'opérateur" }).first().waitFor();
      });
    },
    60_000,
  );

  async function signIn(email: string): Promise<{ accessToken: string }> {
    const response = await socle.app.inject({
      method: 'POST',
      url: '/auth/sign-in',
      payload: { email, password: TEST_PASSWORD },
    });
    return response.json();
  }
});

describeEachDatabase('Operator console with the ledger module', (target) => {
  let socle: TestSocle;
  let baseUrl: string;
  let walletId: string;
  const withConsolePage = consoleBrowser.at(() => baseUrl);

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [...createBuiltInModules(), createLedgerModule(), createConsoleModule()],
      // No worker: the hourly reconciliation runs when the test calls runDueJobs.
      config: { jobsQueues: [] },
      settings: { identity: { operatorToken: OPERATOR_TOKEN } },
    });
    const owner = await socle.newUser();
    const tenant = await socle.newTenant({ owner });
    const open = async (payload: object) => {
      const response = await callAs(socle, owner, 'POST', '/org/ledger/accounts', {
        orgId: tenant.id,
        payload,
      });
      expect(response.statusCode, response.body).toBe(201);
      return response.json().id as string;
    };
    walletId = await open({ owner: { kind: 'user', userId: owner.userId }, unit: 'credits' });
    baseUrl = await socle.listen();
  }, 60_000);
  afterAll(async () => {
    await socle?.dispose();
  });

  it.skipIf(!chromiumAvailable())(
    'reconciles every ledger on demand for the operator, and shows a drifted account',
    () =>
      withConsolePage('console-ledger', async (page) => {
        await signInAs(page, { operatorToken: OPERATOR_TOKEN });
        await page.getByRole('link', { name: 'Ledger' }).click();
        await page.getByText(/No reconciliation has run yet/).waitFor();
        await page.getByRole('button', { name: 'Reconcile now' }).click();
        await page.getByText(/every balance matches its transfers/).waitFor();
        // An account changed by hand, as a faulty migration would.
        await withOwnerTransaction(socle.db, (connection) =>
          connection.query('update ledger.accounts set credits_posted = credits_posted + 5 where id = $1', [
            walletId,
          ]),
        );
        await page.getByRole('button', { name: 'Reconcile now' }).click();
        await page.getByText(/2 problem\(s\) found/).waitFor();
        await page
          .getByRole('table', { name: /Accounts whose stored sums differ/ })
          .getByRole('cell', { name: walletId })
          .waitFor();
        // The hourly job (enqueued now rather than at the hour) keeps its result, shown when the page opens.
        const { id } = await socle.jobs.enqueue(socle.db.kysely, 'ledger.reconcile', {});
        await socle.jobs.runDueJobs();
        expect(await socle.jobs.get(id, null)).toMatchObject({
          name: 'ledger.reconcile',
          state: 'completed',
        });
        await page.reload();
        await page.getByText(/2 problem\(s\) found/).waitFor();
        await page.getByText('(by the hourly job)').waitFor();
        await page.getByRole('combobox', { name: 'Language' }).selectOption('fr');
        await page.getByRole('button', { name: 'Rapprocher maintenant' }).waitFor();
        await page.getByText('(par la tâche horaire)').waitFor();
      }),
    60_000,
  );

  it.skipIf(!chromiumAvailable())(
    "shows an organization's accounts with their balances, its transfers and the reconciliation",
    async () => {
      const owner = await socle.newUser();
      const tenant = await socle.newTenant({ owner, name: 'Cabinet Ledger' });
      const call = async (url: string, payload: object) => {
        const response = await callAs(socle, owner, 'POST', url, { orgId: tenant.id, payload });
        expect(response.statusCode, response.body).toBe(201);
        return response.json();
      };
      const system = (await call('/org/ledger/accounts', { owner: { kind: 'system' }, unit: 'EUR' })).id;
      const wallet = (
        await call('/org/ledger/accounts', { owner: { kind: 'user', userId: owner.userId }, unit: 'EUR' })
      ).id;
      const transferId = randomUUID();
      const posted = await callAs(socle, owner, 'POST', '/org/ledger/transfers', {
        orgId: tenant.id,
        payload: {
          transfers: [{ id: transferId, debitAccountId: system, creditAccountId: wallet, amount: '1234' }],
        },
      });
      expect(posted.statusCode, posted.body).toBeLessThan(300);
      await withConsolePage('console-ledger-accounts', async (page) => {
        // The organization's owner, who also holds the operator token (the reconciliation).
        await signInAs(page, { email: owner.email, operatorToken: OPERATOR_TOKEN });
        await page.getByRole('link', { name: 'Ledger' }).click();
        // Balances in the unit's own scale: EUR has 2 decimals.
        // The account's row comes first (its id is in the transfer's row too).
        const walletRow = page.getByRole('row').filter({ hasText: wallet }).first();
        await walletRow.waitFor();
        expect(await walletRow.textContent()).toContain('12.34');
        expect(await walletRow.textContent()).toContain(owner.userId);
        const systemRow = page.getByRole('row').filter({ hasText: system }).first();
        expect(await systemRow.textContent()).toContain('-12.34');
        const transferRow = page.getByRole('row').filter({ hasText: transferId });
        expect(await transferRow.textContent()).toContain('12.34 EUR');
        // The reconciliation of every ledger, on demand.
        await page.getByRole('button', { name: 'Reconcile now' }).click();
        await page
          .getByText(/every balance matches its transfers|problem\(s\) found/)
          .first()
          .waitFor();
        await page.getByRole('combobox', { name: 'Language' }).selectOption('fr');
        await page.getByRole('heading', { name: 'Comptes' }).waitFor();
        await page.getByRole('heading', { name: 'Derniers virements' }).waitFor();
      });
    },
    60_000,
  );
});

describeEachDatabase('Operator console with the payments module', (target) => {
  // The jobs module checks the operator token at sign-in; the audit module records the retry.
  const server = usePaymentsServer(target, [createJobsModule(), createAuditModule(), createConsoleModule()]);
  const withConsolePage = consoleBrowser.at(() => server.baseUrl);
  /** Payments whose `payment.succeeded` the app refuses (its handler is "down") while listed here. */
  const refused = new Set<string>();
  let handlerInstalled = false;
  /** A checkout of `tenant` completed at the fake Stripe, its webhook not delivered yet. */
  const failingCheckout = async (tenant: TestTenant) => {
    if (!handlerInstalled) {
      server.payments.on('payment.succeeded', (_trx, payment) => {
        if (refused.has(payment.id)) throw new Error('the app is down');
      });
      handlerInstalled = true;
    }
    const { paymentId, sessionId } = await server.checkout(tenant, 'coins-500');
    refused.add(paymentId);
    const [completed] = server.stripe.completeCheckout(sessionId) as [StripeEvent];
    return { paymentId, completed };
  };

  it.skipIf(!chromiumAvailable())(
    'shows a failed payment event live (no reload) with its error, and retries it once the app is back',
    async () => {
      const tenant = await server.socle.newTenant();
      const { paymentId, completed } = await failingCheckout(tenant);
      await withConsolePage('console-payments', async (page) => {
        await signInAs(page, { operatorToken: PAYMENTS_OPERATOR_TOKEN });
        await page.getByRole('link', { name: 'Payments' }).click();
        await page.getByRole('status').filter({ hasText: 'Live updates on' }).waitFor();
        await page.getByLabel('Status').selectOption('failed');
        await page.getByRole('button', { name: 'Filter' }).click();
        await page.getByText(/Updated live/).waitFor();
        // The webhook fails while the page is open: the event appears, pushed by the realtime
        // gateway (the page does not poll).
        expect(await server.stripe.deliver(server.webhookUrl, completed)).toBe(500);
        const row = page.locator(`tr[data-event-id="${completed.id}"]`);
        await row.getByText('the app is down (internal)').waitFor();
        await row.getByRole('cell', { name: 'Failed', exact: true }).waitFor();
        // Keyboard only: the retry button is reached and pressed without the mouse.
        refused.delete(paymentId);
        await row.getByRole('button', { name: `Retry event ${completed.id}` }).focus();
        await page.keyboard.press('Enter');
        await page.getByText(`Event ${completed.id} applied (paid).`).waitFor();
        // Applied now: gone from the failed ones, listed among the applied.
        await row.waitFor({ state: 'detached' });
        await page.getByLabel('Status').selectOption('applied');
        await page.getByRole('button', { name: 'Filter' }).click();
        await row.getByRole('cell', { name: 'Applied', exact: true }).waitFor();
        await page.getByRole('combobox', { name: 'Language' }).selectOption('fr');
        await page.getByRole('link', { name: 'Paiements' }).waitFor();
        await row.getByRole('cell', { name: 'Appliqué', exact: true }).waitFor();
      });
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(500n);
      await server.socle.servicesOf<{ flush(): Promise<void> }>('audit').flush();
      const audited = await withOwnerTransaction(server.socle.db, (connection) =>
        connection.query<{ action: string }>(
          `select action from audit.events where action = 'POST /operator/payments/events/:provider/:eventId/retry'`,
        ),
      );
      expect(audited.rows).toHaveLength(1);
    },
    60_000,
  );

  it.skipIf(!chromiumAvailable())(
    "shows an organization's admin its own payment events live, never another organization's",
    async () => {
      const own = await server.socle.newTenant();
      const other = await server.socle.newTenant();
      const ofOther = await failingCheckout(other);
      const ofOwn = await failingCheckout(own);
      await withConsolePage('console-payments-admin', async (page) => {
        // The owner's account, no operator token: the organization's own feed.
        await signInAs(page, { email: own.owner.email });
        await page.getByRole('status').filter({ hasText: 'Live updates on' }).waitFor();
        await page.getByRole('link', { name: 'Jobs' }).click();
        await page.getByText(/Updated live/).waitFor();
        await page.getByRole('link', { name: 'Payments' }).click();
        await page.getByText(/Updated live/).waitFor();
        await page.getByText('Nothing here.').first().waitFor();
        // The other organization's event fails first, then the admin's own: only its own shows.
        expect(await server.stripe.deliver(server.webhookUrl, ofOther.completed)).toBe(500);
        expect(await server.stripe.deliver(server.webhookUrl, ofOwn.completed)).toBe(500);
        await page
          .locator(`tr[data-event-id="${ofOwn.completed.id}"]`)
          .getByText('the app is down (internal)')
          .waitFor();
        expect(await page.locator(`tr[data-event-id="${ofOther.completed.id}"]`).count()).toBe(0);
        expect(await page.locator('tr[data-event-id]').count()).toBe(1);
      });
    },
    60_000,
  );
});

describeEachDatabase('Operator console with the files module', (target) => {
  let socle: TestSocle;
  let baseUrl: string;
  let owner: TestUser;
  let orgId: string;
  const contracts = defineBucket({
    name: 'contracts',
    maxBytes: 64 * 1024,
    allowedTypes: ['application/pdf'],
  });
  const withConsolePage = consoleBrowser.at(() => baseUrl);
  const pdf = (text: string) => Buffer.from(`%PDF-1.4\n% ${text}\n1 0 obj\n<<>>\nendobj\n${' '.repeat(512)}`);

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [
        ...createBuiltInModules(),
        createFilesModule({
          buckets: [contracts, defineBucket({ name: 'portraits', maxBytes: 1024, scope: 'user' })],
          quotaBytes: 1024 * 1024,
        }),
        createConsoleModule(),
      ],
      settings: { identity: { operatorToken: OPERATOR_TOKEN } },
    });
    owner = await socle.newUser({ email: 'files-owner@console.test' });
    orgId = (await socle.newTenant({ owner, name: 'Cabinet Fichiers' })).id;
    const files = socle.servicesOf<FilesServices>('files');
    for (const name of ['bail-2026.pdf', 'mandat.pdf'])
      await files.upload({
        bucket: 'contracts',
        tenantId: orgId,
        userId: owner.userId,
        body: Readable.from([pdf(name)]),
        name,
      });
    baseUrl = await socle.listen();
  }, 60_000);
  afterAll(async () => {
    await socle?.dispose();
  });

  it.skipIf(!chromiumAvailable())(
    "shows the buckets, the organization's use and the operator's usage by tenant; downloads, and deletes after a confirmation (audited)",
    () =>
      withConsolePage('console-files', async (page) => {
        let answer: 'accept' | 'dismiss' = 'dismiss';
        page.on('dialog', (dialog) => void dialog[answer]());
        await signInAs(page, { email: 'files-owner@console.test', operatorToken: OPERATOR_TOKEN });
        await page.getByRole('link', { name: 'Files' }).click();

        // The buckets, with the organization's use of each, and its quota.
        const buckets = page.getByRole('table').first();
        const row = buckets.getByRole('row', { name: /contracts/ });
        await row.getByRole('cell', { name: '2', exact: true }).waitFor();
        await buckets
          .getByRole('row', { name: /portraits/ })
          .getByText("each person's own")
          .waitFor();
        await page.getByText(/Stored: .* of 1\.0 MB\./).waitFor();
        // The operator's view: storage by organization, named.
        const usage = page.getByRole('region', { name: 'Storage by organization (operator)' });
        await usage
          .getByRole('row', { name: /Cabinet Fichiers/ })
          .getByRole('cell', { name: '2', exact: true })
          .waitFor();

        // Keyboard only: focus the bucket's button and press Enter.
        await page.getByRole('button', { name: 'Show the files of contracts' }).focus();
        await page.keyboard.press('Enter');
        const listed = page.getByRole('region', { name: 'Files in contracts' });
        await listed.getByRole('link', { name: 'Download bail-2026.pdf' }).waitFor();

        // The download link serves the bytes.
        const href = await listed.getByRole('link', { name: 'Download mandat.pdf' }).getAttribute('href');
        const downloaded = await page.evaluate(async (url) => {
          const response = await fetch(url as string);
          return { status: response.status, text: await response.text() };
        }, href);
        expect(downloaded.status).toBe(200);
        expect(downloaded.text).toContain('% mandat.pdf');

        // Deleting asks first: dismissed, the file stays; accepted, it goes (and is audited).
        await listed.getByRole('button', { name: 'Delete mandat.pdf' }).click();
        expect((await listFiles()).map((object) => object.name).sort()).toEqual([
          'bail-2026.pdf',
          'mandat.pdf',
        ]);
        answer = 'accept';
        await listed.getByRole('button', { name: 'Delete mandat.pdf' }).click();
        await listed.getByRole('status').getByText('mandat.pdf was deleted.').waitFor();
        await listed.getByRole('button', { name: 'Delete mandat.pdf' }).waitFor({ state: 'detached' });
        expect((await listFiles()).map((object) => object.name)).toEqual(['bail-2026.pdf']);
        await row.getByRole('cell', { name: '1', exact: true }).waitFor();
        await expect
          .poll(async () => {
            const events = await callAs(
              socle,
              owner,
              'GET',
              '/org/audit-events?action=DELETE%20%2Ffiles%2F%3Abucket%2F%3Aid',
              { orgId },
            );
            return (events.json() as { events: { action: string }[] }).events.length;
          })
          .toBe(1);

        await page.getByRole('combobox', { name: 'Language' }).selectOption('fr');
        await page.getByRole('region', { name: 'Fichiers de contracts' }).waitFor();
        await page.getByRole('button', { name: 'Supprimer bail-2026.pdf' }).waitFor();
      }),
    60_000,
  );

  it.skipIf(!chromiumAvailable())(
    "lists a person's objects in per-user buckets for the operator, names and sizes only (the read audited)",
    () =>
      withConsolePage('console-files-person', async (page) => {
        const files = socle.servicesOf<FilesServices>('files');
        await files.upload({
          bucket: 'portraits',
          userId: owner.userId,
          body: Readable.from([pdf('me')]),
          name: 'portrait-2026.pdf',
        });
        await signInAs(page, { email: 'files-owner@console.test', operatorToken: OPERATOR_TOKEN });
        await page.getByRole('link', { name: 'Files' }).click();
        const usage = page.getByRole('region', { name: 'Storage by organization (operator)' });
        const label = `Files of person ${owner.userId} in per-user buckets (the read is audited)`;
        await usage.getByRole('button', { name: label }).click();
        const listed = usage.getByRole('region', { name: label });
        const row = listed.getByRole('row', { name: /portrait-2026\.pdf/ });
        await row.getByRole('cell', { name: 'portraits', exact: true }).waitFor();
        // Nothing to download or open: the operator sees what is stored, not what it says.
        expect(await listed.getByRole('link').count()).toBe(0);
        await expect
          .poll(async () => {
            const events = await socle.app.inject({
              method: 'GET',
              url: `/operator/audit-events?action=${encodeURIComponent('GET /operator/files/users/:userId/objects')}`,
              headers: { 'x-operator-token': OPERATOR_TOKEN },
            });
            return (events.json() as { events: { target: { userId: string } | null }[] }).events.map(
              (event) => event.target?.userId,
            );
          })
          .toContain(owner.userId);
        await page.getByRole('combobox', { name: 'Language' }).selectOption('fr');
        await page
          .getByRole('region', {
            name: `Fichiers de la personne ${owner.userId} dans les buckets personnels (lecture journalisée)`,
          })
          .waitFor();
      }),
    60_000,
  );

  async function listFiles() {
    const response = await callAs(socle, owner, 'GET', '/files/contracts', { orgId });
    expect(response.statusCode, response.body).toBe(200);
    return (response.json() as { objects: { name: string }[] }).objects;
  }
});

/** A TOTP code `stepsAhead` steps from now (the server accepts ±1 step and each code once). */
function totpCode(secret: string, stepsAhead = 0): Promise<string> {
  return generate({ secret, epoch: Math.floor(Date.now() / 1000) + stepsAhead * 30 });
}
