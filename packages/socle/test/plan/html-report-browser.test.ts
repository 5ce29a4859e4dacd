import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCalibration, loadPrices } from '../../src/plan/data.js';
import { plan } from '../../src/plan/plan.js';
import { renderHtml } from '../../src/plan/render.js';
import { parseWorkload } from '../../src/plan/workload.js';
import { chromiumAvailable, launchBrowser, watchPage } from '../../src/testing/index.js';

// The HTML report of every seed, opened in Chromium as a founder would open the file: it renders,
// with its charts, no console error, no failed request, and a screenshot is taken (kept in
// SOCLE_TEST_ARTIFACTS/plan-reports when set, as CI sets it, else in a temporary directory removed
// afterwards). Not in SOCLE_TEST_SCREENSHOTS: that directory holds only pages that failed.

const calibration = loadCalibration(new URL('./fixture-calibration.json', import.meta.url));
const prices = loadPrices();
const SEEDS = [
  '000-strategybuzzer.yaml',
  '001-crm-ia-cabinets.yaml',
  '002-jatsmanor.yaml',
  '003-renzo-immobilier.yaml',
  '004-cryptocare.yaml',
];

describe.skipIf(!chromiumAvailable())('socle plan --html in Chromium', () => {
  let browser: Browser;
  let directory: string;
  beforeAll(async () => {
    browser = await launchBrowser();
    directory = await mkdtemp(join(tmpdir(), 'socle-plan-html-'));
  });
  afterAll(async () => {
    await browser?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it.each(SEEDS)('%s renders: a section and charts per phase, no console error', async (seed) => {
    const text = await readFile(new URL(`../../../../plans/${seed}`, import.meta.url), 'utf8');
    const result = plan(parseWorkload(text), prices, calibration);
    const file = join(directory, seed.replace('.yaml', '.html'));
    await writeFile(file, renderHtml(result));

    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    try {
      const watched = watchPage(page);
      await page.goto(pathToFileURL(file).href);
      expect(await page.title()).toBe(`Plan: ${result.workload}`);
      expect(await page.locator('section').count()).toBe(result.phases.length);
      // Two charts per phase (cost by provider, API headroom), each drawn with a size.
      const charts = page.locator('svg[role="img"]');
      expect(await charts.count()).toBe(2 * result.phases.length);
      for (const box of await charts.evaluateAll((nodes) =>
        nodes.map((node) => {
          const rect = node.getBoundingClientRect();
          return { width: rect.width, height: rect.height };
        }),
      )) {
        expect(box.width).toBeGreaterThan(0);
        expect(box.height).toBeGreaterThan(0);
      }
      // A bar per compute provider in the first phase's cost chart.
      expect(
        await page.locator('section').first().locator('svg[role="img"]').first().locator('rect').count(),
      ).toBeGreaterThanOrEqual(result.phases[0]?.providers.length ?? 1);
      // The errors the planner found are on the page, as a founder reads them.
      const errors = result.phases.flatMap((phase) =>
        phase.checks.filter((check) => check.severity === 'error'),
      );
      expect(await page.locator('.checks li.error').count()).toBe(errors.length);
      const artifacts = process.env.SOCLE_TEST_ARTIFACTS;
      const screenshot = await page.screenshot({
        fullPage: true,
        path: join(
          artifacts ? join(artifacts, 'plan-reports') : directory,
          `plan-${seed.replace('.yaml', '')}.png`,
        ),
      });
      // A PNG of the whole report (its signature, and more than a blank page's few bytes).
      expect(screenshot.subarray(1, 4).toString('latin1')).toBe('PNG');
      expect(screenshot.length).toBeGreaterThan(20_000);
      await watched.assertClean(`plan-${seed}`);
    } finally {
      await page.close();
    }
  });
});
