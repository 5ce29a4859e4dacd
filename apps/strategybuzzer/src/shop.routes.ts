import { type HttpServer, requireUser, routeSecurity, Type } from 'socle';
import type { BuzzerService } from './buzzer.service.js';
import type { Shop } from './shop.js';

const tags = ['strategybuzzer'];
const security = routeSecurity.user;
const HttpUrl = Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2048 });

/**
 * The coin shop over HTTP: the packs, a Stripe Checkout for the web, store purchases for the
 * Flutter app, the player's purchases. The balance after a purchase comes on the player's channel.
 */
export function registerShopRoutes(app: HttpServer, deps: { shop: Shop; service: BuzzerService }): void {
  const { shop, service } = deps;

  app.get(
    '/strategybuzzer/shop',
    { schema: { tags, summary: 'The coin packs on sale (prices in minor units: 499 = 4.99 EUR)' } },
    async () => ({ packs: shop.packs() }),
  );

  app.post(
    '/strategybuzzer/shop/checkout',
    {
      schema: {
        tags,
        security,
        summary:
          'Buy a pack on the web: a Stripe Checkout page to open (the coins arrive on my channel as `coins` once paid)',
        body: Type.Object(
          {
            packId: Type.String({ minLength: 1, maxLength: 64 }),
            successUrl: HttpUrl,
            cancelUrl: HttpUrl,
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      await service.profile(userId);
      const { packId, successUrl, cancelUrl } = request.body;
      return reply.code(201).send(await shop.checkout(userId, packId, { successUrl, cancelUrl }));
    },
  );

  app.post(
    '/strategybuzzer/shop/purchases/:store',
    {
      schema: {
        tags,
        security,
        summary:
          'A purchase made in the app store (Flutter): Apple `signedTransaction`, or Google Play `productId` + `purchaseToken`; credited once',
        params: Type.Object({ store: Type.Union([Type.Literal('apple'), Type.Literal('google-play')]) }),
        body: Type.Object(
          {
            signedTransaction: Type.Optional(Type.String({ minLength: 1, maxLength: 16_384 })),
            productId: Type.Optional(Type.String({ minLength: 1, maxLength: 150 })),
            purchaseToken: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      await service.profile(userId);
      return shop.claimStorePurchase(userId, request.params.store, request.body);
    },
  );

  app.get(
    '/strategybuzzer/shop/purchases',
    { schema: { tags, security, summary: 'My coin purchases, newest first' } },
    async (request) => {
      const { userId } = requireUser(request);
      await service.profile(userId);
      return { purchases: await shop.purchases(userId) };
    },
  );
}
