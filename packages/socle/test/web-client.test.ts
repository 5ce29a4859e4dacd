import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONTENT_SECURITY_POLICY, defineModule } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createRealtimeModule, type Realtime } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import {
  chromiumAvailable,
  createTestSocle,
  launchBrowser,
  type TestSocle,
  watchPage,
} from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { testRealtimeApp } from './support/realtime-clients.js';

const fixture = new URL('./fixtures/web-client/', import.meta.url);

/** A module serving the fixture at its default path, as an app does. */
const demo = defineModule({ name: 'demo', web: { root: fixture } });
/** A single-page client with its own routes, at a path of its choosing. */
const spa = defineModule({ name: 'spa', web: { root: fixture, path: '/console/', singlePage: true } });

/**
 * A GET sent exactly as written: fetch would normalise `..` and, given If-None-Match, add
 * `Cache-Control: no-cache` (the fetch standard), which asks the server for a full answer.
 */
function rawGet(
  baseUrl: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const sent = httpRequest({ host: hostname, port, path, method: 'GET', headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    sent.on('error', reject);
    sent.end();
  });
}

describe('Web clients: the module definition', () => {
  it('refuses a path that does not start and end with a slash, where the module is written', () => {
    expect(() => defineModule({ name: 'bad', web: { root: fixture, path: '/apps/bad' } })).toThrow(
      expect.objectContaining({ code: 'module.web_path_invalid' }),
    );
    expect(() => defineModule({ name: 'bad', web: { root: fixture, path: '/' } })).toThrow(
      expect.objectContaining({ code: 'module.web_path_invalid' }),
    );
  });
});

