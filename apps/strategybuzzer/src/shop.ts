import {
  defineCatalog,
  type Logger,
  type PackProduct,
  type Payment,
  type PaymentsService,
  type Realtime,
  type ScopeAccess,
  SocleError,
  type StorePurchaseProof,
} from 'socle';
import { buzzerErrors } from './buzzer.errors.js';
import { channels } from './buzzer.service.js';
import type { BuzzerStore } from './buzzer.store.js';
import { COINS, type Coins } from './coins.js';

/**
 * The coin packs on sale (the catalog the app gives `createPaymentsModule`): Stripe Checkout on
 * the web, the same products in the App Store and Google Play under their store ids.
 */
export const coinPacks = defineCatalog([
  {
    id: 'coins-500',
    kind: 'pack',
    name: '500 coins',
    price: 499,
    currency: 'EUR',
    credits: 500,
    unit: COINS,
    book: 'platform',
    storeProductIds: { apple: 'com.strategybuzzer.coins500', 'google-play': 'coins_500' },
  },
  {
    id: 'coins-1200',
    kind: 'pack',
    name: '1,200 coins',
    price: 999,
    currency: 'EUR',
    credits: 1200,
    unit: COINS,
    book: 'platform',
    storeProductIds: { apple: 'com.strategybuzzer.coins1200', 'google-play': 'coins_1200' },
  },
  {
    id: 'coins-3000',
    kind: 'pack',
    name: '3,000 coins',
    price: 1999,
    currency: 'EUR',
    credits: 3000,
    unit: COINS,
    book: 'platform',
    storeProductIds: { apple: 'com.strategybuzzer.coins3000', 'google-play': 'coins_3000' },
  },
]);

export interface ShopOptions {
  readonly payments: PaymentsService;
  readonly coins: Coins;
  readonly store: BuzzerStore;
  readonly scope: ScopeAccess;
  readonly realtime: Realtime;
  readonly log: Logger;
}

/** What a player sees of a payment for coins. */
export interface CoinPurchase {
  readonly id: string;
  readonly packId: string | null;
  readonly provider: string;
  readonly status: Payment['status'];
  readonly coins: number;
  readonly price: number;
  readonly currency: string;
  readonly refundedPrice: number;
  readonly createdAt: string;
}

const toPurchase = (payment: Payment): CoinPurchase => ({
  id: payment.id,
  packId: payment.productId,
  provider: payment.provider,
  status: payment.status,
  coins: Number(payment.credits),
  price: Number(payment.amount),
  currency: payment.currency,
  refundedPrice: Number(payment.refundedAmount),
  createdAt: payment.createdAt.toISOString(),
});

const packNotFound = (packId: string) =>
  new SocleError('strategybuzzer.pack_not_found', `No coin pack "${packId}"`, {
    status: 404,
    details: { field: 'body/packId' },
  });

/**
 * The coin shop: packs bought through Socle's payments module, in the organization that runs the
 * game. A purchase credits the player's wallet (the same ledger account the game spends from) in
 * the transaction that records the provider's event, once whatever the replays; a refund
 * reverses it (at most what the wallet still holds). The player's page is told the new balance
 * on their channel (`coins { balance }`) once that transaction committed.
 */
export function createShop({ payments, coins, store, scope, realtime, log }: ShopOptions) {
  const packs = () =>
    payments.catalog.products.filter(
      (product): product is PackProduct => product.kind === 'pack' && product.unit === COINS,
    );

  /** Runs payments' work in the house, acting as the player (RLS of the house's rows). */
  async function asPlayerInHouse<T>(userId: string, work: (orgId: string) => Promise<T>): Promise<T> {
    // The wallet first, opened by the player with their starter coins: purchases credit it.
    await coins.wallet(userId);
    const house = await store.house();
    if (house === undefined) throw buzzerErrors.notSetUp();
    return scope.run({ tenantId: house.orgId, userId }, () => work(house.orgId));
  }

  async function tellBalance(payment: Payment) {
    const house = await store.house();
    if (payment.userId === null || payment.orgId !== house?.orgId) return;
    const balance = await coins.balance(payment.userId);
    await realtime.publish({ channel: channels.player(payment.userId), event: 'coins', data: { balance } });
  }

  for (const name of ['payment.succeeded', 'payment.refunded'] as const)
    payments.on(name, (_trx, payment, afterCommit) => {
      if (payment.unit !== COINS) return;
      afterCommit(() =>
        tellBalance(payment).catch((error) =>
          log.warn({ err: error, paymentId: payment.id }, 'The new coin balance could not be pushed'),
        ),
      );
    });

  return {
    /** The packs on sale. */
    packs: () =>
      packs().map((pack) => ({
        id: pack.id,
        name: pack.name,
        coins: pack.credits,
        price: pack.price,
        currency: pack.currency,
        storeProductIds: pack.storeProductIds ?? {},
      })),

    /** Opens a Stripe Checkout for a pack: the page to send the player to. */
    async checkout(
      userId: string,
      packId: string,
      urls: { readonly successUrl: string; readonly cancelUrl: string },
    ): Promise<{ paymentId: string; checkoutUrl: string }> {
      if (!packs().some((pack) => pack.id === packId)) throw packNotFound(packId);
      const payment = await asPlayerInHouse(userId, (orgId) =>
        payments.createCheckout({ orgId, userId, productId: packId, provider: 'stripe', ...urls }),
      );
      return { paymentId: payment.id, checkoutUrl: payment.checkoutUrl as string };
    },

    /**
     * A purchase made in the App Store or Google Play, posted by the Flutter app: verified by the
     * payments module (Apple's signature chain, Play's API), credited once.
     */
    async claimStorePurchase(userId: string, provider: 'apple' | 'google-play', proof: StorePurchaseProof) {
      const result = await asPlayerInHouse(userId, (orgId) =>
        payments.claimPurchase(provider, proof, { orgId, userId }),
      );
      if (result.payment.unit !== COINS) throw packNotFound(result.payment.productId ?? '');
      return {
        purchase: toPurchase(result.payment),
        duplicate: result.duplicate,
        balance: await coins.balance(userId),
      };
    },

    /** The player's purchases of coins, newest first. */
    purchases: (userId: string) =>
      asPlayerInHouse(userId, async () =>
        (await payments.payments({ userId, limit: 50 }))
          .filter((payment) => payment.unit === COINS)
          .map(toPurchase),
      ),
  };
}

export type Shop = ReturnType<typeof createShop>;
