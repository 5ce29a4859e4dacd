import {
  type Clock,
  type Database,
  type LedgerService,
  ledgerPlatformSettings,
  type PaymentsService,
} from 'socle';
import { buzzerErrors } from './buzzer.errors.js';
import type { BuzzerStore, FreedSeat, RoomEnding } from './buzzer.store.js';
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

/** The game's own accounts of coins (outside organizations): by their ledger code. */
const SOURCE_CODE = 'strategybuzzer.source';
const REVENUE_CODE = 'strategybuzzer.revenue';

/**
 * Coins in Socle's ledger, outside any organization (the ledger's platform book): they belong to
 * the players. Every player's wallet (never negative: the ledger's `debits_must_not_exceed_credits`
 * rule; the same account the payments module credits when a pack is bought), the game's source
 * starter coins are minted from and its revenue spends go to. Every movement has an id derived
 * from what it records, so a retry never moves coins twice.
 */
export function createCoins({ db, ledger, payments, store, clock, starterCoins }: CoinsOptions) {
  /** The game's source and revenue accounts, once known (they never change). */
  let houseAccounts: { readonly source: string; readonly revenue: string } | undefined;
  const accountsOf = async (trx: Transaction) => {
    if (houseAccounts !== undefined) return houseAccounts;
    const [source, revenue] = [
      await ledger.platformAccountOf(trx, { userId: null, unit: UNIT, code: SOURCE_CODE }),
      await ledger.platformAccountOf(trx, { userId: null, unit: UNIT, code: REVENUE_CODE }),
    ];
    const found = { source: source.id, revenue: revenue.id };
    await db.afterCommit(trx, async () => {
      houseAccounts = found;
    });
    return found;
  };
  /** `work` in the ledger's platform book, acting as the player. */
  const inPlatform = <T>(
    userId: string,
    work: (trx: Transaction, house: { readonly source: string; readonly revenue: string }) => Promise<T>,
  ) =>
    db.transaction(async (trx) => work(trx, await accountsOf(trx)), {
      settings: ledgerPlatformSettings({ userId }),
    });

  /** The player's wallet, opened with the starter coins on first use (once, even when raced). */
  async function wallet(userId: string): Promise<string> {
    const known = (await store.player(userId))?.walletAccountId;
    if (known) return known;
    return inPlatform(userId, async (trx, house) => {
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
      // The payments module's wallet of the player (the coin packs are sold with `book:
      // 'platform'`: the player's account outside organizations): purchases credit it, spends
      // debit it.
      const id = await payments.wallet(trx, userId, UNIT);
      await trx
        .updateTable('strategybuzzer.players')
        .set({ wallet_account_id: id })
        .where('user_id', '=', userId)
        .execute();
      if (starterCoins > 0)
        await ledger.transfer(trx, {
          id: `starter:${userId}`,
          debitAccountId: house.source,
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

    /**
     * The organization `orgId` runs the game from now on: its admins are the game's, and it sells
     * the coin packs (the coins themselves are the players', outside organizations).
     */
    async claim(orgId: string, userId: string): Promise<void> {
      const existing = await store.house();
      if (existing !== undefined) {
        if (existing.orgId === orgId) return;
        throw buzzerErrors.claimed();
      }
      if (!(await store.claimHouse({ orgId }, userId, clock.now()))) {
        // Claimed meanwhile: by this organization (a retry) is fine.
        if ((await store.house())?.orgId !== orgId) throw buzzerErrors.claimed();
      }
    },

    /** Coins the player can spend now (held entries excluded). */
    async balance(userId: string): Promise<number> {
      const id = await wallet(userId);
      return inPlatform(userId, async (trx) => Number((await ledger.balance(trx, id)).available));
    },

    /** Spends coins on something (`id` names it: the same id spends once). 422 `ledger.insufficient_funds` when short. */
    async spend(userId: string, id: string, amount: number, code: string): Promise<void> {
      const from = await wallet(userId);
      await inPlatform(userId, (trx, house) =>
        ledger.transfer(trx, {
          id,
          debitAccountId: from,
          creditAccountId: house.revenue,
          amount: BigInt(amount),
          code,
        }),
      );
    },

    /** Reserves a room's entry fee until the room starts (posted) or the ticket goes (voided). */
    async hold(userId: string, id: string, amount: number): Promise<void> {
      const from = await wallet(userId);
      await inPlatform(userId, (trx, house) =>
        ledger.hold(trx, {
          id,
          debitAccountId: from,
          creditAccountId: house.revenue,
          amount: BigInt(amount),
          code: 'premium_entry',
          timeoutSeconds: 3600,
        }),
      );
    },
    post: (userId: string, holdId: string) =>
      inPlatform(userId, (trx) => ledger.post(trx, { id: `${holdId}:post`, holdId })),

    /**
     * What a room cut short (its host lost or stopped, a start that failed) does as it ends: in
     * the transaction that ends it, each freed seat's entry fee goes back to its player, a
     * reversal of the fee's posting (`{hold}:refund`, linked to `{hold}:post`), or the hold
     * voided if the room never took it. The store hands a seat to one end only, and the ids make
     * a replay move nothing twice. `refunded` lists the players whose coins came back (to tell
     * them their balance once the end committed).
     */
    async refunds(): Promise<RoomEnding & { readonly refunded: string[] }> {
      const refunded: string[] = [];
      return {
        settings: ledgerPlatformSettings(),
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
      inPlatform(userId, (trx) => ledger.void(trx, { id: `${holdId}:void`, holdId })),

    /** Coins the game has taken in (its revenue account), for the admin. */
    async revenue(userId: string): Promise<number> {
      return inPlatform(userId, async (trx, house) =>
        Number((await ledger.balance(trx, house.revenue)).posted),
      );
    },
  };
}

export type Coins = ReturnType<typeof createCoins>;
