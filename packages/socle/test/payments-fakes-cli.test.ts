import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killCliProcesses, runCli, spawnCli, waitForListening } from './support/cli-process.js';
import { createEmbeddedDataDirectory, removeTempDirectories } from './support/temp-directories.js';

const SHOP_MODULE = fileURLToPath(new URL('./fixtures/payments-shop-module.ts', import.meta.url));
/** Spawns Node with tsx and opens PGlite, then a purchase through two fakes: a busy 2-core machine. */
const TIMEOUT_MS = 180_000;
/** Our Swiss Bitcoin Pay webhook secret: the test posts a forged notice with it. */
const SWISS_SECRET = 'sbp-webhook-secret-for-the-cli-test';

afterEach(killCliProcesses);
afterAll(removeTempDirectories);

async function call(
  baseUrl: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown } = {},
) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      ...options.headers,
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return { status: response.status, json: (text === '' ? {} : JSON.parse(text)) as Record<string, unknown> };
}

/** Polls `read` until it returns a value (generous: deliveries run in the background on a loaded machine). */
async function eventually<T>(read: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('socle start with PAYMENTS_FAKES (embedded)', { timeout: TIMEOUT_MS }, () => {
  it('lets a newcomer buy coins end to end: the fake checkout page and invoice pages pay, the webhook credits the wallet', async () => {
    const directory = await createEmbeddedDataDirectory();
    const server = spawnCli(['start'], {
      cwd: directory,
      env: {
        DATA_DIR: directory,
        SOCLE_MODULES: SHOP_MODULE,
        PAYMENTS_FAKES: 'stripe,btcpay,swiss-bitcoin-pay',
        PAYMENTS_SWISS_BITCOIN_PAY_WEBHOOK_SECRET: SWISS_SECRET,
      },
    });
    const baseUrl = await waitForListening(server, 90_000);
    const warning = await server.waitForLog((line) => Array.isArray(line.fakes));
    expect(warning.fakes).toEqual(['stripe', 'btcpay', 'swiss-bitcoin-pay']);

    const signUp = await call(baseUrl, 'POST', '/auth/sign-up', {
      body: { email: 'newcomer@example.com', password: 'quartz-lantern-hollow-91-meadow', name: 'New' },
    });
    expect(signUp.status).toBe(201);
    const bearer = {
      authorization: `Bearer ${(signUp.json.tokens as { accessToken: string }).accessToken}`,
    };
    const org = await call(baseUrl, 'POST', '/orgs', { headers: bearer, body: { name: 'Shop' } });
    expect(org.status).toBe(201);
    const headers = { ...bearer, 'x-org-id': org.json.id as string };
    const coins = async () => {
      const { json } = await call(baseUrl, 'GET', '/ledger/accounts', { headers });
      const accounts = json.accounts as { unit: string; balance: { posted: string } }[];
      return accounts.find((account) => account.unit === 'coins')?.balance.posted ?? '0';
    };
    const paid = (paymentId: string) =>
      eventually(async () => {
        const { json } = await call(baseUrl, 'GET', '/payments/payments', { headers });
        const payment = (json.payments as { id: string; status: string }[]).find(
          (candidate) => candidate.id === paymentId,
        );
        return payment?.status === 'succeeded' ? payment : undefined;
      });

    // Stripe: the checkout URL is the fake's hosted page; its Pay button pays and delivers.
    const checkout = await call(baseUrl, 'POST', '/payments/checkout', {
      headers,
      body: { productId: 'coins-500', successUrl: 'https://shop.test/ok', cancelUrl: 'https://shop.test/no' },
    });
    expect(checkout.status).toBe(201);
    const checkoutUrl = checkout.json.checkoutUrl as string;
    const page = await fetch(checkoutUrl);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Pay 4.99 EUR');
    const pay = await fetch(`${checkoutUrl}/pay`, { method: 'POST', redirect: 'manual' });
    expect(pay.status).toBe(303);
    expect(pay.headers.get('location')).toBe('https://shop.test/ok');
    await paid(checkout.json.id as string);
    expect(await coins()).toBe('500');
    // Paid once: the page now says so, and Pay again (a reload, a double click) pays nothing more:
    // the buyer goes back to the app (the 1000 coins below prove no second credit).
    expect(await (await fetch(checkoutUrl)).text()).toContain('This checkout is complete');
    const again = await fetch(`${checkoutUrl}/pay`, { method: 'POST', redirect: 'manual' });
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe('https://shop.test/ok');

    // BTCPay: the invoice's link is the fake's invoice page; paying it delivers InvoiceSettled.
    const invoice = await call(baseUrl, 'POST', '/payments/invoices', {
      headers,
      body: { productId: 'coins-500', provider: 'btcpay' },
    });
    expect(invoice.status).toBe(201);
    const invoiceUrl = invoice.json.checkoutUrl as string;
    expect((await fetch(`${invoiceUrl}/pay`, { method: 'POST' })).status).toBe(200);
    await paid(invoice.json.id as string);
    expect(await coins()).toBe('1000');

    // Swiss Bitcoin Pay: its webhooks are unsigned, so a notice is only a hint. A forged one
    // (our secret, a body saying paid) pays nothing: the server reads the checkout back from the
    // fake's API, which says unpaid. The page's test wallet then pays; the real notice credits.
    const swiss = await call(baseUrl, 'POST', '/payments/invoices', {
      headers,
      body: { productId: 'coins-500', provider: 'swiss-bitcoin-pay' },
    });
    expect(swiss.status).toBe(201);
    expect(swiss.json.paymentUri).toMatch(/^bitcoin:bc1q.+lightning=lnbc/);
    const forged = await fetch(`${baseUrl}/payments/webhooks/swiss-bitcoin-pay`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-webhook-secret': SWISS_SECRET },
      body: JSON.stringify({ id: swiss.json.providerReference, isPaid: true }),
    });
    expect(forged.status).toBe(200);
    const { json: listed } = await call(baseUrl, 'GET', '/payments/payments', { headers });
    expect(
      (listed.payments as { id: string; status: string }[]).find((p) => p.id === swiss.json.id)?.status,
    ).toBe('pending');
    expect(await coins()).toBe('1000');
    const swissUrl = swiss.json.checkoutUrl as string;
    expect(await (await fetch(swissUrl)).text()).toContain('Pay from a test wallet');
    expect((await fetch(`${swissUrl}/pay`, { method: 'POST' })).status).toBe(200);
    await paid(swiss.json.id as string);
    expect(await coins()).toBe('1500');
    // Paying it again is refused by the page and credits nothing.
    expect((await fetch(`${swissUrl}/pay`, { method: 'POST' })).status).toBe(400);
    expect(await coins()).toBe('1500');

    server.signal('SIGTERM');
    expect((await server.waitForExit(60_000)).code).toBe(0);
  });

  it('refuses the fakes on Postgres, without the payments module, or naming an unknown provider (exit 2)', async () => {
    const directory = await createEmbeddedDataDirectory();
    const base = { DATA_DIR: directory, SOCLE_MODULES: SHOP_MODULE, PAYMENTS_FAKES: 'stripe' };
    const onPostgres = await runCli(['start'], {
      cwd: directory,
      env: { ...base, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' },
    });
    expect(onPostgres.code, onPostgres.stderr).toBe(2);
    expect(onPostgres.stderr).toContain('refuses PAYMENTS_FAKES=stripe: it runs in embedded mode only');
    expect(onPostgres.stdout).not.toContain('listening on');

    const withoutPayments = await runCli(['start'], {
      cwd: directory,
      env: { DATA_DIR: directory, PAYMENTS_FAKES: 'stripe' },
    });
    expect(withoutPayments.code, withoutPayments.stderr).toBe(2);
    expect(withoutPayments.stderr).toContain('no module named payments runs');

    const unknown = await runCli(['start'], { cwd: directory, env: { ...base, PAYMENTS_FAKES: 'paypal' } });
    expect(unknown.code, unknown.stderr).toBe(2);
    expect(unknown.stderr).toContain(
      'PAYMENTS_FAKES lists paypal: it takes stripe, btcpay, swiss-bitcoin-pay',
    );
  });
});
