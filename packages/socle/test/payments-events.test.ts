import { expect, it } from 'vitest';
import type { StripeEvent } from '../src/testing/index.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';
import { PAYMENTS_OPERATOR_TOKEN, usePaymentsServer } from './support/payments-server.js';

interface ListedEvent {
  provider: string;
  eventId: string;
  orgId: string;
  status: 'applied' | 'failed';
  outcome: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  failedAttempts: number;
}

const asOperator = { 'x-operator-token': PAYMENTS_OPERATOR_TOKEN };

describeEachDatabase('Payment events: received, applied, failed', (target) => {
  const server = usePaymentsServer(target);
  const deliver = (event: StripeEvent) => server.stripe.deliver(server.webhookUrl, event);
  type Tenant = Awaited<ReturnType<typeof server.socle.newTenant>>;
  const listOf = async (tenant: Tenant, query = '') => {
    const response = await callAs(server.socle, tenant.owner, 'GET', `/org/payments/events${query}`, {
      orgId: tenant.id,
    });
    expect(response.statusCode, response.body).toBe(200);
    return response.json().events as ListedEvent[];
  };
  /** A checkout whose `payment.succeeded` handler throws while `failing.now`. */
  const failingCheckout = async (tenant: Tenant) => {
    const { paymentId, sessionId } = await server.checkout(tenant, 'coins-500');
    const failing = { now: true };
    server.payments.on('payment.succeeded', (_trx, payment) => {
      if (payment.id === paymentId && failing.now) throw new Error('the app is down');
    });
    const [completed] = server.stripe.completeCheckout(sessionId) as [StripeEvent];
    return { completed, failing };
  };

  it('keeps a failed event outside its rolled-back transaction, counts its attempts, and a redelivery that succeeds shows it applied', async () => {
    const tenant = await server.socle.newTenant();
    const { completed, failing } = await failingCheckout(tenant);
    expect(await deliver(completed)).toBe(500);
    expect(await deliver(completed)).toBe(500);
    expect(await server.eventCount(tenant)).toBe(0);

    const [failed] = await listOf(tenant, '?status=failed');
    expect(failed).toMatchObject({
      provider: 'stripe',
      eventId: completed.id,
      orgId: tenant.id,
      status: 'failed',
      errorCode: 'internal',
      errorMessage: 'the app is down',
      failedAttempts: 2,
    });
    expect(await listOf(tenant, '?status=applied')).toEqual([]);
    // Another organization sees nothing of it; the operator sees it among every organization's.
    const other = await server.socle.newTenant();
    expect(await listOf(other)).toEqual([]);
    const all = await server.socle.app.inject({
      method: 'GET',
      url: '/operator/payments/events?status=failed&provider=stripe',
      headers: asOperator,
    });
    expect(all.statusCode, all.body).toBe(200);
    expect((all.json().events as ListedEvent[]).some((event) => event.eventId === completed.id)).toBe(true);

    failing.now = false;
    expect(await deliver(completed)).toBe(200);
    expect(await listOf(tenant, '?status=failed')).toEqual([]);
    expect(await listOf(tenant)).toMatchObject([
      { eventId: completed.id, status: 'applied', outcome: 'paid', failedAttempts: 2 },
    ]);
    expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(500n);
  });

  it('retries a failed event from what was verified, once: a second retry is 409, a redelivery a duplicate', async () => {
    const tenant = await server.socle.newTenant();
    const { completed, failing } = await failingCheckout(tenant);
    expect(await deliver(completed)).toBe(500);
    const url = `/org/payments/events/stripe/${completed.id}/retry`;

    // Still failing: the retry says why and counts one more attempt.
    const again = await callAs(server.socle, tenant.owner, 'POST', url, { orgId: tenant.id });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toMatchObject({ status: 'failed', errorMessage: 'the app is down' });
    expect((await listOf(tenant, '?status=failed'))[0]?.failedAttempts).toBe(2);

    failing.now = false;
    // Another organization's admin cannot retry it.
    const other = await server.socle.newTenant();
    const foreign = await callAs(server.socle, other.owner, 'POST', url, { orgId: other.id });
    expect(foreign.statusCode).toBe(404);
    expect(foreign.json().code).toBe('payments.event_not_found');

    const retried = await callAs(server.socle, tenant.owner, 'POST', url, { orgId: tenant.id });
    expect(retried.json()).toEqual({ status: 'applied', outcome: 'paid' });
    expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(500n);
    const twice = await callAs(server.socle, tenant.owner, 'POST', url, { orgId: tenant.id });
    expect(twice.statusCode).toBe(409);
    expect(twice.json().code).toBe('payments.event_already_applied');
    expect(await deliver(completed)).toBe(200);
    expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(500n);
    expect(await server.eventCount(tenant)).toBe(1);
  });

  it("lets the operator retry any organization's failed event, and names bad filters", async () => {
    const tenant = await server.socle.newTenant();
    const { completed, failing } = await failingCheckout(tenant);
    expect(await deliver(completed)).toBe(500);
    failing.now = false;
    const retried = await server.socle.app.inject({
      method: 'POST',
      url: `/operator/payments/events/stripe/${completed.id}/retry`,
      headers: asOperator,
    });
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json()).toEqual({ status: 'applied', outcome: 'paid' });
    expect(await server.balance(tenant, tenant.owner.userId, 'coins')).toBe(500n);

    const anonymous = await server.socle.app.inject({ method: 'GET', url: '/operator/payments/events' });
    expect(anonymous.statusCode).toBe(401);
    const bad = await callAs(server.socle, tenant.owner, 'GET', '/org/payments/events?status=lost', {
      orgId: tenant.id,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.headers['content-type']).toContain('application/problem+json');
    expect(bad.body).toContain('status');
    const badDate = await callAs(server.socle, tenant.owner, 'GET', '/org/payments/events?since=yesterday', {
      orgId: tenant.id,
    });
    expect(badDate.statusCode).toBe(400);
    const missing = await server.socle.app.inject({
      method: 'POST',
      url: '/operator/payments/events/stripe/evt_never/retry',
      headers: asOperator,
    });
    expect(missing.statusCode).toBe(404);
  });
});
