import { randomUUID } from 'node:crypto';
import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { OrgHeaders, requireOrg, requireOrgRole } from '../tenancy/index.js';
import { paymentsErrors } from './payments.errors.js';
import type { Payment, PaymentsService, Subscription } from './payments.service.js';

const NullableString = Type.Union([Type.String(), Type.Null()]);
const Amount = Type.String({ pattern: '^[0-9]+$', description: 'Minor units, as a decimal string' });
const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const HttpUrl = Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2048 });

const PaymentSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  provider: Type.String(),
  providerReference: Type.String(),
  kind: Type.String(),
  productId: NullableString,
  orderId: NullableString,
  status: Type.String(),
  amount: Amount,
  currency: Type.String(),
  refundedAmount: Amount,
  credits: Amount,
  unit: NullableString,
  amountSats: Type.Union([Amount, Type.Null()]),
  paymentUri: NullableString,
  checkoutUrl: NullableString,
  expiresAt: Timestamp,
  createdAt: Type.String({ format: 'date-time' }),
  settledAt: Timestamp,
  subscriptionPaymentId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  receivedSats: Type.Union([Amount, Type.Null()]),
});
const SubscriptionSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  provider: Type.String(),
  providerSubscriptionId: Type.String(),
  productId: Type.String(),
  status: Type.String(),
  currentPeriodEnd: Timestamp,
  cancelAtPeriodEnd: Type.Boolean(),
});

const serializePayment = (payment: Payment) => ({
  id: payment.id,
  provider: payment.provider,
  providerReference: payment.providerReference,
  kind: payment.kind,
  productId: payment.productId,
  orderId: payment.orderId,
  status: payment.status,
  amount: payment.amount.toString(),
  currency: payment.currency,
  refundedAmount: payment.refundedAmount.toString(),
  credits: payment.credits.toString(),
  unit: payment.unit,
  amountSats: payment.amountSats?.toString() ?? null,
  paymentUri: payment.paymentUri,
  checkoutUrl: payment.checkoutUrl,
  expiresAt: payment.expiresAt?.toISOString() ?? null,
  createdAt: payment.createdAt.toISOString(),
  settledAt: payment.settledAt?.toISOString() ?? null,
  subscriptionPaymentId: payment.subscriptionPaymentId,
  receivedSats: payment.receivedSats?.toString() ?? null,
});
const serializeSubscription = (subscription: Subscription) => ({
  id: subscription.id,
  provider: subscription.provider,
  providerSubscriptionId: subscription.providerSubscriptionId,
  productId: subscription.productId,
  status: subscription.status,
  currentPeriodEnd: subscription.currentPeriodEnd?.toISOString() ?? null,
  cancelAtPeriodEnd: subscription.cancelAtPeriodEnd,
});

/**
 * Payments over HTTP: the catalog, checkouts, a person's payments and subscriptions, the
 * customer portal, refunds (admins), and one webhook endpoint per provider.
 */
