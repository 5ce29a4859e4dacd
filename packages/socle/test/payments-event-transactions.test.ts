import { expect, it } from 'vitest';
import type { StripeEvent } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { usePaymentsServer } from './support/payments-server.js';

/**
 * The cap on all organizations' event transactions in flight (PAYMENTS_EVENT_TRANSACTIONS_MAX),
 * here 1: a burst of several organizations waits in the coalescer, where an organization's events
 * go together, instead of in the database pool.
 */
describeEachDatabase('Payments event transactions', (target) => {
  const server = usePaymentsServer(target, [], { eventTransactionsMax: 1 });

  /** The coalescer's gauge: event transactions begun and not ended, and events waiting for one. */
  const gauge = async () => {
    const metric = server.socle.metrics.registry.getSingleMetric('socle_payments_event_transactions');
    const values = (await metric?.get())?.values ?? [];
    const of = (state: string) => values.find((value) => value.labels.state === state)?.value;
    return { running: of('running'), waiting: of('waiting') };
  };

  it('runs no more event transactions at once than the cap, across organizations; each delivery gets its own answer', async () => {
    // Six organizations, each with a subscription; one renewal each is the burst. Their routes are
    // known from the checkout, so on PGlite too a delivery reaches the coalescer without a session.
    const tenants = await Promise.all(Array.from({ length: 6 }, () => server.socle.newTenant()));
    const events: StripeEvent[] = [];
    for (const tenant of tenants) {
      const { sessionId } = await server.checkout(tenant, 'pro-monthly');
      for (const event of server.stripe.completeCheckout(sessionId))
        expect(await server.stripe.deliver(server.webhookUrl, event)).toBe(200);
      const session = server.stripe.objects.get(sessionId) as unknown as { subscription: string };
      const paid = server.stripe
        .renewSubscription(session.subscription)
        .find((event) => event.type === 'invoice.paid');
      events.push(paid as StripeEvent);
    }
    const [held, refused] = tenants.map((tenant) => tenant.owner.userId) as [string, string];
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered = () => {};
    const holding = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let refusing = true;
    server.payments.on('payment.succeeded', async (_trx, payment) => {
      if (payment.userId === held) {
        entered();
        await released;
      }
      if (refusing && payment.userId === refused) throw new Error('the shop refuses this order');
    });
    const receive = async (event: StripeEvent) => {
      const { body, headers } = server.stripe.sign(event);
      return server.payments.receiveWebhook('stripe', Buffer.from(body), headers).then(
        () => 200,
        (error: { status?: number }) => error.status ?? 500,
      );
    };
    const answered: number[] = [];
    const first = receive(events[0] as StripeEvent);
    await holding;
    const rest = events.slice(1).map((event, index) =>
      receive(event).then((status) => {
        answered.push(index);
        return status;
      }),
    );
    try {
      // All five reached the coalescer and wait there; without the cap they would be answered
      // already (Postgres) or wait for the only session in the pool (PGlite), none in the coalescer.
      await expect.poll(async () => ((await gauge()).waiting ?? 0) + answered.length).toBe(5);
      expect(answered).toEqual([]);
      expect(await gauge()).toEqual({ running: 1, waiting: 5 });
    } finally {
      release(); // a failure above leaves no transaction open
    }
    // Each its own answer: the refused renewal a 500 and nothing of it kept, the others applied.
    expect([await first, ...(await Promise.all(rest))]).toEqual([200, 500, 200, 200, 200, 200]);
    expect(await gauge()).toEqual({ running: 0, waiting: 0 });
    const credits = () =>
      Promise.all(tenants.map((tenant) => server.balance(tenant, tenant.owner.userId, 'credits')));
    expect(await credits()).toEqual([2000n, 1000n, 2000n, 2000n, 2000n, 2000n]);
    refusing = false; // the shop takes it now: its redelivery applies it, once
    expect(await receive(events[1] as StripeEvent)).toBe(200);
    expect(await receive(events[1] as StripeEvent)).toBe(200);
    expect(await credits()).toEqual([2000n, 2000n, 2000n, 2000n, 2000n, 2000n]);
  });
});
