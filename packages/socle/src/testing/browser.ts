import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, ConsoleMessage, Page } from 'playwright-core';

/**
 * Browser tests of a module's web client: Playwright (`playwright-core`, an optional peer
 * dependency of `socle`) driving the system's Chromium. Playwright's own browser downloads need the
 * network; Debian's `chromium` package does not.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];

/**
 * Whether browser tests can run here: Chromium is installed. In CI (`CI` set) a missing Chromium is
 * an error, so a browser suite never passes by skipping; locally it is skipped.
 *
 * @example
 * describe.skipIf(!chromiumAvailable())('the quiz in a browser', () => { … });
 */
export function chromiumAvailable(): boolean {
  const found = existsSync(CHROMIUM_PATH);
  if (!found && process.env.CI)
    throw new Error(
      `Chromium is missing at ${CHROMIUM_PATH} and CI runs the browser tests: apt-get install chromium (or set CHROMIUM_PATH)`,
    );
  return found;
}

/** Starts headless Chromium (close it in `afterAll`). */
export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: CHROMIUM_FLAGS });
}

export interface WatchedPage {
  /** Console errors, uncaught exceptions, CSP violations and failed requests seen so far. */
  readonly problems: readonly string[];
  /**
   * Throws listing every problem seen (a console error, an uncaught exception, a refused
   * Content-Security-Policy, a request that failed or answered 5xx); saves a screenshot first
   * when `SOCLE_TEST_SCREENSHOTS` names a directory (CI keeps it as an artifact).
   */
  assertClean(name?: string): Promise<void>;
}

/**
 * Watches a page for what a user would call broken. Call it right after `newPage()`, before the
 * first `goto`, and `assertClean()` at the end of the test.
 */
export function watchPage(page: Page): WatchedPage {
  const problems: string[] = [];
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('requestfailed', (request) => {
    // A page navigating away aborts its pending requests (a WebSocket closing is not one).
    const failure = request.failure()?.errorText ?? 'failed';
    if (failure !== 'net::ERR_ABORTED')
      problems.push(`request failed: ${request.method()} ${request.url()} (${failure})`);
  });
  page.on('response', (response) => {
    if (response.status() >= 500)
      problems.push(`server error: ${response.request().method()} ${response.url()} → ${response.status()}`);
  });
  // CSP violations reach the console as errors too; this catches report-only ones and names them.
  // (A script's text: it runs in the page, whose types this Node project does not load.)
  void page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (event) => {
      console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + event.blockedURI);
    });`,
  });
  return {
    problems,
    async assertClean(name = 'page') {
      if (problems.length === 0) return;
      const directory = process.env.SOCLE_TEST_SCREENSHOTS;
      if (directory) {
        await mkdir(directory, { recursive: true });
        await page
          .screenshot({ path: join(directory, `${name.replace(/[^a-z0-9-]+/gi, '-')}.png`), fullPage: true })
          .catch(() => undefined);
      }
      throw new Error(`The page had ${problems.length} problem(s):\n${problems.join('\n')}`);
    },
  };
}
