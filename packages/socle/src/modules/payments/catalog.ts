import { paymentsErrors } from './payments.errors.js';

/** A one-off pack: pay once, receive `credits` of `unit` ("500 coins for 4.99 EUR"). */
export interface PackProduct {
  readonly id: string;
  readonly kind: 'pack';
  readonly name: string;
  /** Minor units of `currency` (499 = 4.99 EUR). */
  readonly price: number;
  readonly currency: string;
  readonly credits: number;
  /** A ledger app unit (`coins`, `credits`). */
  readonly unit: string;
  /** See {@link ProductBook}. */
  readonly book?: ProductBook;
  /**
   * The product's id in the app stores, when it differs from `id` (`com.example.coins500`):
   * in-app purchases posted to `POST /payments/purchases/{apple|google-play}` are matched by it.
   */
  readonly storeProductIds?: Readonly<Partial<Record<'apple' | 'google-play', string>>>;
}

/** A subscription: pay every month, receive `credits` of `unit` at each paid period. */
export interface SubscriptionProduct {
  readonly id: string;
  readonly kind: 'subscription';
  readonly name: string;
  readonly price: number;
  readonly currency: string;
  readonly interval: 'month' | 'year';
  /** Credits granted at each paid invoice (the first included). */
  readonly credits: number;
  readonly unit: string;
  /** See {@link ProductBook}. */
  readonly book?: ProductBook;
  /**
   * The subscription's product id in the app stores (Apple auto-renewable subscription, Play
   * subscription), when it differs from `id`: its periods grant `credits` like paid invoices.
   */
  readonly storeProductIds?: Readonly<Partial<Record<'apple' | 'google-play', string>>>;
}

/**
 * Where the buyer's credits are held. `organization` (the default): a wallet in the
 * organization that sells (a member's credits in their firm). `platform`: the buyer's own
 * account outside any organization (the ledger's platform book: a player's coins in a game,
 * which belong to the player); the organization still records the sale. Every product of a
 * unit says the same.
 */
export type ProductBook = 'organization' | 'platform';

export type Product = PackProduct | SubscriptionProduct;

/** The products an app sells, by id. */
export interface Catalog {
  readonly products: readonly Product[];
  product(id: string): Product | undefined;
  /** Whether the credits of `unit` are held outside organizations (products of `book: 'platform'`). */
  inPlatformBook(unit: string): boolean;
  /** The pack or subscription sold in `store` as `storeProductId` (its `storeProductIds[store]`, else its `id`). */
  storeProduct(store: string, storeProductId: string): Product | undefined;
}

const PRODUCT_ID = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const CURRENCY = /^[A-Z]{3}$/;
const UNIT = /^[a-z][a-z0-9_]{0,31}$/;

/**
 * Checks a catalog once, at start: a bad product is a programming error, thrown with its index.
 *
 * @example
 * const catalog = defineCatalog([
 *   { id: 'coins-500', kind: 'pack', name: '500 coins', price: 499, currency: 'EUR', credits: 500, unit: 'coins' },
 *   { id: 'pro-monthly', kind: 'subscription', name: 'Pro', price: 1900, currency: 'EUR',
 *     interval: 'month', credits: 1000, unit: 'credits' },
 * ]);
 */
export function defineCatalog(products: readonly Product[]): Catalog {
  const byId = new Map<string, Product>();
  products.forEach((product, index) => {
    const bad = (message: string) =>
      paymentsErrors.invalidInput('payments.invalid_catalog', `catalog/${index}`, message);
    if (!PRODUCT_ID.test(product.id)) throw bad('id must be 1 to 64 of a-z 0-9 _ . -');
    if (byId.has(product.id)) throw bad(`id ${product.id} is declared twice`);
    if (!Number.isSafeInteger(product.price) || product.price <= 0)
      throw bad('price must be a positive integer of minor units');
    if (!CURRENCY.test(product.currency)) throw bad('currency must be an ISO 4217 code such as EUR');
    if (!Number.isSafeInteger(product.credits) || product.credits < 0)
      throw bad('credits must be a non-negative integer');
    if (!UNIT.test(product.unit)) throw bad('unit must be a lower-case ledger app unit such as coins');
    const book = product.book ?? 'organization';
    if (book !== 'organization' && book !== 'platform') throw bad('book must be organization or platform');
    const other = [...byId.values()].find((known) => known.unit === product.unit);
    if (other !== undefined && (other.book ?? 'organization') !== book)
      throw bad(
        `book must be ${other.book ?? 'organization'}, as for ${other.id}: a unit's credits are in one book`,
      );
    byId.set(product.id, Object.freeze({ ...product }));
  });
  const platformUnits = new Set(
    [...byId.values()].filter((product) => product.book === 'platform').map((product) => product.unit),
  );
  const inStore = (store: string, storeProductId: string) =>
    [...byId.values()].find(
      (product) => (product.storeProductIds?.[store as 'apple'] ?? product.id) === storeProductId,
    );
  return Object.freeze({
    products: [...byId.values()],
    product: (id: string) => byId.get(id),
    inPlatformBook: (unit: string) => platformUnits.has(unit),
    storeProduct: inStore,
  });
}