describeEachDatabase('Web clients served by Socle', (target) => {
  const app = testRealtimeApp();
  let socle: TestSocle;
  let realtime: Realtime;
  let baseUrl: string;

  beforeAll(async () => {
    const realtimeModule = createRealtimeModule();
    socle = await createTestSocle(target, {
      settings: { realtime: app },
      modules: [createIdentityModule(), createMailModule(), createTenancyModule(), realtimeModule, demo, spa],
    });
    realtime = socle.servicesOf(realtimeModule);
    baseUrl = await socle.listen();
  });
  afterAll(async () => {
    await socle?.dispose();
  });

  it('serves the index with a strict Content-Security-Policy, HTML revalidated on every load', async () => {
    const response = await fetch(`${baseUrl}/apps/demo/`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    expect(response.headers.get('content-security-policy')).toBe(DEFAULT_CONTENT_SECURITY_POLICY);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('cache-control')).toBe('no-cache');
    expect(await response.text()).toContain('<p id="status">');

    const withoutSlash = await fetch(`${baseUrl}/apps/demo`, { redirect: 'manual' });
    expect(withoutSlash.status).toBeGreaterThanOrEqual(301);
    expect(withoutSlash.status).toBeLessThanOrEqual(308);
    expect(withoutSlash.headers.get('location')).toBe('/apps/demo/');
  });

  it('serves assets with their type and an ETag, and answers 304 to a matching conditional GET', async () => {
    const script = await fetch(`${baseUrl}/apps/demo/assets/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
    expect(script.headers.get('cache-control')).toBe('public, max-age=3600');
    const etag = script.headers.get('etag');
    expect(etag).toBeTruthy();
    const again = await rawGet(baseUrl, '/apps/demo/assets/app.js', { 'if-none-match': etag ?? '' });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
    const style = await fetch(`${baseUrl}/apps/demo/assets/style.css`);
    expect(style.headers.get('content-type')).toMatch(/^text\/css/);
  });

  it('answers a missing file, a dotfile, a climb out of the root and a POST with a 4xx problem, never a file outside', async () => {
    const missing = await fetch(`${baseUrl}/apps/demo/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await missing.json()).toMatchObject({ code: 'http.route_not_found' });

    const dotfile = await fetch(`${baseUrl}/apps/demo/.private-notes`);
    expect(dotfile.status).toBeGreaterThanOrEqual(400);
    expect(dotfile.status).toBeLessThan(500);
    expect(await dotfile.text()).not.toContain('not for the public');

    const secret = fileURLToPath(new URL('./web-client.test.ts', import.meta.url));
    for (const path of [
      '/apps/demo/../../web-client.test.ts',
      '/apps/demo/%2e%2e/%2e%2e/web-client.test.ts',
      '/apps/demo/..%2f..%2fweb-client.test.ts',
      `/apps/demo/${encodeURIComponent(secret)}`,
    ]) {
      const climbed = await rawGet(baseUrl, path);
      expect(climbed.status, path).toBeGreaterThanOrEqual(400);
      expect(climbed.status, path).toBeLessThan(500);
      expect(climbed.body, path).not.toContain('describeEachDatabase');
    }

    const posted = await fetch(`${baseUrl}/apps/demo/`, { method: 'POST' });
    expect(posted.status).toBe(404);
    expect(posted.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('answers every path of a single-page client with its index, and keeps files and methods as they are', async () => {
    const route = await fetch(`${baseUrl}/console/tenants/42`);
    expect(route.status).toBe(200);
    expect(route.headers.get('content-type')).toMatch(/^text\/html/);
    expect(route.headers.get('content-security-policy')).toBe(DEFAULT_CONTENT_SECURITY_POLICY);
    expect(await route.text()).toContain('<p id="status">');
    expect((await fetch(`${baseUrl}/console/assets/app.js`)).headers.get('content-type')).toMatch(
      /javascript/,
    );
    const posted = await fetch(`${baseUrl}/console/tenants/42`, { method: 'POST' });
    expect(posted.status).toBe(404);
    expect(await posted.json()).toMatchObject({ code: 'http.route_not_found' });
  });

  it('keeps web clients out of the API description', async () => {
    const document = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
    };
    const served = ['/apps/demo', '/console', '/realtime/client'];
    expect(
      Object.keys(document.paths).filter((path) => served.some((prefix) => path.startsWith(prefix))),
    ).toEqual([]);
  });

  it('serves the browser Pusher client from the realtime module, on its own origin', async () => {
    const response = await fetch(`${baseUrl}/realtime/client/pusher.min.js`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/javascript/);
    expect(await response.text()).toContain('Pusher');
  });

  it('refuses to start when a web root is not a directory', async () => {
    const lost = defineModule({
      name: 'lost',
      web: { root: new URL('./fixtures/no-such-dir/', import.meta.url) },
    });
    await expect(createTestSocle(target, { modules: [lost] })).rejects.toMatchObject({
      code: 'module.web_root_missing',
    });
  });

  describe.skipIf(!chromiumAvailable())('in Chromium', () => {
    it('loads the page under its CSP, connects to the gateway with the served client and shows a published event', async () => {
      const browser = await launchBrowser();
      try {
        const page = await browser.newPage();
        const watched = watchPage(page);
        await page.goto(`${baseUrl}/apps/demo/?key=${app.appKey}`);
        await page.locator('#status', { hasText: 'subscribed' }).waitFor();
        await realtime.publish({
          channel: 'news',
          event: 'headline',
          data: { text: 'Socle serves its own clients' },
        });
        await page.locator('#headline', { hasText: 'Socle serves its own clients' }).waitFor();
        await watched.assertClean('web-client');
      } finally {
        await browser.close();
      }
    });
  });
});

describeEachDatabase('Web clients and Pusher app ids', (target) => {
  it('refuses a configured realtime app whose id is the path of a module web client', async () => {
    const app = { ...testRealtimeApp(), appId: 'demo' };
    await expect(
      createTestSocle(target, {
        settings: { realtime: app },
        modules: [
          createIdentityModule(),
          createMailModule(),
          createTenancyModule(),
          createRealtimeModule(),
          demo,
        ],
      }),
    ).rejects.toMatchObject({ code: 'realtime.app_id_taken' });
  });
});
