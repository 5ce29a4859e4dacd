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

/** How Chromium logs a response of status 4xx (any request): `Failed to load resource: … status of 404 (Not Found)`. */
const CLIENT_ERROR_LOG = /^Failed to load resource: the server responded with a status of 4\d\d\b/;

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

/**
 * Starts headless Chromium (close it in `afterAll`). `args` adds command-line switches, e.g.
 * Chromium's fake microphone for a WebRTC test.
 *
 * @example
 * const browser = await launchBrowser({ args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] });
 */
export async function launchBrowser(options: { readonly args?: readonly string[] } = {}): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_FLAGS, ...(options.args ?? [])],
  });
}

export interface WatchedPage {
  /** Console errors, uncaught exceptions, CSP violations and failed requests seen so far. */
  readonly problems: readonly string[];
  /**
   * Throws listing every problem seen (a console error, an uncaught exception, a refused
   * Content-Security-Policy, a request that failed or answered 5xx, a 4xx other than an API's
   * problem+json answer to the page's fetch); saves a screenshot first
   * when `SOCLE_TEST_SCREENSHOTS` names a directory (CI keeps it as an artifact).
   */
  assertClean(name?: string): Promise<void>;
  /**
   * Saves a full-page screenshot as `<SOCLE_TEST_SCREENSHOTS>/<name>.png` when that variable names
   * a directory, and returns its path (undefined otherwise, or when the page is gone).
   */
  screenshot(name?: string): Promise<string | undefined>;
  /**
   * Runs a test's steps on the page, then `assertClean(name)`. When a step fails (a locator that
   * never appears, a wrong value) the screenshot is saved first, so CI keeps what the page showed.
   *
   * @example
   * await watchPage(page).run('console', async () => { await page.goto(url); … });
   */
  run(name: string, steps: () => Promise<void>): Promise<void>;
}

/**
 * Watches a page for what a user would call broken. Call it right after `newPage()`, before the
 * first `goto`, and `assertClean()` at the end of the test.
 */
export function watchPage(page: Page): WatchedPage {
  const problems: string[] = [];
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() !== 'error') return;
    // Chromium logs every 4xx answer this way, an API's expected refusal too (401 auth.mfa_required
    // asks for a second factor): 4xx answers are judged below, by what was asked for.
    if (CLIENT_ERROR_LOG.test(message.text())) return;
    problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
  page.on('requestfailed', (request) => {
    // A page navigating away aborts its pending requests (a WebSocket closing is not one).
    const failure = request.failure()?.errorText ?? 'failed';
    if (failure !== 'net::ERR_ABORTED')
      problems.push(`request failed: ${request.method()} ${request.url()} (${failure})`);
  });
  page.on('response', (response) => {
    const status = response.status();
    const request = response.request();
    if (status >= 500) problems.push(`server error: ${request.method()} ${request.url()} → ${status}`);
    // A 4xx is a problem unless it is an API's answer to the page's own call (fetch or XHR) as
    // problem+json, which the page handles (a refusal it shows, a second factor it asks for); a
    // script, style or image that is missing is one.
    else if (status >= 400) {
      const handled =
        ['fetch', 'xhr'].includes(request.resourceType()) &&
        (response.headers()['content-type'] ?? '').startsWith('application/problem+json');
      if (!handled) problems.push(`client error: ${request.method()} ${request.url()} → ${status}`);
    }
  });
  // CSP violations reach the console as errors too; this catches report-only ones and names them.
  // (A script's text: it runs in the page, whose types this Node project does not load.)
  void page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (event) => {
      console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + event.blockedURI);
    });`,
  });
  const screenshot = async (name = 'page'): Promise<string | undefined> => {
    const directory = process.env.SOCLE_TEST_SCREENSHOTS;
    if (!directory) return undefined;
    await mkdir(directory, { recursive: true });
    const path = join(directory, `${name.replace(/[^a-z0-9-]+/gi, '-')}.png`);
    return page.screenshot({ path, fullPage: true }).then(
      () => path,
      () => undefined,
    );
  };
  const assertClean = async (name = 'page') => {
    if (problems.length === 0) return;
    const saved = await screenshot(name);
    throw new Error(
      `The page had ${problems.length} problem(s):\n${problems.join('\n')}${saved ? `\nScreenshot: ${saved}` : ''}`,
    );
  };
  return {
    problems,
    assertClean,
    screenshot,
    async run(name, steps) {
      try {
        await steps();
      } catch (error) {
        const saved = await screenshot(name);
        if (saved && error instanceof Error) error.message += `\nScreenshot: ${saved}`;
        if (problems.length > 0 && error instanceof Error)
          error.message += `\nThe page also had:\n${problems.join('\n')}`;
        throw error;
      }
      await assertClean(name);
    },
  };
}
