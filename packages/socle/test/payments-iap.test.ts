import { beforeAll, describe, expect, it } from 'vitest';
import { defineCatalog } from '../src/index.js';
import {
  createFakeAppStore,
  type FakeAppStore,
  type FakeGooglePlay,
  type TestSocle,
  type TestTenant,
  type TestUser,
} from '../src/testing/index.js';
import { coinsPack } from './fixtures/payments-module.js';
import { describeEachDatabase } from './support/each-database.js';
import { useStorePaymentsServer } from './support/store-payments-server.js';

const PLAY_SECRET = 'play-rtdn-secret-0123456789';

/** A pack sold in both stores under their own product ids. */
const catalog = defineCatalog([coinsPack]);

describeEachDatabase('In-app purchases', (target) => {
  const server = useStorePaymentsServer(target, catalog, () => ({
    googlePlayNotificationSecret: PLAY_SECRET,
  }));
  let socle: TestSocle;
  let store: FakeAppStore;
  let play: FakeGooglePlay;
  let baseUrl: string;
  beforeAll(() => {
    ({ socle, store, play, baseUrl } = server);
  });

  const claim = (tenant: TestTenant, user: TestUser, provider: string, payload: object) =>
    server.claim(tenant, user, provider, payload);
  const balance = (tenant: TestTenant, userId: string) => server.balance(tenant, userId, 'coins');
  /** Payments and events stored for the tenant (owner role: every row). */
  const stored = async (tenant: TestTenant) => {
    const { rows } = await socle.db.withConnection(
      (connection) =>
        connection.query<{ payments: string; events: string }>(
          `select (select count(*) from payments.payments where tenant_id = $1)::text as payments,
                  (select count(*) from payments.events where tenant_id = $1)::text as events`,
          [tenant.id],
        ),
      'owner',
    );
    return { payments: Number(rows[0]?.payments), events: Number(rows[0]?.events) };
  };
  const webhook = (provider: string, query = '') => `${baseUrl}/payments/webhooks/${provider}${query}`;

  describe('Apple (StoreKit 2 signed transactions, Server Notifications V2)', () => {
    it('credits a verified signed transaction once, however often and concurrently the app posts it', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const { transactionId, signedTransaction } = store.purchase('com.example.socle.coins500', {
        appAccountToken: buyer.userId,
      });
      const first = await claim(tenant, buyer, 'apple', { signedTransaction });
      expect(first.statusCode).toBe(200);
      expect(first.json()).toMatchObject({
        duplicate: false,
        outcome: 'paid',
        payment: {
          provider: 'apple',
          providerReference: transactionId,
          productId: 'coins-500',
          status: 'succeeded',
          credits: '500',
        },
      });
      const replays = await Promise.all(
        Array.from({ length: 10 }, () => claim(tenant, buyer, 'apple', { signedTransaction })),
      );
      expect(replays.map((reply) => reply.statusCode)).toEqual(Array(10).fill(200));
      expect(replays.every((reply) => reply.json().duplicate === true)).toBe(true);
      // A fresh JWS of the same transaction (signed again later) is the same purchase.
      const resigned = await claim(tenant, buyer, 'apple', {
        signedTransaction: store.signedTransaction(transactionId),
      });
      expect(resigned.json()).toMatchObject({ duplicate: true });
      expect(await balance(tenant, buyer.userId)).toBe(500n);
      expect(await stored(tenant)).toEqual({ payments: 1, events: 1 });
    });

    it('refuses a tampered, foreign-chain or other-app JWS with 400 and stores nothing', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const { signedTransaction } = store.purchase('com.example.socle.coins500');
      const [head, body, signature] = signedTransaction.split('.');
      const payload = JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8'));
      const forged = Buffer.from(JSON.stringify({ ...payload, quantity: 100 })).toString('base64url');
      const stranger = createFakeAppStore({ bundleId: store.bundleId, environment: 'Sandbox' });
      const attempts = [
        `${head}.${forged}.${signature}`,
        stranger.purchase('com.example.socle.coins500').signedTransaction,
        store.sign({ ...payload, bundleId: 'com.other.app', transactionId: '1' }),
        store.sign({ ...payload, environment: 'Production', transactionId: '2' }),
      ];
      for (const attempt of attempts) {
        const refused = await claim(tenant, buyer, 'apple', { signedTransaction: attempt });
        expect(refused.statusCode).toBe(400);
        expect(refused.headers['content-type']).toContain('application/problem+json');
        expect(refused.json().code).toBe('payments.invalid_signature');
      }
      const garbage = await claim(tenant, buyer, 'apple', { signedTransaction: 'not-a-jws' });
      expect(garbage.statusCode).toBe(400);
      expect(garbage.json().errors?.[0]?.field).toBe('body/signedTransaction');
      expect(await stored(tenant)).toEqual({ payments: 0, events: 0 });
      expect(await balance(tenant, buyer.userId)).toBe(0n);
    });

    it('reverses a refunded purchase once, whether the notification or the app tells it, in any order and again', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const one = store.purchase('com.example.socle.coins500');
      const two = store.purchase('com.example.socle.coins500');
      for (const { signedTransaction } of [one, two])
        expect((await claim(tenant, buyer, 'apple', { signedTransaction })).json().outcome).toBe('paid');
      expect(await balance(tenant, buyer.userId)).toBe(1000n);

      // The first: Apple's REFUND notification, delivered three times, then the app posts the revoked JWS.
      store.refund(one.transactionId);
      for (let i = 0; i < 3; i++)
        expect(await store.deliver(webhook('apple'), 'REFUND', one.transactionId)).toBe(200);
      const late = await claim(tenant, buyer, 'apple', {
        signedTransaction: store.signedTransaction(one.transactionId),
      });
      expect(late.json()).toMatchObject({ duplicate: true, payment: { refundedAmount: '499' } });
      expect(await balance(tenant, buyer.userId)).toBe(500n);

      // The second: the app first, then the notification.
      const revoked = await claim(tenant, buyer, 'apple', {
        signedTransaction: store.refund(two.transactionId),
      });
      expect(revoked.json()).toMatchObject({ duplicate: false, outcome: 'refunded' });
      const told = await fetch(webhook('apple'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: store.notification('REFUND', two.transactionId),
      });
      expect(await told.json()).toMatchObject({ duplicate: true });
      expect(await balance(tenant, buyer.userId)).toBe(0n);
      // Each purchase: its purchase and its revocation, once.
      expect(await stored(tenant)).toEqual({ payments: 2, events: 4 });
    });

    it('gives back the credits of a refund Apple reverses (REFUND_REVERSED) once, in either order, and reverses a new refund after it', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const post = async (body: string) => {
        const response = await fetch(webhook('apple'), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        return { status: response.status, json: (await response.json()) as Record<string, unknown> };
      };
      const one = store.purchase('com.example.socle.coins500');
      expect(
        (await claim(tenant, buyer, 'apple', { signedTransaction: one.signedTransaction })).json().outcome,
      ).toBe('paid');
      store.refund(one.transactionId);
      expect(await store.deliver(webhook('apple'), 'REFUND', one.transactionId)).toBe(200);
      expect(await balance(tenant, buyer.userId)).toBe(0n);

      // Apple reverses the refund: the credits come back, once, whatever is redelivered.
      store.reverseRefund(one.transactionId);
      const reversal = store.notification('REFUND_REVERSED', one.transactionId);
      expect(await post(reversal)).toMatchObject({ status: 200, json: { outcome: 'refund_reversed' } });
      expect(await post(reversal)).toMatchObject({ status: 200, json: { duplicate: true } });
      const again = store.notification('REFUND_REVERSED', one.transactionId);
      expect(await post(again)).toMatchObject({ status: 200, json: { outcome: 'ignored' } });
      expect(await balance(tenant, buyer.userId)).toBe(500n);
      // A new refund of it later is a new revocation: reversed again.
      store.refund(one.transactionId);
      expect(await store.deliver(webhook('apple'), 'REFUND', one.transactionId)).toBe(200);
      expect(await balance(tenant, buyer.userId)).toBe(0n);

      // Out of order: the reversal arrives before the refund it reverses, which then changes nothing.
      const two = store.purchase('com.example.socle.coins500');
      expect(
        (await claim(tenant, buyer, 'apple', { signedTransaction: two.signedTransaction })).json().outcome,
      ).toBe('paid');
      store.refund(two.transactionId);
      const refund = store.notification('REFUND', two.transactionId);
      store.reverseRefund(two.transactionId);
      const early = store.notification('REFUND_REVERSED', two.transactionId);
      expect(await post(early)).toMatchObject({ status: 200, json: { outcome: 'ignored' } });
      expect(await post(refund)).toMatchObject({ status: 200, json: { outcome: 'stale' } });
      expect(await balance(tenant, buyer.userId)).toBe(500n);
      // A reversal naming a transaction still revoked is refused.
      store.refund(two.transactionId);
      expect((await post(store.notification('REFUND_REVERSED', two.transactionId))).status).toBe(400);
    });

    it('does not credit a transaction revoked before it was ever posted, nor one of another account', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const gone = store.purchase('com.example.socle.coins500');
      const refused = await claim(tenant, buyer, 'apple', {
        signedTransaction: store.refund(gone.transactionId),
      });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().code).toBe('payments.purchase_revoked');

      const other = await socle.newMember(tenant);
      const bound = store.purchase('com.example.socle.coins500', { appAccountToken: other.userId });
      const stolen = await claim(tenant, buyer, 'apple', { signedTransaction: bound.signedTransaction });
      expect(stolen.statusCode).toBe(409);
      expect(stolen.json().code).toBe('payments.purchase_not_yours');

      // First come owns an unbound purchase: another person (or organization) replaying it gets 409.
      const open = store.purchase('com.example.socle.coins500');
      expect(
        (await claim(tenant, buyer, 'apple', { signedTransaction: open.signedTransaction })).statusCode,
      ).toBe(200);
      const replayed = await claim(tenant, other, 'apple', { signedTransaction: open.signedTransaction });
      expect(replayed.statusCode).toBe(409);
      const elsewhere = await socle.newTenant({ owner: other });
      expect(
        (await claim(elsewhere, other, 'apple', { signedTransaction: open.signedTransaction })).statusCode,
      ).toBe(409);
      expect(await balance(tenant, other.userId)).toBe(0n);
      expect(await balance(tenant, buyer.userId)).toBe(500n);
      expect(await stored(tenant)).toEqual({ payments: 1, events: 1 });
      expect(await stored(elsewhere)).toEqual({ payments: 0, events: 0 });
    });

    it('answers 400 to a notification that does not verify or names no purchase of this server, storing nothing', async () => {
      const tenant = await socle.newTenant();
      const { transactionId } = store.purchase('com.example.socle.coins500');
      store.refund(transactionId);
      // A purchase never posted here: nothing to reverse (Apple retries later).
      expect(await store.deliver(webhook('apple'), 'REFUND', transactionId)).toBe(400);
      const stranger = createFakeAppStore({ bundleId: store.bundleId, environment: 'Sandbox' });
      const theirs = stranger.purchase('com.example.socle.coins500');
      stranger.refund(theirs.transactionId);
      const forged = await fetch(webhook('apple'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: stranger.notification('REFUND', theirs.transactionId),
      });
      expect(forged.status).toBe(400);
      expect(((await forged.json()) as { code: string }).code).toBe('payments.invalid_signature');
      for (const body of ['{}', 'not json', JSON.stringify({ signedPayload: 'a.b.c' })]) {
        const response = await fetch(webhook('apple'), { method: 'POST', body });
        expect(response.status).toBe(400);
      }
      expect(await stored(tenant)).toEqual({ payments: 0, events: 0 });
    });
  });

  describe('Google Play (Android Publisher API, Real-time developer notifications)', () => {
    it('credits a purchase token read back from the API once, acknowledges it, and reuses one access token', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const token = play.purchase('coins_500', { accountId: buyer.userId });
      const posts = await Promise.all(
        Array.from({ length: 8 }, () =>
          claim(tenant, buyer, 'google-play', { productId: 'coins_500', purchaseToken: token }),
        ),
      );
      expect(posts.map((reply) => reply.statusCode)).toEqual(Array(8).fill(200));
      expect(posts.filter((reply) => reply.json().duplicate === false)).toHaveLength(1);
      expect(posts[0]?.json().payment).toMatchObject({ provider: 'google-play', status: 'succeeded' });
      expect(await balance(tenant, buyer.userId)).toBe(500n);
      expect(play.purchases.get(token)?.acknowledgementState).toBe(1);
      expect(play.tokensIssued).toBe(1);
      // The API was asked with the service account's bearer token.
      const asked = play.api.requests.find((request) => request.url.includes('/tokens/'));
      expect(asked?.headers.authorization).toMatch(/^Bearer ya29\./);
      expect(await stored(tenant)).toEqual({ payments: 1, events: 1 });
    });

    it('refuses a token Google Play does not know with 400, storing nothing', async () => {
      const tenant = await socle.newTenant();
      const forged = await claim(tenant, tenant.owner, 'google-play', {
        productId: 'coins_500',
        purchaseToken: 'forged-token-0123456789',
      });
      expect(forged.statusCode).toBe(400);
      expect(forged.json().code).toBe('payments.invalid_signature');
      const other = play.purchase('coins_500');
      const wrongProduct = await claim(tenant, tenant.owner, 'google-play', {
        productId: 'coins_999',
        purchaseToken: other,
      });
      expect(wrongProduct.statusCode).toBe(400);
      expect(await stored(tenant)).toEqual({ payments: 0, events: 0 });
    });

    it('credits a pending purchase when it completes, and reverses a voided one once (notifications, replays)', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const token = play.purchase('coins_500', { pending: true });
      const pending = await claim(tenant, buyer, 'google-play', {
        productId: 'coins_500',
        purchaseToken: token,
      });
      expect(pending.json()).toMatchObject({ outcome: 'noted', payment: { status: 'pending' } });
      expect(await balance(tenant, buyer.userId)).toBe(0n);

      play.complete(token);
      const url = webhook('google-play', `?secret=${PLAY_SECRET}`);
      expect(await play.notify(url, token, 'purchased')).toBe(200);
      expect(await play.notify(url, token, 'purchased')).toBe(200);
      expect(await balance(tenant, buyer.userId)).toBe(500n);
      expect(play.purchases.get(token)?.acknowledgementState).toBe(1);

      play.voidPurchase(token);
      expect(
        await play.notify(webhook('google-play', '?secret=wrong-secret-0123456789'), token, 'voided'),
      ).toBe(400);
      expect(await play.notify(url, token, 'voided')).toBe(200);
      expect(await play.notify(url, token, 'voided')).toBe(200);
      const reposted = await claim(tenant, buyer, 'google-play', {
        productId: 'coins_500',
        purchaseToken: token,
      });
      expect(reposted.json()).toMatchObject({ duplicate: true, payment: { refundedAmount: '499' } });
      expect(await balance(tenant, buyer.userId)).toBe(0n);
      // noted, purchased, revoked.
      expect(await stored(tenant)).toEqual({ payments: 1, events: 3 });

      // A voided purchase never credited here is refused.
      const gone = play.purchase('coins_500');
      play.voidPurchase(gone);
      const refused = await claim(tenant, buyer, 'google-play', {
        productId: 'coins_500',
        purchaseToken: gone,
      });
      expect(refused.statusCode).toBe(409);
      expect(await stored(tenant)).toEqual({ payments: 1, events: 3 });
    });
  });
});
