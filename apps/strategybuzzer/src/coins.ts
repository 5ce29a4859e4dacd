import { type Clock, type Database, type LedgerService, type PaymentsService, tenantSettings } from 'socle';
import { buzzerErrors } from './buzzer.errors.js';
import type { BuzzerStore, FreedSeat, House, RoomEnding } from './buzzer.store.js';
import type { BuzzerTables } from './buzzer.tables.js';

export interface CoinsOptions {
  readonly db: Database<BuzzerTables>;
  readonly ledger: LedgerService;
  /** The wallet is the payments module's (the account coin packs credit). */
  readonly payments: PaymentsService;
  readonly store: BuzzerStore;
  readonly clock: Clock;
  readonly starterCoins: number;
}

/** The ledger unit of the game's coins (the packs of the catalog credit it). */
export const COINS = 'coins';
const UNIT = COINS;

/** A transaction of the app's database (Socle exports no name for Kysely's). */
type Transaction = Parameters<Parameters<Database<BuzzerTables>['transaction']>[0]>[0];

/**
 * Coins in Socle's ledger: every player's wallet (never negative: the ledger's
 * `debits_must_not_exceed_credits` rule; the same account the payments module credits when a pack
 * is bought), a source starter coins are minted from and the revenue spends go to, all in the
 * organization that runs the game (the "house"; ledger accounts belong to an organization). Every
 * movement has an id derived from what it records, so a retry never moves coins twice.
 */