export function registerPaymentsRoutes(app: HttpServer, payments: PaymentsService): void {
  // Webhooks are verified on the bytes the provider signed: this scope keeps the body raw.
  app.register(async (plugin) => {
    const scope = plugin as unknown as HttpServer;
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_request, body, done) =>
      done(null, body),
    );
    scope.post(
      '/payments/webhooks/:provider',
      {
        // A provider's own credential (Google Play's Pub/Sub push OIDC token): its adapter verifies it.
        config: { foreignAuthorization: true },
        schema: {
          tags: ['payments'],
          summary:
            "A provider's webhook: verified on the raw body, stored by event id and applied to the ledger in one transaction",
          params: Type.Object({ provider: Type.String({ pattern: '^[a-z0-9-]{1,32}$' }) }),
          querystring: Type.Record(Type.String(), Type.String()),
          response: {
            200: Type.Object({ received: Type.Boolean(), duplicate: Type.Boolean(), outcome: Type.String() }),
          },
        },
      },
      async (request) => {
        const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        const result = await payments.receiveWebhook(
          request.params.provider,
          body,
          request.headers,
          request.query,
        );
        return { received: true, duplicate: result.duplicate, outcome: result.outcome };
      },
    );
  });

  const member = { tags: ['payments'], security: routeSecurity.memberOrApiKey, headers: OrgHeaders };

  app.get(
    '/payments/catalog',
    {
      schema: {
        ...member,
        summary: 'The products on sale',
        response: {
          200: Type.Object({
            products: Type.Array(
              Type.Object({
                id: Type.String(),
                kind: Type.String(),
                name: Type.String(),
                price: Type.Integer(),
                currency: Type.String(),
                credits: Type.Integer(),
                unit: Type.String(),
                interval: Type.Optional(Type.String()),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      requireOrg(request);
      return { products: [...payments.catalog.products] };
    },
  );

  app.post(
    '/payments/checkout',
    {
      schema: {
        ...member,
        summary: 'Opens a checkout for a product of the catalog; redirect the buyer to `checkoutUrl`',
        body: Type.Object(
          {
            productId: Type.String({ minLength: 1, maxLength: 64 }),
            provider: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,32}$' })),
            successUrl: HttpUrl,
            cancelUrl: HttpUrl,
          },
          { additionalProperties: false },
        ),
        response: { 201: PaymentSchema },
      },
    },
    async (request, reply) => {
      const { orgId, userId } = requireOrg(request);
      const payment = await payments.createCheckout({ ...request.body, orgId, userId });
      return reply.code(201).send(serializePayment(payment));
    },
  );

  app.post(
    '/payments/invoices',
    {
      schema: {
        ...member,
        summary:
          'Opens a Bitcoin invoice for a pack of the catalog: sats and fiat amounts, expiry, BIP21 URI (with Lightning); QR at /payments/payments/{id}/qr.svg',
        body: Type.Object(
          {
            productId: Type.String({ minLength: 1, maxLength: 64 }),
            provider: Type.Optional(Type.String({ pattern: '^[a-z0-9-]{1,32}$' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: PaymentSchema },
      },
    },
    async (request, reply) => {
      const { userId } = requireOrg(request);
      const product = payments.catalog.product(request.body.productId);
      if (product === undefined) throw paymentsErrors.productNotFound(request.body.productId);
      const invoice = await payments.createInvoice({
        orderId: `pack:${randomUUID()}`,
        amount: product.price,
        currency: product.currency,
        productId: product.id,
        userId,
        provider: request.body.provider,
        description: product.name,
      });
      return reply.code(201).send(serializePayment(invoice));
    },
  );

  app.post(
    '/payments/purchases/:provider',
    {
      schema: {
        ...member,
        summary:
          'Credits an in-app purchase once: Apple `signedTransaction` (StoreKit 2 JWS) or Google Play `productId` + `purchaseToken`',
        params: Type.Object({ provider: Type.String({ pattern: '^[a-z0-9-]{1,32}$' }) }),
        body: Type.Object(
          {
            signedTransaction: Type.Optional(Type.String({ minLength: 1, maxLength: 16_384 })),
            productId: Type.Optional(Type.String({ minLength: 1, maxLength: 150 })),
            purchaseToken: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ payment: PaymentSchema, duplicate: Type.Boolean(), outcome: Type.String() }),
        },
      },
    },
    async (request) => {
      const { orgId, userId } = requireOrg(request);
      const result = await payments.claimPurchase(request.params.provider, request.body, { orgId, userId });
      return {
        payment: serializePayment(result.payment),
        duplicate: result.duplicate,
        outcome: result.outcome,
      };
    },
  );

  app.get(
    '/payments/payments/:paymentId/qr.:format',
    {
      schema: {
        ...member,
        summary: "The QR code of one of your invoices' payment URI (png or svg)",
        params: Type.Object({
          paymentId: Type.String({ format: 'uuid' }),
          format: Type.Union([Type.Literal('png'), Type.Literal('svg')]),
        }),
      },
    },
    async (request, reply) => {
      const { userId } = requireOrg(request);
      const payment = await payments.payment(request.params.paymentId);
      // Another member's invoice answers as if it did not exist.
      if (payment.userId !== userId) throw paymentsErrors.paymentNotFound(payment.id);
      const image = await payments.invoiceQrCode(payment, request.params.format);
      return reply
        .header('content-type', request.params.format === 'png' ? 'image/png' : 'image/svg+xml')
        .header('cache-control', 'private, max-age=300')
        .send(image);
    },
  );

  app.get(
    '/payments/payments',
    {
      schema: {
        ...member,
        summary: 'Your payments, newest first',
        response: { 200: Type.Object({ payments: Type.Array(PaymentSchema) }) },
      },
    },
    async (request) => {
      const { userId } = requireOrg(request);
      return { payments: (await payments.payments({ userId })).map(serializePayment) };
    },
  );

  app.get(
    '/payments/subscriptions',
    {
      schema: {
        ...member,
        summary: 'Your subscriptions and their state',
        response: { 200: Type.Object({ subscriptions: Type.Array(SubscriptionSchema) }) },
      },
    },
    async (request) => {
      const { userId } = requireOrg(request);
      return { subscriptions: (await payments.subscriptions(userId)).map(serializeSubscription) };
    },
  );

  app.post(
    '/payments/portal',
    {
      schema: {
        ...member,
        summary: "A link to the provider's customer portal (cards, invoices, cancellation)",
        body: Type.Object({ returnUrl: HttpUrl }, { additionalProperties: false }),
        response: { 200: Type.Object({ url: Type.String() }) },
      },
    },
    async (request) => {
      const { userId } = requireOrg(request);
      return { url: await payments.portalUrl(userId, request.body.returnUrl) };
    },
  );

  const admin = { ...member, tags: ['payments'] };

  app.get(
    '/org/payments/payments',
    {
      schema: {
        ...admin,
        summary: "The organization's payments (admin)",
        querystring: Type.Object(
          { userId: Type.Optional(Type.String({ format: 'uuid' })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ payments: Type.Array(PaymentSchema) }) },
      },
    },
    async (request) => {
      requireOrgRole(request, 'admin');
      return { payments: (await payments.payments({ userId: request.query.userId })).map(serializePayment) };
    },
  );

  app.post(
    '/org/payments/payments/:paymentId/refund',
    {
      schema: {
        ...admin,
        summary:
          'Asks the provider to refund a payment; the ledger reversal follows its refund event (admin)',
        params: Type.Object({ paymentId: Type.String({ format: 'uuid' }) }),
        body: Type.Object(
          {
            amount: Type.Optional(
              Type.String({ pattern: '^[0-9]{1,18}$', description: 'Minor units; default all' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 202: Type.Object({ requested: Type.Boolean() }) },
      },
    },
    async (request, reply) => {
      requireOrgRole(request, 'admin');
      const amount = request.body.amount === undefined ? undefined : BigInt(request.body.amount);
      await payments.refund(request.params.paymentId, amount);
      return reply.code(202).send({ requested: true });
    },
  );
}
