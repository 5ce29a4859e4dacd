import type { Browser, Page } from 'playwright-core';
import { afterAll } from 'vitest';
import { launchBrowser, TEST_PASSWORD, type WatchedPage, watchPage } from '../../src/testing/index.js';

/** Steps of a console test, given the page (at `/console/`, in English) and its watcher. */
export type ConsoleSteps = (page: Page, watched: WatchedPage) => Promise<void>;

/**
 * The console's browser tests: one Chromium for the whole test file (launched when first needed,
 * closed after the file's last test), a fresh context per test (its own sessionStorage, so no
 * test inherits another's sign-in). Call at the top level of the file.
 *
 * @example
 * const consoleBrowser = useConsoleBrowser();
 * describeEachDatabase('…', (target) => {
 *   const withConsolePage = consoleBrowser.at(() => baseUrl);
 *   it('…', () => withConsolePage('console-jobs', async (page) => { … }));
 * });
 */
export function useConsoleBrowser() {
  let browser: Promise<Browser> | undefined;
  afterAll(async () => {
    await (await browser)?.close();
  });
  const shared = () => {
    browser ??= launchBrowser();
    return browser;
  };

  /** A page of its own context, watched from before its first request; closed by the caller. */
  async function newPage(): Promise<{ page: Page; watched: WatchedPage; close(): Promise<void> }> {
    const context = await (await shared()).newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    return { page, watched: watchPage(page), close: () => context.close() };
  }

  return {
    newPage,
    /**
     * `withConsolePage(name, steps)` for the server at `baseUrl()`: opens `/console/` in English,
     * runs the steps, then fails on any console error, uncaught exception, CSP violation or failed
     * request; a step that fails, or a page with problems, leaves `<name>.png` in
     * `SOCLE_TEST_SCREENSHOTS` (CI keeps it as an artifact).
     */
    at(baseUrl: () => string) {
      return async function withConsolePage(name: string, steps: ConsoleSteps): Promise<void> {
        const { page, watched, close } = await newPage();
        try {
          await watched.run(name, async () => {
            await page.goto(`${baseUrl()}/console/`);
            await page.getByRole('combobox', { name: /^(Language|Langue)$/ }).selectOption('en');
            await steps(page, watched);
          });
        } finally {
          await close();
        }
      };
    },
  };
}

/**
 * Fills the sign-in form and submits it: an account (with the test password unless given), the
 * operator token, or both.
 */
export async function signInAs(
  page: Page,
  who: { readonly email?: string; readonly password?: string; readonly operatorToken?: string },
): Promise<void> {
  if (who.email !== undefined) {
    await page.getByLabel('Email').fill(who.email);
    await page.getByLabel('Password').fill(who.password ?? TEST_PASSWORD);
  }
  if (who.operatorToken !== undefined)
    await page.getByLabel('Operator token (optional)').fill(who.operatorToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