export function createCoins({ db, ledger, payments, store, clock, starterCoins }: CoinsOptions) {
  const inHouse = async <T>(userId: string, work: (trx: Transaction, house: House) => Promise<T>) => {
    const house = await store.house();
    if (house === undefined) throw buzzerErrors.notSetUp();
    return db.transaction((trx) => work(trx, house), {
      settings: tenantSettings({ tenantId: house.orgId, userId }),
    });
  };

  /** The player's wallet, opened with the starter coins on first use (once, even when raced). */
  async function wallet(userId: string): Promise<string> {
    const known = (await store.player(userId))?.walletAccountId;
    if (known) return known;
    return inHouse(userId, async (trx, house) => {
      // The player's row is locked by this update until commit: a concurrent first use waits,
      // then finds the wallet set and opens nothing.
      const locked = await trx
        .updateTable('strategybuzzer.players')
        .set((eb) => ({ wallet_account_id: eb.ref('wallet_account_id') }))
        .where('user_id', '=', userId)
        .returning('wallet_account_id')
        .executeTakeFirst();
      if (locked === undefined) throw new Error(`player ${userId} has no profile`);
      if (locked.wallet_account_id !== null) return locked.wallet_account_id;
      // The payments module's wallet of the player (opened here, as the player): purchases
      // credit it, spends debit it.
      const id = await payments.wallet(trx, userId, UNIT);
      await trx
        .updateTable('strategybuzzer.players')
        .set({ wallet_account_id: id })
        .where('user_id', '=', userId)
        .execute();
      if (starterCoins > 0)
        await ledger.transfer(trx, {
          id: `starter:${userId}`,
          debitAccountId: house.sourceAccountId,
          creditAccountId: id,
          amount: BigInt(starterCoins),
          code: 'starter',
        });
      return id;
    });
  }

  /** Gives one entry fee back in `trx`; whether coins moved back to the player. */
  async function refundEntry(trx: Transaction, holdId: string): Promise<boolean> {
    const posted = `${holdId}:post`;
    const taken = await ledger.getTransfer(trx, posted).then(
      () => true,
      (error: unknown) => {
        if ((error as { code?: string }).code === 'ledger.transfer_not_found') return false;
        throw error;
      },
    );
    if (taken) {
      await ledger.reverse(trx, { id: `${holdId}:refund`, transferId: posted, code: 'premium_refund' });
      return true;
    }
    // Never posted (the room ended before it took the fees): the hold goes, unless it went
    // already (voided with the ticket, or expired).
    try {
      await ledger.void(trx, { id: `${holdId}:void`, holdId });
      return true;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'ledger.hold_already_resolved' || code === 'ledger.hold_expired') return false;
      throw error;
    }
  }

  return {
    wallet,

    /** The organization `orgId` runs the game from now on: its accounts hold the coins. */
    async claim(orgId: string, userId: string): Promise<void> {
      const existing = await store.house();
      if (existing !== undefined) {
        if (existing.orgId === orgId) return;
        throw buzzerErrors.claimed();
      }
      await db.transaction(
        async (trx) => {
          const source = await ledger.createAccount(trx, {
            owner: { kind: 'system' },
            unit: UNIT,
            code: 'coins-source',
          });
          const revenue = await ledger.createAccount(trx, {
            owner: { kind: 'system' },
            unit: UNIT,
            code: 'coins-revenue',
          });
          const inserted = await trx
            .insertInto('strategybuzzer.house')
            .values({
              id: 1,
              org_id: orgId,
              source_account_id: source.id,
              revenue_account_id: revenue.id,
              claimed_by: userId,
              claimed_at: clock.now(),
            })
            .onConflict((conflict) => conflict.column('id').doNothing())
            .executeTakeFirst();
          // Claimed meanwhile by someone else: roll the accounts back with it.
          if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) !== 1) throw buzzerErrors.claimed();
        },
        { settings: tenantSettings({ tenantId: orgId, userId }) },
      );
    },

    /** Coins the player can spend now (held entries excluded). */
    async balance(userId: string): Promise<number> {
      const id = await wallet(userId);
      return inHouse(userId, async (trx) => Number((await ledger.balance(trx, id)).available));
    },

    /** Spends coins on something (`id` names it: the same id spends once). 422 `ledger.insufficient_funds` when short. */
    async spend(userId: string, id: string, amount: number, code: string): Promise<void> {
      const from = await wallet(userId);
      await inHouse(userId, (trx, house) =>
        ledger.transfer(trx, {
          id,
          debitAccountId: from,
          creditAccountId: house.revenueAccountId,
          amount: BigInt(amount),
          code,
        }),
      );
    },

    /** Reserves a room's entry fee until the room starts (posted) or the ticket goes (voided). */
    async hold(userId: string, id: string, amount: number): Promise<void> {
      const from = await wallet(userId);
      await inHouse(userId, (trx, house) =>
        ledger.hold(trx, {
          id,
          debitAccountId: from,
          creditAccountId: house.revenueAccountId,
          amount: BigInt(amount),
          code: 'premium_entry',
          timeoutSeconds: 3600,
        }),
      );
    },
    post: (userId: string, holdId: string) =>
      inHouse(userId, (trx) => ledger.post(trx, { id: `${holdId}:post`, holdId })),

    /**
     * What a room cut short (its host lost or stopped, a start that failed) does as it ends: in
     * the transaction that ends it, each freed seat's entry fee goes back to its player, a
     * reversal of the fee's posting (`{hold}:refund`, linked to `{hold}:post`), or the hold
     * voided if the room never took it. The store hands a seat to one end only, and the ids make
     * a replay move nothing twice. `refunded` lists the players whose coins came back (to tell
     * them their balance once the end committed). Undefined when no organization runs the game
     * (then no entry was ever held).
     */
    async refunds(): Promise<(RoomEnding & { readonly refunded: string[] }) | undefined> {
      const house = await store.house();
      if (house === undefined) return undefined;
      const refunded: string[] = [];
      return {
        settings: tenantSettings({ tenantId: house.orgId }),
        refunded,
        async onEnded(trx, seats: readonly FreedSeat[]) {
          for (const { userId, holdId } of seats) {
            if (holdId === undefined) continue;
            if (await refundEntry(trx, holdId)) refunded.push(userId);
          }
        },
      };
    },
    release: (userId: string, holdId: string) =>
      inHouse(userId, (trx) => ledger.void(trx, { id: `${holdId}:void`, holdId })),

    /** Coins the game has taken in (its revenue account), for the admin. */
    async revenue(userId: string): Promise<number> {
      return inHouse(userId, async (trx, house) =>
        Number((await ledger.balance(trx, house.revenueAccountId)).posted),
      );
    },
  };
}

export type Coins = ReturnType<typeof createCoins>;
