import { describe, expect, it } from 'vitest';
import { STRIPE_METADATA } from '../src/index.js';
import { findTenantIsolationProblems, type StripeEvent } from '../src/testing/index.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';
import { usePaymentsServer } from './support/payments-server.js';
import { connected, nextEvent } from './support/realtime-clients.js';

describeEachDatabase('Payments', (target) => {
  const server = usePaymentsServer(target);
  const sessionOf = (sessionId: string) => server.stripe.objects.get(sessionId) as Record<string, unknown>;
  const deliver = (event: StripeEvent, options?: { secrets?: readonly string[]; timestamp?: number }) =>
    server.stripe.deliver(server.webhookUrl, event, options);
  const deliverAll = async (events: readonly StripeEvent[]) => {
    for (const event of events) expect(await deliver(event)).toBe(200);
  };

  it('keeps its tenant tables under forced row-level security', async () => {
    expect(await findTenantIsolationProblems(server.socle.db, server.socle.modules)).toEqual([]);
  });

  describe('checkout', () => {
    it('opens a Stripe Checkout Session carrying the payment and organization, with a deterministic idempotency key', async () => {
      const tenant = await server.socle.newTenant();
      const { paymentId, sessionId } = await server.checkout(tenant, 'coins-500');
      const session = sessionOf(sessionId);
      expect(session.mode).toBe('payment');
      expect(session.amount_total).toBe(499);
      expect(session.metadata).toEqual({
        [STRIPE_METADATA.paymentId]: paymentId,
        [STRIPE_METADATA.orgId]: tenant.id,
      });
      const request = server.stripe.api.requests.findLast(
        (received) => received.url === '/v1/checkout/sessions',
      );
      expect(request?.headers['idempotency-key']).toBe(`socle-checkout-${paymentId}`);
      const listed = await callAs(server.socle, tenant.owner, 'GET', '/payments/payments', {
        orgId: tenant.id,
      });
      expect(listed.json().payments).toMatchObject([
        { id: paymentId, status: 'pending', amount: '499', currency: 'EUR' },
      ]);
    });

    it('survives 5xx from Stripe (retried with the same key: one session), waits out a 429, and answers 503 when Stripe keeps throttling', async () => {
      const tenant = await server.socle.newTenant();
      const before = server.stripe.objects.size;
      server.stripe.api.failNext(2, { status: 500 });
      const { paymentId } = await server.checkout(tenant, 'coins-500');
      const attempts = server.stripe.api.requests.filter(
        (received) => received.headers['idempotency-key'] === `socle-checkout-${paymentId}`,
      );
      expect(attempts).toHaveLength(3);
      expect(server.stripe.objects.size).toBe(before + 1);

      server.stripe.api.failNext(1, { status: 429, retryAfter: '0' });
      expect((await server.checkout(tenant, 'coins-500')).paymentId).toBeDefined();

      server.stripe.api.failNext(3, { status: 429 });
      const throttled = await callAs(server.socle, tenant.owner, 'POST', '/payments/checkout', {
        orgId: tenant.id,
        payload: { productId: 'coins-500', successUrl: 'https://a.test/ok', cancelUrl: 'https://a.test/no' },
      });
      expect(throttled.statusCode).toBe(503);
      expect(throttled.json()).toMatchObject({
        code: 'outbound.unavailable',
        provider: 'stripe',
        providerStatus: 429,
      });
    });

    it('answers 404 problem+json for a product not in the catalog, and 400 for a bad URL', async () => {
      const tenant = await server.socle.newTenant();
      const unknown = await callAs(server.socle, tenant.owner, 'POST', '/payments/checkout', {
        orgId: tenant.id,
        payload: { productId: 'gold-bars', successUrl: 'https://a.test/ok', cancelUrl: 'https://a.test/no' },
      });
      expect(unknown.statusCode).toBe(404);
      expect(unknown.headers['content-type']).toContain('application/problem+json');
      expect(unknown.json().code).toBe('payments.product_not_found');
      const bad = await callAs(server.socle, tenant.owner, 'POST', '/payments/checkout', {
        orgId: tenant.id,
        payload: {
          productId: 'coins-500',
          successUrl: 'javascript:alert(1)',
          cancelUrl: 'https://a.test/no',
        },
      });
      expect(bad.statusCode).toBe(400);
    });
  });

  describe('webhooks', () => {
    it('credits a paid pack once and tells the buyer on their private channel, with the new balance', async () => {
      const tenant = await server.socle.newTenant();
      const buyer = tenant.owner;
      const client = server.pusher(buyer.token);
      await connected(client);
      const channel = client.subscribe(`private-user-${buyer.userId}`);
      await nextEvent(channel, 'pusher:subscription_succeeded');
      const message = nextEvent<Record<string, unknown>>(channel, 'payment.succeeded');

      const { paymentId, sessionId } = await server.checkout(tenant, 'coins-500');
      const [completed] = server.stripe.completeCheckout(sessionId);
      expect(await deliver(completed as StripeEvent)).toBe(200);

      expect(await message).toMatchObject({
        paymentId,
        productId: 'coins-500',
        credits: '500',
        balance: '500',
        unit: 'coins',
      });
      expect(await server.balance(tenant, buyer.userId, 'coins')).toBe(500n);
      const other = await server.socle.newTenant();
      const elsewhere = await callAs(server.socle, other.owner, 'GET', '/payments/payments', {
        orgId: other.id,
      });
      expect(elsewhere.json().payments).toEqual([]); // another organization does not see it
      const listed = await callAs(server.socle, buyer, 'GET', '/payments/payments', { orgId: tenant.id });
      expect(listed.json().payments[0]).toMatchObject({ id: paymentId, status: 'succeeded' });
    });

    it('answers an event of a deleted organization as naming no payment, also once its route was used', async () => {
      const tenant = await server.socle.newTenant();
      const { sessionId } = await server.checkout(tenant, 'coins-500');
      const [completed] = server.stripe.completeCheckout(sessionId) as [StripeEvent];
      expect(await deliver(completed)).toBe(200); // its route is read, and remembered
      // Its last member erased: the organization goes, and its payments, events and routes with it.
      await server.socle.db.withConnection(
        (connection) => connection.query('delete from tenancy.organizations where id = $1', [tenant.id]),
        'owner',
      );
      expect(await deliver(completed)).toBe(400); // payments.unknown_event, as for any unknown payment
    });

    it('applies the same event once whatever the replays, sequential and concurrent', async () => {
      const tenant = await server.socle.newTenant();
      const { sessionId } = await server.checkout(tenant, 'coins-500');
      const [completed] = server.stripe.completeCheckout(sessionId) as [StripeEvent];
      const statuses = await Promise.all(Array.from({ length: 20 }, () => deliver(completed)));
      expect(statuses.every((status) => status === 200)).toBe(true);
      expect(await deliver(completed)).toBe(200);
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(500n);
      expect(await server.eventCount(tenant)).toBe(1);
    });

    it('refuses a bad signature, a stale timestamp, an unknown secret and a missing header with 400, storing nothing', async () => {
      const tenant = await server.socle.newTenant();
      const { sessionId } = await server.checkout(tenant, 'coins-500');
      const [completed] = server.stripe.completeCheckout(sessionId) as [StripeEvent];
      const signed = server.stripe.sign(completed);
      const tampered = await fetch(server.webhookUrl, {
        method: 'POST',
        headers: signed.headers,
        body: signed.body.replace('"amount_total": 499', '"amount_total": 1'),
      });
      expect(tampered.status).toBe(400);
      const problem = (await tampered.json()) as { code: string };
      expect(problem.code).toBe('payments.invalid_signature');
      expect(await deliver(completed, { timestamp: Math.floor(Date.now() / 1000) - 3600 })).toBe(400);
      expect(await deliver(completed, { secrets: ['whsec_not_ours'] })).toBe(400);
      const unsigned = await fetch(server.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: signed.body,
      });
      expect(unsigned.status).toBe(400);
      expect(await server.eventCount(tenant)).toBe(0);
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(0n);
    });

    it('accepts a signature made with the rotated-out secret, the new one, or both (Stripe sends a v1 each)', async () => {
      const tenant = await server.socle.newTenant();
      const { sessionId } = await server.checkout(tenant, 'coins-500');
      const [completed] = server.stripe.completeCheckout(sessionId) as [StripeEvent];
      expect(await deliver(completed, { secrets: [server.oldSecret] })).toBe(200);
      expect(await deliver(completed, { secrets: [server.stripe.webhookSecret] })).toBe(200);
      expect(await deliver(completed)).toBe(200);
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(500n);
    });

    it('answers 400 for an event type it does not handle and for an object it never created, storing nothing', async () => {
      const tenant = await server.socle.newTenant();
      const { sessionId } = await server.checkout(tenant, 'coins-500');
      const [completed] = server.stripe.completeCheckout(sessionId) as [StripeEvent];
      const unknownType = { ...completed, id: `${completed.id}_x`, type: 'customer.created' };
      expect(await deliver(unknownType)).toBe(400);
      const foreign = {
        ...completed,
        id: `${completed.id}_y`,
        data: {
          object: { ...completed.data.object, id: 'cs_foreign', metadata: {}, client_reference_id: null },
        },
      };
      expect(await deliver(foreign)).toBe(400);
      const notJson = server.stripe.sign(completed);
      const garbage = await fetch(server.webhookUrl, {
        method: 'POST',
        headers: notJson.headers,
        body: '{"id": ',
      });
      expect(garbage.status).toBe(400);
      expect(await server.eventCount(tenant)).toBe(0);
    });

    it('runs an app handler inside the event transaction: when it throws nothing is stored, and the redelivery applies once', async () => {
      const tenant = await server.socle.newTenant();
      const { paymentId, sessionId } = await server.checkout(tenant, 'coins-500');
      let failing = true;
      const seen: string[] = [];
      server.payments.on('payment.succeeded', (_trx, payment) => {
        if (payment.id !== paymentId) return;
        if (failing) throw new Error('the app is down');
        seen.push(payment.id);
      });
      const [completed] = server.stripe.completeCheckout(sessionId) as [StripeEvent];
      expect(await deliver(completed)).toBe(500);
      expect(await server.eventCount(tenant)).toBe(0);
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(0n);
      failing = false;
      expect(await deliver(completed)).toBe(200);
      expect(await deliver(completed)).toBe(200);
      expect(seen).toEqual([paymentId]);
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(500n);
    });
  });

  describe('refunds', () => {
    it('posts the reversal of a refund, partial then full, through the admin route and Stripe', async () => {
      const tenant = await server.socle.newTenant();
      const { paymentId, sessionId } = await server.checkout(tenant, 'coins-500');
      await deliverAll(server.stripe.completeCheckout(sessionId));
      const partial = await callAs(
        server.socle,
        tenant.owner,
        'POST',
        `/org/payments/payments/${paymentId}/refund`,
        {
          orgId: tenant.id,
          payload: { amount: '100' },
        },
      );
      expect(partial.statusCode).toBe(202);
      await deliverAll([server.stripe.events.at(-1) as StripeEvent]);
      // 100 of 499 cents: floor(500 × 100 / 499) = 100 coins back.
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(400n);
      const full = await callAs(
        server.socle,
        tenant.owner,
        'POST',
        `/org/payments/payments/${paymentId}/refund`,
        {
          orgId: tenant.id,
          payload: {},
        },
      );
      expect(full.statusCode).toBe(202);
      await deliverAll([server.stripe.events.at(-1) as StripeEvent]);
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(0n);
      const again = await callAs(
        server.socle,
        tenant.owner,
        'POST',
        `/org/payments/payments/${paymentId}/refund`,
        {
          orgId: tenant.id,
          payload: {},
        },
      );
      expect(again.statusCode).toBe(400);
    });

    it('applies a refund that arrives before its payment once the payment arrives, and an older refund after a newer one changes nothing', async () => {
      const tenant = await server.socle.newTenant();
      const { paymentId, sessionId } = await server.checkout(tenant, 'coins-500');
      const [completed] = server.stripe.completeCheckout(sessionId) as [StripeEvent];
      // Two refunds made at Stripe (100 cents, then the rest), delivered in the worst order:
      // the full refund, the partial one, then the payment, then the partial one again.
      const charge = server.stripe.chargeOf(sessionId);
      charge.amount_refunded = 100;
      const partialEvent = {
        ...completed,
        id: `evt_refund_partial_${paymentId.slice(0, 8)}`,
        type: 'charge.refunded',
        created: completed.created + 1,
        data: { object: structuredClone(charge) },
      } as StripeEvent;
      charge.amount_refunded = 499;
      const fullEvent = {
        ...partialEvent,
        id: `evt_refund_full_${paymentId.slice(0, 8)}`,
        created: completed.created + 2,
        data: { object: structuredClone(charge) },
      } as StripeEvent;
      await deliverAll([fullEvent, partialEvent, completed, partialEvent]);
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(0n);
      const payment = await server.socle.scope.run({ tenantId: tenant.id }, () =>
        server.payments.payment(paymentId),
      );
      expect(payment).toMatchObject({ status: 'succeeded', refundedAmount: 499n });
    });
  });

  describe('chargebacks', () => {
    it("holds back a disputed purchase's credits, gives them back when the dispute is won, keeps them when lost; redelivered events apply once", async () => {
      const balance = (tenant: { id: string; owner: { userId: string } }) =>
        server.balance(tenant as Parameters<typeof server.balance>[0], tenant.owner.userId, 'coins');
      const won = await server.socle.newTenant();
      const first = await server.checkout(won, 'coins-500');
      await deliverAll(server.stripe.completeCheckout(first.sessionId));
      const [opened] = server.stripe.dispute(first.sessionId) as [StripeEvent];
      await deliverAll([opened, opened]);
      expect(await balance(won)).toBe(0n);
      const disputeId = (opened.data.object as { id: string }).id;
      const [closed] = server.stripe.closeDispute(disputeId, 'won') as [StripeEvent];
      await deliverAll([closed, opened, closed]);
      expect(await balance(won)).toBe(500n);

      const lost = await server.socle.newTenant();
      const second = await server.checkout(lost, 'coins-500');
      await deliverAll(server.stripe.completeCheckout(second.sessionId));
      // A partial dispute (100 of 499 cents: 100 coins), lost; delivered closed first.
      const [partial] = server.stripe.dispute(second.sessionId, 100) as [StripeEvent];
      const [lostEvent] = server.stripe.closeDispute((partial.data.object as { id: string }).id, 'lost') as [
        StripeEvent,
      ];
      await deliverAll([lostEvent, partial, lostEvent]);
      expect(await balance(lost)).toBe(400n);
      // A full refund afterwards takes the rest, never more than the purchase.
      const refund = await callAs(
        server.socle,
        lost.owner,
        'POST',
        `/org/payments/payments/${second.paymentId}/refund`,
        {
          orgId: lost.id,
          payload: {},
        },
      );
      expect(refund.statusCode).toBe(202);
      await deliverAll([server.stripe.events.at(-1) as StripeEvent]);
      expect(await balance(lost)).toBe(0n);
    });
  });

  describe('subscriptions', () => {
    it('writes concurrent deliveries of an organization in fewer transactions than events, each answered on its own', async () => {
      const tenant = await server.socle.newTenant();
      const buyer = tenant.owner;
      const credits = () => server.balance(tenant, buyer.userId, 'credits');
      const { sessionId } = await server.checkout(tenant, 'pro-monthly');
      await deliverAll(server.stripe.completeCheckout(sessionId));
      const subscriptionId = sessionOf(sessionId).subscription as string;
      const client = server.pusher(buyer.token);
      await connected(client);
      const channel = client.subscribe(`private-user-${buyer.userId}`);
      await nextEvent(channel, 'pusher:subscription_succeeded');
      const told: string[] = [];
      channel.bind('payment.succeeded', (data: { invoiceId?: string }) => {
        if (data.invoiceId !== undefined) told.push(data.invoiceId);
      });

      // 30 periods renewed (invoice.paid and its subscription update each), all delivered at
      // once; one of them was delivered before (a replay), one goes twice in the same burst.
      const periods = Array.from({ length: 30 }, () => server.stripe.renewSubscription(subscriptionId));
      const [replayed, twice] = periods as [StripeEvent[], StripeEvent[]];
      await deliverAll(replayed);
      const post = async (event: StripeEvent) => {
        const { body, headers } = server.stripe.sign(event);
        const response = await server.socle.app.inject({
          method: 'POST',
          url: '/payments/webhooks/stripe',
          headers,
          payload: body,
        });
        return response.statusCode;
      };
      // Verified and received as the route does, all at once: on PGlite (in process) requests
      // sent through a socket or inject reach the service one by one, between its transactions.
      const receive = async (event: StripeEvent) => {
        const { body, headers } = server.stripe.sign(event);
        return server.payments.receiveWebhook('stripe', Buffer.from(body), headers).then(
          () => 200,
          (error: { status?: number }) => error.status ?? 500,
        );
      };
      const burst = [...periods.flat(), twice[0] as StripeEvent];
      const statuses = await Promise.all(burst.map(receive));
      expect(statuses.filter((status) => status !== 200)).toEqual([]);
      expect(await credits()).toBe(1000n * 31n); // the first period and 30 renewals, each once
      const invoicesPaid = async () => {
        const { rows } = await server.socle.db.withConnection(
          (connection) =>
            connection.query<{ events: number; transactions: number }>(
              `select count(*)::int as events, count(distinct xmin::text)::int as transactions
                 from payments.events where tenant_id = $1 and type = 'invoice.paid' and outcome = 'granted'`,
              [tenant.id],
            ),
          'owner',
        );
        return rows[0] as { events: number; transactions: number };
      };
      const written = await invoicesPaid();
      expect(written.events).toBe(31);
      expect(written.transactions).toBeLessThan(31); // shared transactions (each alone: 31)
      await expect.poll(() => told.length).toBe(30); // the replay tells nobody again
      expect(new Set(told).size).toBe(30);

      // A delivery that fails (the app refuses its pack) among good ones: it alone gets a 5xx
      // and leaves nothing; the others are applied.
      const { paymentId, sessionId: packSession } = await server.checkout(tenant, 'coins-500');
      let refusing = true;
      server.payments.on('payment.succeeded', (_trx, payment) => {
        if (refusing && payment.id === paymentId) throw new Error('the shop refuses this order');
      });
      const [refused] = server.stripe.completeCheckout(packSession) as [StripeEvent];
      const more = Array.from({ length: 10 }, () => server.stripe.renewSubscription(subscriptionId)).flat();
      const mixed = await Promise.all([...more.slice(0, 10), refused, ...more.slice(10)].map(receive));
      expect(mixed[10]).toBe(500);
      expect(mixed.filter((status) => status !== 200)).toHaveLength(1);
      expect(await credits()).toBe(1000n * 41n);
      expect(await server.balance(tenant, buyer.userId, 'coins')).toBe(0n);
      expect((await invoicesPaid()).events).toBe(41);
      refusing = false; // the shop takes it now: its redelivery applies it, once
      expect(await post(refused)).toBe(200);
      expect(await server.balance(tenant, buyer.userId, 'coins')).toBe(500n);
    });

    it('follows created, renewed with monthly credits, past_due and canceled, whatever the delivery order', async () => {
      const tenant = await server.socle.newTenant();
      const buyer = tenant.owner;
      const { sessionId } = await server.checkout(tenant, 'pro-monthly');
      expect(sessionOf(sessionId).mode).toBe('subscription');
      const opened = server.stripe.completeCheckout(sessionId);
      await deliverAll([...opened].reverse());
      const subscriptions = async () =>
        (await callAs(server.socle, buyer, 'GET', '/payments/subscriptions', { orgId: tenant.id })).json()
          .subscriptions as { status: string; productId: string }[];
      expect(await subscriptions()).toMatchObject([{ status: 'active', productId: 'pro-monthly' }]);
      expect(await server.balance(tenant, buyer.userId, 'credits')).toBe(1000n);

      const subscriptionId = sessionOf(sessionId).subscription as string;
      const renewed = server.stripe.renewSubscription(subscriptionId);
      await deliverAll([...renewed, ...renewed]);
      expect(await server.balance(tenant, buyer.userId, 'credits')).toBe(2000n);

      const failed = server.stripe.failRenewal(subscriptionId);
      await deliverAll(failed);
      expect(await subscriptions()).toMatchObject([{ status: 'past_due' }]);
      expect(await server.balance(tenant, buyer.userId, 'credits')).toBe(2000n);

      const canceled = server.stripe.cancelSubscription(subscriptionId);
      // The deletion first, then an older update that says "active": canceled stays.
      await deliverAll([...canceled, ...(renewed.slice(1) as StripeEvent[])]);
      expect(await subscriptions()).toMatchObject([{ status: 'canceled' }]);
      const active = await server.socle.scope.run({ tenantId: tenant.id }, () =>
        server.payments.hasActiveSubscription(buyer.userId, 'pro-monthly'),
      );
      expect(active).toBe(false);
    });

    it("takes back a refunded or disputed period's grant, once, whatever the order (a refund before its invoice.paid)", async () => {
      const tenant = await server.socle.newTenant();
      const buyer = tenant.owner;
      const credits = () => server.balance(tenant, buyer.userId, 'credits');
      const { paymentId, sessionId } = await server.checkout(tenant, 'pro-monthly');
      const opened = server.stripe.completeCheckout(sessionId);
      await deliverAll(opened);
      const subscriptionId = sessionOf(sessionId).subscription as string;
      const invoiceOf = (events: readonly StripeEvent[]) =>
        (events.find((event) => event.type === 'invoice.paid') as StripeEvent).data.object.id;
      const renewed = server.stripe.renewSubscription(subscriptionId);
      await deliverAll(renewed);
      expect(await credits()).toBe(2000n);

      // The renewal refunded in full from Stripe's dashboard (its charge names only a
      // PaymentIntent), delivered twice: that period's 1000 credits taken back once.
      const refunded = server.stripe.refundInvoice(invoiceOf(renewed));
      await deliverAll([...refunded, ...refunded]);
      expect(await credits()).toBe(1000n);

      // The first period's charge disputed for half its price, then lost: 500 held back.
      const [disputed] = server.stripe.disputeInvoice(invoiceOf(opened), 950) as [StripeEvent];
      const [lost] = server.stripe.closeDispute((disputed.data.object as { id: string }).id, 'lost') as [
        StripeEvent,
      ];
      await deliverAll([lost, disputed, lost]);
      expect(await credits()).toBe(500n);

      // A third period: its refund (a quarter) arrives before its invoice.paid; the grant and the
      // refund's share both apply when the invoice does, once.
      const third = server.stripe.renewSubscription(subscriptionId);
      const early = server.stripe.refundInvoice(invoiceOf(third), 475);
      await deliverAll(early);
      expect(await credits()).toBe(500n);
      await deliverAll([...third, ...early, ...third]);
      expect(await credits()).toBe(1250n);

      // Each paid invoice is a payment of its own, named after the subscription's.
      const listed = (
        await callAs(server.socle, buyer, 'GET', '/payments/payments', { orgId: tenant.id })
      ).json().payments as {
        kind: string;
        status: string;
        refundedAmount: string;
        subscriptionPaymentId?: string;
      }[];
      expect(listed.filter((payment) => payment.kind === 'subscription_invoice')).toHaveLength(3);
      expect(
        listed
          .filter((payment) => payment.refundedAmount !== '0')
          .map((payment) => payment.refundedAmount)
          .sort(),
      ).toEqual(['1900', '475']);
      expect(
        listed.every(
          (payment) => payment.kind === 'subscription' || payment.subscriptionPaymentId === paymentId,
        ),
      ).toBe(true);
    });

    it("refunds one subscription invoice from the admin route: the period's grant taken back by the refund webhook, once", async () => {
      const tenant = await server.socle.newTenant();
      const buyer = tenant.owner;
      const credits = () => server.balance(tenant, buyer.userId, 'credits');
      const { paymentId, sessionId } = await server.checkout(tenant, 'pro-monthly');
      await deliverAll(server.stripe.completeCheckout(sessionId));
      const subscriptionId = sessionOf(sessionId).subscription as string;
      const renewed = server.stripe.renewSubscription(subscriptionId);
      await deliverAll(renewed);
      expect(await credits()).toBe(2000n);
      const renewal = (renewed.find((event) => event.type === 'invoice.paid') as StripeEvent).data.object.id;
      const listed = (
        await callAs(server.socle, buyer, 'GET', '/payments/payments', { orgId: tenant.id })
      ).json().payments as { id: string; kind: string; providerReference: string }[];
      const invoicePayment = listed.find((payment) => payment.providerReference === renewal);
      expect(invoicePayment?.kind).toBe('subscription_invoice');
      const refund = (id: string, payload: object) =>
        callAs(server.socle, buyer, 'POST', `/org/payments/payments/${id}/refund`, {
          orgId: tenant.id,
          payload,
        });

      // Half the period's price: nothing moves until Stripe's charge.refunded, delivered twice.
      const before = server.stripe.events.length;
      expect((await refund(invoicePayment?.id as string, { amount: '950' })).statusCode).toBe(202);
      expect(await credits()).toBe(2000n);
      const told = server.stripe.events.slice(before);
      expect(told.map((event) => event.type)).toEqual(['charge.refunded']);
      await deliverAll([...told, ...told]);
      expect(await credits()).toBe(1500n);
      // The rest, then nothing left to refund.
      expect((await refund(invoicePayment?.id as string, {})).statusCode).toBe(202);
      await deliverAll([server.stripe.events.at(-1) as StripeEvent]);
      expect(await credits()).toBe(1000n);
      expect((await refund(invoicePayment?.id as string, {})).statusCode).toBe(400);
      // The subscription itself is not a charge: its invoices are refunded one by one.
      const whole = await refund(paymentId, {});
      expect(whole.statusCode).toBe(409);
      expect(whole.json().code).toBe('payments.not_refundable');
    });

    it("grants a platform-book subscription's periods in the buyer's own account, alone and coalesced, once each; a refund takes one back there", async () => {
      const tenant = await server.socle.newTenant();
      const buyer = tenant.owner;
      const gems = () => server.platformBalance(buyer.userId, 'gems');
      const { paymentId, sessionId } = await server.checkout(tenant, 'gems-monthly');
      await deliverAll(server.stripe.completeCheckout(sessionId));
      expect(await gems()).toBe(100n);
      const subscriptionId = sessionOf(sessionId).subscription as string;

      // A renewal alone, delivered twice.
      const renewed = server.stripe.renewSubscription(subscriptionId);
      await deliverAll([...renewed, ...renewed]);
      expect(await gems()).toBe(200n);

      // 20 more periods at once, one of them twice in the burst: received as the route does,
      // concurrently, so the organization's events go together (see the test above).
      const receive = async (event: StripeEvent) => {
        const { body, headers } = server.stripe.sign(event);
        return server.payments.receiveWebhook('stripe', Buffer.from(body), headers).then(
          () => 200,
          (error: { status?: number }) => error.status ?? 500,
        );
      };
      const periods = Array.from({ length: 20 }, () => server.stripe.renewSubscription(subscriptionId));
      const burst = [...periods.flat(), ...(periods[3] as StripeEvent[])];
      const statuses = await Promise.all(burst.map(receive));
      expect(statuses.filter((status) => status !== 200)).toEqual([]);
      expect(await gems()).toBe(2200n);

      // Every grant is one transfer of the platform book into the buyer's own wallet; the
      // organization that sold holds no gems at all.
      const { rows } = await server.socle.db.withConnection(
        (connection) =>
          connection.query<{ grants: number; books: string[]; transactions: number; held: number }>(
            `select (select count(*)::int from ledger.transfers t
                      where t.code = 'payments.subscription_grant' and t.metadata->>'paymentId' = $2) as grants,
                    (select array_agg(distinct t.tenant_id::text) from ledger.transfers t
                      where t.metadata->>'paymentId' = $2) as books,
                    (select count(distinct xmin::text)::int from payments.events
                      where tenant_id = $1 and type = 'invoice.paid') as transactions,
                    (select count(*)::int from ledger.accounts where tenant_id = $1 and unit = 'gems') as held`,
            [tenant.id, paymentId],
          ),
        'owner',
      );
      expect(rows[0]).toEqual({
        grants: 22,
        books: ['00000000-0000-0000-0000-000000000000'],
        transactions: expect.any(Number),
        held: 0,
      });
      // Some renewals went together (each alone: 22 transactions).
      expect(rows[0]?.transactions).toBeLessThan(22);

      // A coalesced period refunded in full, the refund delivered twice: taken back once, there.
      const invoiceOf = (events: readonly StripeEvent[]) =>
        (events.find((event) => event.type === 'invoice.paid') as StripeEvent).data.object.id;
      const refunded = server.stripe.refundInvoice(invoiceOf(periods[5] as StripeEvent[]));
      await deliverAll([...refunded, ...refunded]);
      expect(await gems()).toBe(2100n);
      expect(await server.balance(tenant, buyer.userId, 'gems')).toBe(0n);
    });

    it('links the customer portal of a buyer who has paid, and 404 for one who never did', async () => {
      const tenant = await server.socle.newTenant();
      const { sessionId } = await server.checkout(tenant, 'pro-monthly');
      const none = await callAs(server.socle, tenant.owner, 'POST', '/payments/portal', {
        orgId: tenant.id,
        payload: { returnUrl: 'https://app.test/account' },
      });
      expect(none.statusCode).toBe(404);
      await deliverAll(server.stripe.completeCheckout(sessionId));
      const portal = await callAs(server.socle, tenant.owner, 'POST', '/payments/portal', {
        orgId: tenant.id,
        payload: { returnUrl: 'https://app.test/account' },
      });
      expect(portal.statusCode).toBe(200);
      expect(portal.json().url).toContain(`${server.stripe.url}/portal/`);
    });
  });

  describe('recovery and privacy', () => {
    it('recovers missed webhooks from the events list; a second pass applies nothing', async () => {
      const tenant = await server.socle.newTenant();
      const { sessionId } = await server.checkout(tenant, 'coins-500');
      server.stripe.completeCheckout(sessionId); // never delivered
      const first = await server.payments.backfill(new Date(Date.now() - 3_600_000));
      expect(first.applied).toBeGreaterThanOrEqual(1);
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(500n);
      const second = await server.payments.backfill(new Date(Date.now() - 3_600_000));
      expect(second.applied).toBe(0);
      expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(500n);
    });

    it("exports a person's payments and erases them by pseudonymizing, keeping amounts and dates", async () => {
      const tenant = await server.socle.newTenant();
      const { paymentId, sessionId } = await server.checkout(tenant, 'coins-500');
      await deliverAll(server.stripe.completeCheckout(sessionId));
      const hooks = server.socle.modules.find((module) => module.name === 'payments');
      expect(hooks).toBeDefined();
      const privacy = (await import('../src/modules/payments/payments.privacy.js')).createPaymentsPrivacy(
        server.socle.db,
      );
      const subject = { userId: tenant.owner.userId, email: tenant.owner.email };
      const exported = (await privacy.exportSubject(subject)) as {
        payments: { id: string; amount: string }[];
      };
      expect(exported.payments).toMatchObject([{ id: paymentId, amount: '499' }]);
      await privacy.eraseSubject?.(subject);
      const after = (await privacy.exportSubject(subject)) as { payments: unknown[] };
      expect(after.payments).toEqual([]);
      const { rows } = await server.socle.db.withConnection(
        (connection) =>
          connection.query<{ user_id: string | null; amount: string; settled_at: Date | null }>(
            'select user_id, amount::text as amount, settled_at from payments.payments where id = $1',
            [paymentId],
          ),
        'owner',
      );
      expect(rows[0]).toMatchObject({ user_id: null, amount: '499' });
      expect(rows[0]?.settled_at).not.toBeNull();
    });
  });
});
