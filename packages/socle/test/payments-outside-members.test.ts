import { expect, it } from 'vitest';
import { tenantSettings } from '../src/index.js';
import type { StripeEvent } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { usePaymentsServer } from './support/payments-server.js';

// An app that sells to people who are not members of the organization selling (a game's players,
// who never join the organization that runs the game) calls the service API acting as them.
describeEachDatabase('Payments to people outside the organization', (target) => {
  const server = usePaymentsServer(target);

  const checkoutAs = (orgId: string, userId: string) =>
    server.socle.scope.run({ tenantId: orgId, userId }, () =>
      server.payments.createCheckout({
        orgId,
        userId,
        productId: 'coins-500',
        successUrl: 'https://game.test/paid',
        cancelUrl: 'https://game.test/shop',
      }),
    );

  it('credits the paid checkout of a non-member: the wallet is opened at checkout, by the buyer, not by the webhook', async () => {
    const tenant = await server.socle.newTenant();
    const player = await server.socle.newUser();
    const payment = await checkoutAs(tenant.id, player.userId);
    const [completed] = server.stripe.completeCheckout(payment.providerReference) as [StripeEvent];
    expect(await server.stripe.deliver(server.webhookUrl, completed)).toBe(200);
    expect(await server.balance(tenant, player.userId, 'coins')).toBe(500n);
    // The wallet payments credits is the one an app asks for (its spends and grants go there).
    const walletId = await server.socle.db.transaction(
      (trx) => server.payments.wallet(trx, player.userId, 'coins'),
      { settings: tenantSettings({ tenantId: tenant.id, userId: player.userId }) },
    );
    const balance = await server.socle.scope.run({ tenantId: tenant.id }, () =>
      server.ledger.balance(walletId),
    );
    expect(balance.posted).toBe(500n);
  });

  it("serves a hosted checkout page whose Pay button pays once, delivers the events to the server and returns to the app's page", async () => {
    const tenant = await server.socle.newTenant();
    const player = await server.socle.newUser();
    const payment = await checkoutAs(tenant.id, player.userId);
    const pageUrl = payment.checkoutUrl as string;
    const page = await fetch(pageUrl);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('500 coins');
    expect(html).toContain('4.99 EUR');
    expect(html).toContain('id="pay"');

    server.stripe.webhookUrl = server.webhookUrl;
    try {
      const pays = await Promise.all(
        [1, 2].map(() => fetch(`${pageUrl}/pay`, { method: 'POST', redirect: 'manual' })),
      );
      for (const paid of pays) {
        expect(paid.status).toBe(303);
        expect(paid.headers.get('location')).toBe('https://game.test/paid');
      }
      const delivered = () =>
        server.stripe.deliveries
          .filter(
            (delivery) => (delivery.event.data.object as { id: string }).id === payment.providerReference,
          )
          .map((delivery) => [delivery.event.type, delivery.status]);
      await expect.poll(delivered, { timeout: 20_000, interval: 100 }).toHaveLength(1);
      expect(delivered()).toEqual([['checkout.session.completed', 200]]);
      expect(await server.balance(tenant, player.userId, 'coins')).toBe(500n);
      expect(await (await fetch(pageUrl)).text()).toContain('This checkout is complete');
    } finally {
      server.stripe.webhookUrl = undefined;
    }
  });
});
