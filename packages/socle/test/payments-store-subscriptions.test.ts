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
import { gemsMonthly, proMonthly } from './fixtures/payments-module.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';
import { useStorePaymentsServer } from './support/store-payments-server.js';

/** The audience of the RTDN push subscription's OIDC tokens (the endpoint as Google calls it). */
const PUSH_AUDIENCE = 'https://api.example.com/payments/webhooks/google-play';

/**
 * The tests' monthly subscriptions, sold in both stores: 1,000 credits each paid period, and 100
 * gems held in the buyer's own account outside organizations (the ledger's platform book).
 */
const catalog = defineCatalog([proMonthly, gemsMonthly]);

describeEachDatabase('App store subscriptions', (target) => {
  const server = useStorePaymentsServer(target, catalog, (fake) => ({
    // Pub/Sub push authentication (OIDC) only: no URL secret.
    googlePlayPushServiceAccount: fake.pushServiceAccount,
    googlePlayPushAudience: PUSH_AUDIENCE,
    googlePlayPushCertsUrl: fake.certsUrl,
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
  const credits = (tenant: TestTenant, userId: string) => server.balance(tenant, userId, 'credits');
  /** The person's subscription as the app reads it (`GET /payments/subscriptions`). */
  const subscription = async (tenant: TestTenant, user: TestUser) => {
    const reply = await callAs(socle, user, 'GET', '/payments/subscriptions', { orgId: tenant.id });
    expect(reply.statusCode).toBe(200);
    const list = reply.json().subscriptions as {
      status: string;
      currentPeriodEnd: string | null;
      cancelAtPeriodEnd: boolean;
      providerSubscriptionId: string;
      productId: string;
    }[];
    expect(list.length).toBeLessThanOrEqual(1);
    return list[0];
  };
  const stored = async (tenant: TestTenant) => {
    const { rows } = await socle.db.withConnection(
      (connection) =>
        connection.query<{ payments: string; events: string; subscriptions: string }>(
          `select (select count(*) from payments.payments where tenant_id = $1)::text as payments,
                  (select count(*) from payments.events where tenant_id = $1)::text as events,
                  (select count(*) from payments.subscriptions where tenant_id = $1)::text as subscriptions`,
          [tenant.id],
        ),
      'owner',
    );
    return {
      payments: Number(rows[0]?.payments),
      events: Number(rows[0]?.events),
      subscriptions: Number(rows[0]?.subscriptions),
    };
  };
  const webhook = (provider: string, query = '') => `${baseUrl}/payments/webhooks/${provider}${query}`;
  const post = async (url: string, body: string, headers: Record<string, string> = {}) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };

  describe('Apple auto-renewable subscriptions (Server Notifications V2)', () => {
    const product = 'com.example.socle.pro.monthly';
    const apple = () => webhook('apple');
    const endOf = (transactionId: string) =>
      new Date(store.transactions.get(transactionId)?.expiresDate ?? 0).toISOString();

    it('follows purchase → renew ×2 → grace → recovery → expiry: one grant per period, whatever is replayed or reordered', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const { originalTransactionId, signedTransaction } = store.subscribe(product, {
        appAccountToken: buyer.userId,
      });
      // Told before the app posts its purchase: no payment here yet, Apple retries later.
      const early = store.subscriptionNotification('SUBSCRIBED', originalTransactionId, 'INITIAL_BUY');
      expect((await post(apple(), early)).status).toBe(400);
      expect(await stored(tenant)).toEqual({ payments: 0, events: 0, subscriptions: 0 });

      const claimed = await claim(tenant, buyer, 'apple', { signedTransaction });
      expect(claimed.statusCode).toBe(200);
      expect(claimed.json()).toMatchObject({
        duplicate: false,
        payment: {
          kind: 'subscription',
          providerReference: `original:${originalTransactionId}`,
          status: 'succeeded',
        },
      });
      expect(await credits(tenant, buyer.userId)).toBe(1000n);
      expect(await subscription(tenant, buyer)).toMatchObject({
        providerSubscriptionId: originalTransactionId,
        productId: 'pro-monthly',
        status: 'active',
        currentPeriodEnd: endOf(originalTransactionId),
        cancelAtPeriodEnd: false,
      });
      // Apple's retry of the first notification, and the app posting again: nothing more.
      expect((await post(apple(), early)).json).toMatchObject({ duplicate: false });
      expect((await claim(tenant, buyer, 'apple', { signedTransaction })).json().duplicate).toBe(true);
      expect(await credits(tenant, buyer.userId)).toBe(1000n);

      const told: string[] = [early];
      const deliver = async (body: string) => {
        told.push(body);
        expect((await post(apple(), body)).status).toBe(200);
      };
      const second = store.renew(originalTransactionId);
      await deliver(store.subscriptionNotification('DID_RENEW', originalTransactionId));
      const third = store.renew(originalTransactionId);
      await deliver(store.subscriptionNotification('DID_RENEW', originalTransactionId));
      expect(await credits(tenant, buyer.userId)).toBe(3000n);
      expect((await subscription(tenant, buyer))?.currentPeriodEnd).toBe(endOf(third.transactionId));

      store.failRenewal(originalTransactionId, { gracePeriod: true });
      await deliver(
        store.subscriptionNotification('DID_FAIL_TO_RENEW', originalTransactionId, 'GRACE_PERIOD'),
      );
      const grace = await subscription(tenant, buyer);
      expect(grace?.status).toBe('past_due');
      // Access runs to the end of the grace period.
      const graceEnd = store.subscriptions.get(originalTransactionId)?.gracePeriodExpiresDate ?? 0;
      expect(grace?.currentPeriodEnd).toBe(new Date(graceEnd).toISOString());
      expect(await credits(tenant, buyer.userId)).toBe(3000n);

      const recovered = store.renew(originalTransactionId);
      await deliver(store.subscriptionNotification('DID_RENEW', originalTransactionId, 'BILLING_RECOVERY'));
      expect(await subscription(tenant, buyer)).toMatchObject({
        status: 'active',
        currentPeriodEnd: endOf(recovered.transactionId),
      });
      expect(await credits(tenant, buyer.userId)).toBe(4000n);

      store.setAutoRenew(originalTransactionId, false);
      await deliver(
        store.subscriptionNotification(
          'DID_CHANGE_RENEWAL_STATUS',
          originalTransactionId,
          'AUTO_RENEW_DISABLED',
        ),
      );
      expect(await subscription(tenant, buyer)).toMatchObject({ status: 'active', cancelAtPeriodEnd: true });

      store.expire(originalTransactionId);
      await deliver(store.subscriptionNotification('EXPIRED', originalTransactionId, 'VOLUNTARY'));
      expect((await subscription(tenant, buyer))?.status).toBe('canceled');

      // Every notification again, newest first: each is a duplicate or older than the state.
      for (const body of told.reverse()) expect((await post(apple(), body)).status).toBe(200);
      // The app posting an old period's transaction again.
      await claim(tenant, buyer, 'apple', { signedTransaction: second.signedTransaction });
      expect(await credits(tenant, buyer.userId)).toBe(4000n);
      expect((await subscription(tenant, buyer))?.status).toBe('canceled');
      const { payments, subscriptions } = await stored(tenant);
      // The subscription's payment and one per paid period.
      expect({ payments, subscriptions }).toEqual({ payments: 5, subscriptions: 1 });
    });

    it('grants each period once when renewals arrive in reverse order, keeping the newest state', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const { originalTransactionId, signedTransaction } = store.subscribe(product);
      expect((await claim(tenant, buyer, 'apple', { signedTransaction })).statusCode).toBe(200);
      store.renew(originalTransactionId);
      const renewedOnce = store.subscriptionNotification('DID_RENEW', originalTransactionId);
      const last = store.renew(originalTransactionId);
      const renewedTwice = store.subscriptionNotification('DID_RENEW', originalTransactionId);
      const results = await Promise.all([post(apple(), renewedTwice), post(apple(), renewedTwice)]);
      expect(results.map((result) => result.status)).toEqual([200, 200]);
      expect((await post(apple(), renewedOnce)).status).toBe(200);
      // The second period's grant came with the third's notification? No: each notification
      // carries its own period's transaction; both grants are given, once.
      expect(await credits(tenant, buyer.userId)).toBe(3000n);
      expect(await subscription(tenant, buyer)).toMatchObject({
        status: 'active',
        currentPeriodEnd: endOf(last.transactionId),
      });
    });

    it('takes back a refunded period once, and a refund of the current period ends the subscription', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const { originalTransactionId, signedTransaction } = store.subscribe(product);
      await claim(tenant, buyer, 'apple', { signedTransaction });
      const second = store.renew(originalTransactionId);
      await post(apple(), store.subscriptionNotification('DID_RENEW', originalTransactionId));
      const third = store.renew(originalTransactionId);
      await post(apple(), store.subscriptionNotification('DID_RENEW', originalTransactionId));
      expect(await credits(tenant, buyer.userId)).toBe(3000n);

      // A past period refunded, told three times: its grant reversed once, the subscription still on.
      store.refund(second.transactionId);
      const refund = store.notification('REFUND', second.transactionId);
      for (let i = 0; i < 3; i++) expect((await post(apple(), refund)).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(2000n);
      expect((await subscription(tenant, buyer))?.status).toBe('active');

      // The current period refunded (the app tells it first): reversed once, the subscription revoked.
      const revoked = await claim(tenant, buyer, 'apple', {
        signedTransaction: store.refund(third.transactionId),
      });
      expect(revoked.statusCode).toBe(200);
      expect((await post(apple(), store.notification('REFUND', third.transactionId))).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(1000n);
      expect((await subscription(tenant, buyer))?.status).toBe('canceled');
    });

    it("grants a platform-book subscription's periods in the buyer's own account, and a refund takes one back there", async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const gems = () => server.platformBalance(buyer.userId, 'gems');
      const { originalTransactionId, signedTransaction } = store.subscribe('com.example.socle.gems.monthly', {
        appAccountToken: buyer.userId,
      });
      expect((await claim(tenant, buyer, 'apple', { signedTransaction })).statusCode).toBe(200);
      const second = store.renew(originalTransactionId);
      const renewed = store.subscriptionNotification('DID_RENEW', originalTransactionId);
      for (let i = 0; i < 2; i++) expect((await post(apple(), renewed)).status).toBe(200);
      expect(await gems()).toBe(200n);
      store.refund(second.transactionId);
      const refund = store.notification('REFUND', second.transactionId);
      for (let i = 0; i < 2; i++) expect((await post(apple(), refund)).status).toBe(200);
      expect(await gems()).toBe(100n);
      // The organization that sold holds no gems.
      expect(await server.balance(tenant, buyer.userId, 'gems')).toBe(0n);
    });

    it('resubscribes after expiry under the same original transaction: active again, the new period granted once, whatever the replay order', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const { originalTransactionId, signedTransaction } = store.subscribe(product);
      expect((await claim(tenant, buyer, 'apple', { signedTransaction })).statusCode).toBe(200);
      const told: string[] = [];
      const deliver = async (body: string) => {
        told.push(body);
        expect((await post(apple(), body)).status).toBe(200);
      };
      store.expire(originalTransactionId);
      await deliver(store.subscriptionNotification('EXPIRED', originalTransactionId, 'VOLUNTARY'));
      expect((await subscription(tenant, buyer))?.status).toBe('canceled');

      const again = store.resubscribe(originalTransactionId);
      await deliver(store.subscriptionNotification('SUBSCRIBED', originalTransactionId, 'RESUBSCRIBE'));
      expect(await subscription(tenant, buyer)).toMatchObject({
        status: 'active',
        currentPeriodEnd: endOf(again.transactionId),
        cancelAtPeriodEnd: false,
      });
      expect(await credits(tenant, buyer.userId)).toBe(2000n);
      const renewed = store.renew(originalTransactionId);
      await deliver(store.subscriptionNotification('DID_RENEW', originalTransactionId));
      expect(await credits(tenant, buyer.userId)).toBe(3000n);

      // Every notification again, newest first, and the app posting the resubscription.
      for (const body of [...told].reverse()) expect((await post(apple(), body)).status).toBe(200);
      expect(
        (await claim(tenant, buyer, 'apple', { signedTransaction: again.signedTransaction })).statusCode,
      ).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(3000n);
      expect(await subscription(tenant, buyer)).toMatchObject({
        status: 'active',
        currentPeriodEnd: endOf(renewed.transactionId),
      });

      // Told in the reverse order the first time (the resubscription before the expiry): the
      // expiry, older, changes nothing.
      const other = await socle.newTenant();
      const started = store.subscribe(product);
      await claim(other, other.owner, 'apple', { signedTransaction: started.signedTransaction });
      store.expire(started.originalTransactionId);
      const expired = store.subscriptionNotification('EXPIRED', started.originalTransactionId, 'VOLUNTARY');
      store.resubscribe(started.originalTransactionId);
      const back = store.subscriptionNotification('SUBSCRIBED', started.originalTransactionId, 'RESUBSCRIBE');
      for (const body of [back, expired, back, expired]) expect((await post(apple(), body)).status).toBe(200);
      expect((await subscription(other, other.owner))?.status).toBe('active');
      expect(await credits(other, other.owner.userId)).toBe(2000n);
    });

    it("gives a refunded period's grant back once when Apple reverses the refund (REFUND_REVERSED), whatever the order", async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const { originalTransactionId, signedTransaction } = store.subscribe(product);
      await claim(tenant, buyer, 'apple', { signedTransaction });
      const second = store.renew(originalTransactionId);
      await post(apple(), store.subscriptionNotification('DID_RENEW', originalTransactionId));
      const third = store.renew(originalTransactionId);
      await post(apple(), store.subscriptionNotification('DID_RENEW', originalTransactionId));
      expect(await credits(tenant, buyer.userId)).toBe(3000n);

      // A past period refunded, then the refund reversed, each told twice.
      store.refund(second.transactionId);
      const refund = store.notification('REFUND', second.transactionId);
      for (let i = 0; i < 2; i++) expect((await post(apple(), refund)).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(2000n);
      store.reverseRefund(second.transactionId);
      const reversed = store.notification('REFUND_REVERSED', second.transactionId);
      for (let i = 0; i < 2; i++) expect((await post(apple(), reversed)).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(3000n);
      expect((await subscription(tenant, buyer))?.status).toBe('active');

      // The current period refunded (the subscription revoked), then reversed: active again.
      store.refund(third.transactionId);
      const current = store.notification('REFUND', third.transactionId);
      expect((await post(apple(), current)).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(2000n);
      expect((await subscription(tenant, buyer))?.status).toBe('canceled');
      store.reverseRefund(third.transactionId);
      const back = store.subscriptionNotification('REFUND_REVERSED', originalTransactionId);
      expect((await post(apple(), back)).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(3000n);
      expect(await subscription(tenant, buyer)).toMatchObject({
        status: 'active',
        currentPeriodEnd: endOf(third.transactionId),
      });

      // Everything again, newest first: nothing more.
      for (const body of [back, current, reversed, refund])
        expect((await post(apple(), body)).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(3000n);
      expect((await subscription(tenant, buyer))?.status).toBe('active');

      // Another period whose reversal arrives before its refund: the refund, older, is stale.
      const fourth = store.renew(originalTransactionId);
      await post(apple(), store.subscriptionNotification('DID_RENEW', originalTransactionId));
      expect(await credits(tenant, buyer.userId)).toBe(4000n);
      store.refund(fourth.transactionId);
      const late = store.notification('REFUND', fourth.transactionId);
      store.reverseRefund(fourth.transactionId);
      const early = store.subscriptionNotification('REFUND_REVERSED', originalTransactionId);
      for (const body of [early, late, early, late]) expect((await post(apple(), body)).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(4000n);
      expect((await subscription(tenant, buyer))?.status).toBe('active');
    });

    it('refuses a tampered notification, renewal info or transaction with 400 and stores nothing', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const { originalTransactionId, signedTransaction } = store.subscribe(product);
      await claim(tenant, buyer, 'apple', { signedTransaction });
      const before = await stored(tenant);
      store.renew(originalTransactionId);
      const genuine = JSON.parse(store.subscriptionNotification('DID_RENEW', originalTransactionId)) as {
        signedPayload: string;
      };
      const [head, body, signature] = genuine.signedPayload.split('.');
      const payload = JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8'));
      const stranger = createFakeAppStore({ bundleId: store.bundleId, environment: 'Sandbox' });
      const attempts = [
        // The notification's body changed under its signature (expired → active).
        `${head}.${Buffer.from(JSON.stringify({ ...payload, data: { ...payload.data, status: 1 }, notificationUUID: 'x' })).toString('base64url')}.${signature}`,
        // Well signed, but carrying renewal info or a transaction signed by another chain.
        store.sign({
          ...payload,
          notificationUUID: crypto.randomUUID(),
          data: { ...payload.data, signedRenewalInfo: stranger.sign({ autoRenewStatus: 1 }) },
        }),
        store.sign({
          ...payload,
          notificationUUID: crypto.randomUUID(),
          data: {
            ...payload.data,
            signedTransactionInfo: stranger.sign(
              JSON.parse(
                Buffer.from(payload.data.signedTransactionInfo.split('.')[1], 'base64url').toString(),
              ),
            ),
          },
        }),
      ];
      for (const attempt of attempts) {
        const refused = await post(apple(), JSON.stringify({ signedPayload: attempt }));
        expect(refused.status).toBe(400);
        expect(refused.json.code).toBe('payments.invalid_signature');
      }
      expect(await stored(tenant)).toEqual(before);
      expect(await credits(tenant, buyer.userId)).toBe(1000n);
    });
  });
  describe('Google Play subscriptions (subscriptionsv2, RTDN over authenticated Pub/Sub push)', () => {
    const product = 'pro_monthly';
    const push = async (body: string, token?: string) =>
      post(webhook('google-play'), body, {
        authorization: `Bearer ${token ?? (await play.pushToken({ audience: PUSH_AUDIENCE }))}`,
      });
    const endOf = (token: string) => play.subscriptions.get(token)?.expiryTime;

    it('follows purchase → renew ×2 → grace → recovery → expiry: one grant per order, whatever is replayed or reordered', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const token = play.subscribe(product, { accountId: buyer.userId });
      const claimed = await claim(tenant, buyer, 'google-play', { productId: product, purchaseToken: token });
      expect(claimed.statusCode).toBe(200);
      expect(claimed.json()).toMatchObject({
        duplicate: false,
        payment: { kind: 'subscription', providerReference: token, status: 'succeeded' },
      });
      expect(await credits(tenant, buyer.userId)).toBe(1000n);
      expect(play.subscriptions.get(token)?.acknowledgementState).toBe('ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED');
      expect(await subscription(tenant, buyer)).toMatchObject({
        providerSubscriptionId: token,
        productId: 'pro-monthly',
        status: 'active',
        currentPeriodEnd: endOf(token),
        cancelAtPeriodEnd: false,
      });

      const told: string[] = [];
      const deliver = async (type: Parameters<FakeGooglePlay['subscriptionPush']>[1]) => {
        const body = play.subscriptionPush(token, type);
        told.push(body);
        // Pub/Sub delivers at least once: each message twice.
        for (let i = 0; i < 2; i++) expect((await push(body)).status).toBe(200);
      };
      await deliver('SUBSCRIPTION_PURCHASED');
      expect(await credits(tenant, buyer.userId)).toBe(1000n);
      play.renew(token);
      await deliver('SUBSCRIPTION_RENEWED');
      play.renew(token);
      await deliver('SUBSCRIPTION_RENEWED');
      expect(await credits(tenant, buyer.userId)).toBe(3000n);
      expect((await subscription(tenant, buyer))?.currentPeriodEnd).toBe(endOf(token));

      play.setState(token, 'SUBSCRIPTION_STATE_IN_GRACE_PERIOD');
      await deliver('SUBSCRIPTION_IN_GRACE_PERIOD');
      expect((await subscription(tenant, buyer))?.status).toBe('past_due');
      play.setState(token, 'SUBSCRIPTION_STATE_ON_HOLD');
      await deliver('SUBSCRIPTION_ON_HOLD');
      expect((await subscription(tenant, buyer))?.status).toBe('past_due');
      expect(await credits(tenant, buyer.userId)).toBe(3000n);

      play.renew(token);
      await deliver('SUBSCRIPTION_RECOVERED');
      expect(await subscription(tenant, buyer)).toMatchObject({
        status: 'active',
        currentPeriodEnd: endOf(token),
      });
      expect(await credits(tenant, buyer.userId)).toBe(4000n);

      play.cancel(token);
      await deliver('SUBSCRIPTION_CANCELED');
      expect(await subscription(tenant, buyer)).toMatchObject({ status: 'active', cancelAtPeriodEnd: true });
      play.setState(token, 'SUBSCRIPTION_STATE_EXPIRED');
      await deliver('SUBSCRIPTION_EXPIRED');
      expect((await subscription(tenant, buyer))?.status).toBe('canceled');

      // Every message again, newest first.
      for (const body of told.reverse()) expect((await push(body)).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(4000n);
      expect((await subscription(tenant, buyer))?.status).toBe('canceled');
      const { payments, subscriptions } = await stored(tenant);
      expect({ payments, subscriptions }).toEqual({ payments: 5, subscriptions: 1 });
    });

    it('takes back a revoked order once (REVOKED and the voided order, replayed), ending the subscription', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const token = play.subscribe(product);
      await claim(tenant, buyer, 'google-play', { productId: product, purchaseToken: token });
      play.renew(token);
      expect((await push(play.subscriptionPush(token, 'SUBSCRIPTION_RENEWED'))).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(2000n);

      const orderId = play.revoke(token);
      const voided = play.voidedOrderPush(token, orderId);
      // The voided order first, then REVOKED, each twice.
      expect((await push(voided)).status).toBe(200);
      const revoked = play.subscriptionPush(token, 'SUBSCRIPTION_REVOKED');
      for (const body of [revoked, revoked, voided]) expect((await push(body)).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(1000n);
      expect((await subscription(tenant, buyer))?.status).toBe('canceled');
    });

    it('hands an upgraded or downgraded subscription over to its new purchase token (linkedPurchaseToken): the old one ends, no period granted twice', async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      /** The person's subscriptions by purchase token. */
      const subscriptions = async () => {
        const reply = await callAs(socle, buyer, 'GET', '/payments/subscriptions', { orgId: tenant.id });
        const list = reply.json().subscriptions as {
          providerSubscriptionId: string;
          status: string;
          currentPeriodEnd: string | null;
        }[];
        return new Map(list.map((entry) => [entry.providerSubscriptionId, entry]));
      };
      const told: string[] = [];
      const deliver = async (token: string, type: Parameters<FakeGooglePlay['subscriptionPush']>[1]) => {
        const body = play.subscriptionPush(token, type);
        told.push(body);
        for (let i = 0; i < 2; i++) expect((await push(body)).status).toBe(200);
      };
      const first = play.subscribe(product, { accountId: buyer.userId });
      await claim(tenant, buyer, 'google-play', { productId: product, purchaseToken: first });
      play.renew(first);
      await deliver(first, 'SUBSCRIPTION_RENEWED');
      expect(await credits(tenant, buyer.userId)).toBe(2000n);

      // Replaced without a charge now (time proration): the new token carries on the paid period.
      const second = play.replace(first, product);
      const claimed = await claim(tenant, buyer, 'google-play', {
        productId: product,
        purchaseToken: second,
      });
      expect(claimed.statusCode).toBe(200);
      expect(claimed.json().payment).toMatchObject({ providerReference: second, status: 'succeeded' });
      expect(await credits(tenant, buyer.userId)).toBe(2000n);
      let listed = await subscriptions();
      expect(listed.get(first)?.status).toBe('canceled');
      expect(listed.get(second)).toMatchObject({ status: 'active', currentPeriodEnd: endOf(second) });
      // The old token's last news, and the new one's purchase: nothing granted, the old one stays ended.
      await deliver(first, 'SUBSCRIPTION_EXPIRED');
      await deliver(second, 'SUBSCRIPTION_PURCHASED');
      expect(await credits(tenant, buyer.userId)).toBe(2000n);
      expect((await subscriptions()).get(first)?.status).toBe('canceled');
      play.renew(second);
      await deliver(second, 'SUBSCRIPTION_RENEWED');
      expect(await credits(tenant, buyer.userId)).toBe(3000n);

      // Replaced with a charge (full price now): its own order is granted, once.
      const third = play.replace(second, product, { charge: true });
      await claim(tenant, buyer, 'google-play', { productId: product, purchaseToken: third });
      await deliver(third, 'SUBSCRIPTION_PURCHASED');
      expect(await credits(tenant, buyer.userId)).toBe(4000n);
      listed = await subscriptions();
      expect([first, second, third].map((token) => listed.get(token)?.status)).toEqual([
        'canceled',
        'canceled',
        'active',
      ]);

      // Every push again, newest first, and the app posting every token again: nothing more.
      for (const body of told.reverse()) expect((await push(body)).status).toBe(200);
      for (const token of [third, second, first])
        await claim(tenant, buyer, 'google-play', { productId: product, purchaseToken: token });
      expect(await credits(tenant, buyer.userId)).toBe(4000n);
      listed = await subscriptions();
      expect([first, second, third].map((token) => listed.get(token)?.status)).toEqual([
        'canceled',
        'canceled',
        'active',
      ]);

      // Another account cannot claim the replacement of this buyer's subscription.
      const stranger = await socle.newTenant();
      const fourth = play.replace(third, product, { charge: true });
      // (Bought without the app's account id: only the replaced purchase says whose it is.)
      delete (play.subscriptions.get(fourth) as { obfuscatedExternalAccountId?: string })
        .obfuscatedExternalAccountId;
      const refused = await claim(stranger, stranger.owner, 'google-play', {
        productId: product,
        purchaseToken: fourth,
      });
      expect(refused.statusCode).toBe(409);
      expect(refused.json().code).toBe('payments.purchase_not_yours');
      expect((await subscriptions()).get(third)?.status).toBe('active');
    });

    it("answers 401 to a push without Google's OIDC token for our endpoint and service account, storing nothing", async () => {
      const tenant = await socle.newTenant();
      const buyer = tenant.owner;
      const token = play.subscribe(product);
      await claim(tenant, buyer, 'google-play', { productId: product, purchaseToken: token });
      const before = await stored(tenant);
      play.renew(token);
      const body = play.subscriptionPush(token, 'SUBSCRIPTION_RENEWED');
      const forged = [
        await play.pushToken({ audience: 'https://elsewhere.example.com/push' }),
        await play.pushToken({ audience: PUSH_AUDIENCE, email: 'someone@evil.iam.gserviceaccount.com' }),
        await play.pushToken({ audience: PUSH_AUDIENCE, foreignKey: true }),
        'not-a-jwt',
      ];
      for (const bearer of forged) {
        const refused = await push(body, bearer);
        expect(refused.status).toBe(401);
        expect(refused.json.code).toBe('payments.unauthenticated_push');
      }
      const bare = await post(webhook('google-play'), body);
      expect(bare.status).toBe(401);
      expect(await stored(tenant)).toEqual(before);
      expect(await credits(tenant, buyer.userId)).toBe(1000n);
      // The same push, authenticated, is applied.
      expect((await push(body)).status).toBe(200);
      expect(await credits(tenant, buyer.userId)).toBe(2000n);
    });
  });
});
