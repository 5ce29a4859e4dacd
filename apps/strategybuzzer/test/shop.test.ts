import { type LedgerServices, tenantSettings } from 'socle';
import { type FakeStripe, type StripeEvent, startFakeStripe, testDatabaseTargets } from 'socle/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, type PusherJs, pusherFor, subscribed } from './pusher-clients.js';
import { type BuzzerWorld, caller, startBuzzerWorld } from './support.js';

const targets = await testDatabaseTargets();

describe.each(targets.map((target) => [target.dialect, target] as const))(
  'StrategyBuzzer coin shop through payments [%s]',
  (dialect, target) => {
    let world: BuzzerWorld;
    let stripe: FakeStripe;
    let baseUrl: string;
    const clients: PusherJs[] = [];

    beforeAll(async () => {
      if (!target.available) return;
      stripe = await startFakeStripe();
      world = await startBuzzerWorld(target, { stripe, settings: { starterCoins: 100 } });
      baseUrl = await world.socle.listen();
    });
    afterAll(async () => {
      for (const client of clients) client.disconnect();
      await world?.socle.dispose();
      await stripe?.close();
    });

    const call = (...args: Parameters<ReturnType<typeof caller>>) => caller(world.socle)(...args);
    const coinsOf = async (user: { token: string }) =>
      (await call(user, 'GET', '/strategybuzzer/me')).json().coins as number;
    const deliver = (event: StripeEvent) => stripe.deliver(`${baseUrl}/payments/webhooks/stripe`, event);
    /** A delivery's status, and its answer when it is not 200 (what went wrong). */
    const deliverAnswer = async (event: StripeEvent) => {
      const { body, headers } = stripe.sign(event);
      const response = await fetch(`${baseUrl}/payments/webhooks/stripe`, { method: 'POST', headers, body });
      const text = await response.text();
      return response.status === 200 ? 200 : `${response.status} ${text}`;
    };
    const urls = { successUrl: 'https://sb.test/paid', cancelUrl: 'https://sb.test/shop' };

    /** Checkout of a pack as `user`, paid at the fake Stripe: the completion event (not delivered yet). */
    async function buy(user: { token: string }, packId = 'coins-500') {
      const opened = await call(user, 'POST', '/strategybuzzer/shop/checkout', { packId, ...urls });
      expect(opened.statusCode).toBe(201);
      const { paymentId, checkoutUrl } = opened.json() as { paymentId: string; checkoutUrl: string };
      const sessionId = new URL(checkoutUrl).pathname.split('/').pop() as string;
      const [completed] = stripe.completeCheckout(sessionId) as [StripeEvent];
      return { paymentId, sessionId, completed };
    }

    /** Every transfer of the player's wallet, as the player reads them. */
    async function walletTransfers(userId: string) {
      const { ledger } = world.socle.servicesOf<LedgerServices>('ledger');
      const walletId = await world.services.coins.wallet(userId);
      const page = await world.socle.db.transaction((trx) => ledger.history(trx, walletId, { limit: 1000 }), {
        // The player's own request reads it: the coins are theirs, outside any organization.
        settings: tenantSettings({ userId }),
      });
      return { walletId, transfers: page.transfers };
    }

    /** The ledger recomputed from its transfers: every account's sums, every unit summing to zero. */
    async function reconciled() {
      const { ledger } = world.socle.servicesOf<LedgerServices>('ledger');
      const report = await ledger.check();
      return { ok: report.ok, drift: report.accounts.length + report.units.length };
    }

    it.skipIf(!target.available)(
      'lists the coin packs of the catalog, and refuses a pack it does not sell',
      async () => {
        const shop = await world.socle.app.inject({ method: 'GET', url: '/strategybuzzer/shop' });
        expect(shop.json().packs).toEqual([
          expect.objectContaining({ id: 'coins-500', coins: 500, price: 499, currency: 'EUR' }),
          expect.objectContaining({ id: 'coins-1200', coins: 1200, price: 999 }),
          expect.objectContaining({ id: 'coins-3000', coins: 3000, price: 1999 }),
        ]);
        const player = await world.socle.newUser();
        const unknown = await call(player, 'POST', '/strategybuzzer/shop/checkout', {
          packId: 'gold',
          ...urls,
        });
        expect(unknown.statusCode).toBe(404);
        expect(unknown.json()).toMatchObject({ code: 'strategybuzzer.pack_not_found' });
        const badUrl = await call(player, 'POST', '/strategybuzzer/shop/checkout', {
          packId: 'coins-500',
          successUrl: 'javascript:alert(1)',
          cancelUrl: urls.cancelUrl,
        });
        expect(badUrl.statusCode).toBe(400);
        expect(badUrl.headers['content-type']).toContain('application/problem+json');
      },
    );

    it.skipIf(!target.available)(
      "credits a paid pack once whatever the replays, sequential and concurrent, and pushes the balance to the player's channel",
      async () => {
        const player = await world.socle.newUser();
        const client = pusherFor(world, baseUrl, player);
        clients.push(client);
        const own = await subscribed(client, `private-sb-player-${player.userId}`);
        const pushed = collect<{ balance: number }>(own, 'coins');

        const { paymentId, completed } = await buy(player);
        expect(await coinsOf(player)).toBe(100); // opened with the starter coins, nothing paid yet
        expect(await deliver(completed)).toBe(200);
        await expect.poll(() => pushed.at(-1), { timeout: 20_000, interval: 50 }).toEqual({ balance: 600 });

        expect(await deliver(completed)).toBe(200);
        const replays = await Promise.all(Array.from({ length: 8 }, () => deliver(completed)));
        expect(replays.every((status) => status === 200)).toBe(true);
        expect(await coinsOf(player)).toBe(600);
        expect(pushed).toEqual([{ balance: 600 }]); // replays push nothing

        const purchases = await call(player, 'GET', '/strategybuzzer/shop/purchases');
        expect(purchases.json().purchases).toMatchObject([
          {
            id: paymentId,
            packId: 'coins-500',
            status: 'succeeded',
            coins: 500,
            price: 499,
            currency: 'EUR',
          },
        ]);
        // The coins are the game's: a premium entry spends purchased coins like starter ones.
        await world.services.coins.spend(player.userId, `test:spend:${player.userId}`, 550, 'hint');
        expect(await coinsOf(player)).toBe(50);
        expect(await reconciled()).toEqual({ ok: true, drift: 0 });
      },
    );

    it.skipIf(!target.available)(
      'takes a refund back from the wallet, at most what it still holds; coins are never created or lost',
      async () => {
        const player = await world.socle.newUser();
        const { paymentId, completed } = await buy(player);
        expect(await deliver(completed)).toBe(200);
        expect(await coinsOf(player)).toBe(600);
        await world.services.coins.spend(player.userId, `test:refund-spend:${player.userId}`, 450, 'hint');

        // The house's admin refunds the whole pack (Stripe's API); Stripe then sends charge.refunded.
        const refund = await call(
          world.admin,
          'POST',
          `/org/payments/payments/${paymentId}/refund`,
          {},
          { 'x-org-id': world.admin.orgId },
        );
        expect(refund.statusCode).toBe(202);
        const refunded = stripe.events.findLast((event) => event.type === 'charge.refunded') as StripeEvent;
        for (let n = 0; n < 3; n++) expect(await deliver(refunded)).toBe(200);

        // 150 were left: they go back; the 350 already spent stay spent.
        expect(await coinsOf(player)).toBe(0);
        const { walletId, transfers } = await walletTransfers(player.userId);
        const signed = transfers
          .filter((transfer) => transfer.kind === 'transfer')
          .map((transfer) => (transfer.creditAccountId === walletId ? 1n : -1n) * transfer.amount);
        expect(signed.reduce((sum, amount) => sum + amount, 0n)).toBe(0n);
        expect(
          transfers.filter((transfer) => transfer.code === 'payments.refund').map((t) => t.amount),
        ).toEqual([150n]);
        const purchases = await call(player, 'GET', '/strategybuzzer/shop/purchases');
        expect(purchases.json().purchases[0]).toMatchObject({ id: paymentId, refundedPrice: 499 });
        expect(await reconciled()).toEqual({ ok: true, drift: 0 });
      },
    );

    it.skipIf(!target.available || dialect !== 'postgres')(
      '[postgres: races] spends racing a replayed purchase and its replayed refund: the wallet never goes negative and every coin is accounted for',
      async () => {
        const player = await world.socle.newUser();
        expect(await coinsOf(player)).toBe(100);
        const { paymentId, completed } = await buy(player);
        // Refunded at Stripe's (the dashboard) before the purchase webhook arrives: both race with spends.
        const charge = stripe.chargeOf(completed.data.object.id);
        const refundAsked = await fetch(`${stripe.url}/v1/refunds`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${stripe.secretKey}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: `payment_intent=${String(charge.payment_intent)}`,
        });
        expect(refundAsked.status).toBe(200);
        const refunded = stripe.events.findLast((event) => event.type === 'charge.refunded') as StripeEvent;

        const spends = Array.from({ length: 30 }, (_, n) =>
          world.services.coins.spend(player.userId, `race:${player.userId}:${n}`, 25, 'hint'),
        );
        const webhooks = [
          ...Array.from({ length: 10 }, () => deliverAnswer(completed)),
          ...Array.from({ length: 10 }, () => deliverAnswer(refunded)),
        ];
        const [spent, statuses] = await Promise.all([Promise.allSettled(spends), Promise.all(webhooks)]);
        expect(statuses).toEqual(statuses.map(() => 200));
        for (const outcome of spent)
          if (outcome.status === 'rejected')
            expect(outcome.reason).toMatchObject({ code: 'ledger.insufficient_funds' });

        const paidSpends = spent.filter((outcome) => outcome.status === 'fulfilled').length;
        const { transfers } = await walletTransfers(player.userId);
        const credited = transfers.filter((t) => t.id === `payments:${paymentId}:credit`);
        const reversed = transfers
          .filter((t) => t.code === 'payments.refund')
          .reduce((sum, t) => sum + t.amount, 0n);
        const balance = await coinsOf(player);
        expect(credited).toHaveLength(1);
        expect(balance).toBeGreaterThanOrEqual(0);
        expect(reversed).toBeLessThanOrEqual(500n);
        // 100 starter + 500 bought = what is left + what was spent + what the refund took back.
        expect(BigInt(balance) + BigInt(paidSpends * 25) + reversed).toBe(600n);
        expect(await reconciled()).toEqual({ ok: true, drift: 0 });
      },
    );
  },
);
