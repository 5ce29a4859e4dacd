import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createLedgerModule,
  createManualClock,
  type LedgerService,
  type LedgerTransaction,
  ledgerPlatformSettings,
  tenantSettings,
} from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createLedgerPrivacy } from '../src/modules/ledger/ledger.privacy.js';
import { ledgerStore } from '../src/modules/ledger/ledger.store.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createPrivacyModule } from '../src/modules/privacy/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle, findTenantIsolationProblems, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

/**
 * Accounts outside any organization (the platform's book): a game's coins belong to the player,
 * not to an organization the app would have to invent to hold them.
 */
describeEachDatabase('Ledger accounts outside organizations', (target) => {
  let socle: TestSocle;
  let ledger: LedgerService;
  const clock = createManualClock(new Date('2026-06-01T08:00:00Z'));
  const ledgerModule = createLedgerModule();
  let counter = 0;
  const nextId = (prefix: string) => `${prefix}-${++counter}`;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      clock,
      config: { jobsQueues: [] },
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createPrivacyModule(),
        ledgerModule,
      ],
    });
    ({ ledger } = socle.servicesOf(ledgerModule));
  });
  afterAll(() => socle?.dispose());

  /** Service code working in the platform's book (for `userId`, when given). */
  const asService = <T>(work: (trx: LedgerTransaction) => Promise<T>, userId?: string) =>
    socle.db.transaction((trx) => work(trx), {
      settings: ledgerPlatformSettings(userId === undefined ? {} : { userId }),
    });
  /** A person's own request: only their user id, no organization, no platform flag. */
  const asUser = <T>(userId: string, work: (trx: LedgerTransaction) => Promise<T>) =>
    socle.db.transaction((trx) => work(trx), { settings: tenantSettings({ userId }) });

  /** A unit of its own per test, so the platform's source account is each test's. */
  async function playerWithCoins(unit: string, coins: number) {
    const player = await socle.newUser();
    const { wallet, source } = await asService(async (trx) => {
      const wallet = await ledger.platformAccountOf(trx, { userId: player.userId, unit, code: 'wallet' });
      const source = await ledger.platformAccountOf(trx, { userId: null, unit, code: 'source' });
      await ledger.transfer(trx, {
        id: `starter:${player.userId}:${unit}`,
        debitAccountId: source.id,
        creditAccountId: wallet.id,
        amount: coins,
      });
      return { wallet, source };
    });
    return { player, wallet, source };
  }

  it('keeps its tables under forced row-level security', async () => {
    expect(await findTenantIsolationProblems(socle.db, socle.modules)).toEqual([]);
  });

  it("opens a player's wallet with no organization, once, and moves coins by service code", async () => {
    const { player, wallet, source } = await playerWithCoins('coins_a', 100);
    expect(wallet.owner).toEqual({ kind: 'user', userId: player.userId });
    expect(wallet.rule).toBe('debits_must_not_exceed_credits');
    expect(source.owner).toEqual({ kind: 'system' });
    // The same owner, unit and code: the same account (a second first use opens nothing).
    const again = await asService((trx) =>
      ledger.platformAccountOf(trx, { userId: player.userId, unit: 'coins_a', code: 'wallet' }),
    );
    expect(again.id).toBe(wallet.id);

    const revenue = await asService((trx) =>
      ledger.platformAccountOf(trx, { userId: null, unit: 'coins_a', code: 'revenue' }),
    );
    // One transfer (the one-statement hot path), then a batch (the general path): both in the book.
    await asService((trx) =>
      ledger.transfer(trx, {
        id: 'spend:1',
        debitAccountId: wallet.id,
        creditAccountId: revenue.id,
        amount: 30,
      }),
    );
    await asService((trx) =>
      ledger.transfer(trx, [
        { id: 'spend:2', debitAccountId: wallet.id, creditAccountId: revenue.id, amount: 20 },
        { id: 'spend:3', debitAccountId: wallet.id, creditAccountId: revenue.id, amount: 5 },
      ]),
    );
    // A replay answers the original and moves nothing.
    const [replayed] = await asService((trx) =>
      ledger.transfer(trx, {
        id: 'spend:1',
        debitAccountId: wallet.id,
        creditAccountId: revenue.id,
        amount: 30,
      }),
    );
    expect(replayed?.amount).toBe(30n);
    // Never negative, as in an organization.
    await expect(
      asService((trx) =>
        ledger.transfer(trx, {
          id: 'spend:4',
          debitAccountId: wallet.id,
          creditAccountId: revenue.id,
          amount: 46,
        }),
      ),
    ).rejects.toMatchObject({ code: 'ledger.insufficient_funds' });
    expect((await asService((trx) => ledger.balance(trx, wallet.id))).posted).toBe(45n);
    expect((await asService((trx) => ledger.balance(trx, source.id))).posted).toBe(-100n);
    expect((await asService((trx) => ledger.balance(trx, revenue.id))).posted).toBe(55n);
    expect((await ledger.check()).ok).toBe(true);
  });

  it('a player reads only their own accounts and history, and posts nothing', async () => {
    const alice = await playerWithCoins('coins_b', 100);
    const bob = await playerWithCoins('coins_b', 50);
    const mine = await asUser(alice.player.userId, (trx) => ledger.accounts(trx, {}));
    expect(mine.map((account) => account.id)).toEqual([alice.wallet.id]);
    expect((await asUser(alice.player.userId, (trx) => ledger.balance(trx, alice.wallet.id))).posted).toBe(
      100n,
    );
    const history = await asUser(alice.player.userId, (trx) => ledger.history(trx, alice.wallet.id, {}));
    expect(history.transfers.map((transfer) => transfer.id)).toEqual([
      `starter:${alice.player.userId}:coins_b`,
    ]);
    // Another player's wallet and the platform's own accounts are not found, as another
    // organization's are.
    for (const other of [bob.wallet.id, alice.source.id])
      await expect(asUser(alice.player.userId, (trx) => ledger.account(trx, other))).rejects.toMatchObject({
        code: 'ledger.account_not_found',
      });
    const seenTransfers = await asUser(alice.player.userId, (trx) => ledger.transfers(trx, {}));
    expect(seenTransfers.transfers.map((transfer) => transfer.id)).toEqual([
      `starter:${alice.player.userId}:coins_b`,
    ]);
    // A person's own request moves nothing, even from their own wallet.
    await expect(
      asUser(alice.player.userId, (trx) =>
        ledger.transfer(trx, {
          id: nextId('self'),
          debitAccountId: alice.wallet.id,
          creditAccountId: bob.wallet.id,
          amount: 1,
        }),
      ),
    ).rejects.toMatchObject({ code: 'ledger.account_not_found' });
    // Forgetting every setting reads nothing.
    const forgotten = await socle.db.transaction((trx) => ledger.accounts(trx, {}));
    expect(forgotten).toEqual([]);
  });

  it("keeps organizations' books and the platform's apart", async () => {
    const { wallet } = await playerWithCoins('coins_c', 10);
    const tenant = await socle.newTenant();
    const inTenant = <T>(work: (trx: LedgerTransaction) => Promise<T>) =>
      socle.db.transaction((trx) => work(trx), { settings: tenantSettings({ tenantId: tenant.id }) });
    const orgAccount = await inTenant((trx) =>
      ledger.createAccount(trx, { owner: { kind: 'system' }, unit: 'coins_c', code: 'org' }),
    );
    // The organization does not see the platform's accounts, nor the platform the organization's.
    await expect(inTenant((trx) => ledger.account(trx, wallet.id))).rejects.toMatchObject({
      code: 'ledger.account_not_found',
    });
    expect((await inTenant((trx) => ledger.accounts(trx, {}))).map((account) => account.id)).toEqual([
      orgAccount.id,
    ]);
    await expect(
      asService((trx) =>
        ledger.transfer(trx, {
          id: 'cross:1',
          debitAccountId: wallet.id,
          creditAccountId: orgAccount.id,
          amount: 1,
        }),
      ),
    ).rejects.toMatchObject({ code: 'ledger.account_not_found' });
    // Transfer ids are per book: the same id in the organization is another transfer.
    const other = await inTenant((trx) =>
      ledger.createAccount(trx, { owner: { kind: 'system' }, unit: 'coins_c', code: 'other' }),
    );
    await inTenant((trx) =>
      ledger.transfer(trx, {
        id: `starter:${wallet.owner.kind}`,
        debitAccountId: orgAccount.id,
        creditAccountId: other.id,
        amount: 7,
      }),
    );
    expect((await inTenant((trx) => ledger.balance(trx, other.id))).posted).toBe(7n);
    // A person's account outside organizations needs no membership: an organization's transaction
    // may not open one for a non-member.
    const stranger = await socle.newUser();
    await expect(
      inTenant((trx) =>
        ledger.createAccount(trx, { owner: { kind: 'user', userId: stranger.userId }, unit: 'coins_c' }),
      ),
    ).rejects.toMatchObject({ code: 'ledger.owner_not_member' });
    expect((await ledger.check()).ok).toBe(true);
  });

  it('GET /ledger/me: your own accounts outside organizations and their transfers, paged newest first', async () => {
    const alice = await playerWithCoins('coins_me', 100);
    const bob = await playerWithCoins('coins_me', 50);
    // A currency account of Alice's too, in its scale (EUR: 2 digits), with a hold on it.
    const euros = await asService(async (trx) => {
      const wallet = await ledger.platformAccountOf(trx, {
        userId: alice.player.userId,
        unit: 'EUR',
        code: 'wallet',
      });
      const source = await ledger.platformAccountOf(trx, { userId: null, unit: 'EUR', code: 'source' });
      await ledger.transfer(trx, {
        id: 'eur:1',
        debitAccountId: source.id,
        creditAccountId: wallet.id,
        amount: 1250,
      });
      await ledger.hold(trx, {
        id: 'eur:hold',
        debitAccountId: wallet.id,
        creditAccountId: source.id,
        amount: 5,
        timeoutSeconds: 3600,
      });
      return wallet;
    });
    // Alice pays Bob twice: her side is shown, Bob's account is not named.
    for (const id of ['gift:1', 'gift:2'])
      await asService((trx) =>
        ledger.transfer(trx, {
          id,
          debitAccountId: alice.wallet.id,
          creditAccountId: bob.wallet.id,
          amount: 3,
        }),
      );
    // Between two of her own accounts: both sides are hers, and it is listed once.
    const savings = await asService(async (trx) => {
      const account = await ledger.platformAccountOf(trx, {
        userId: alice.player.userId,
        unit: 'coins_me',
        code: 'savings',
      });
      await ledger.transfer(trx, {
        id: 'move:1',
        debitAccountId: alice.wallet.id,
        creditAccountId: account.id,
        amount: 2,
      });
      return account;
    });
    // Bob's own history, and an organization's account of Alice's, never appear in hers, even
    // when her request names that organization.
    await asService((trx) =>
      ledger.transfer(trx, {
        id: 'bob:only',
        debitAccountId: bob.wallet.id,
        creditAccountId: bob.source.id,
        amount: 1,
      }),
    );
    const aliceUser = { userId: alice.player.userId, token: alice.player.token };
    const tenant = await socle.newTenant({ owner: alice.player });
    const orgAccount = await socle.db.transaction(
      (trx) =>
        ledger.createAccount(trx, { owner: { kind: 'user', userId: alice.player.userId }, unit: 'coins_me' }),
      { settings: tenantSettings({ tenantId: tenant.id }) },
    );

    const get = (query: string, headers: Record<string, string> = {}) =>
      socle.app.inject({
        method: 'GET',
        url: `/ledger/me${query}`,
        headers: { authorization: `Bearer ${aliceUser.token}`, ...headers },
      });
    const first = await get('?limit=2', { 'x-org-id': tenant.id });
    expect(first.statusCode).toBe(200);
    const book = first.json();
    expect(book.accounts).toEqual(
      expect.arrayContaining([
        {
          id: euros.id,
          unit: 'EUR',
          scale: 2,
          code: 'wallet',
          balance: { posted: '12.50', available: '12.45' },
        },
        {
          id: alice.wallet.id,
          unit: 'coins_me',
          scale: 0,
          code: 'wallet',
          balance: { posted: '92', available: '92' },
        },
        {
          id: savings.id,
          unit: 'coins_me',
          scale: 0,
          code: 'savings',
          balance: { posted: '2', available: '2' },
        },
      ]),
    );
    expect(book.accounts).toHaveLength(3);
    expect(book.accounts.map((account: { id: string }) => account.id)).not.toContain(orgAccount.id);
    expect(book.transfers.map((transfer: { id: string }) => transfer.id)).toEqual(['move:1', 'gift:2']);
    expect(book.transfers[0]).toMatchObject({ debitAccountId: alice.wallet.id, creditAccountId: savings.id });
    expect(book.transfers[1]).toMatchObject({
      kind: 'transfer',
      debitAccountId: alice.wallet.id,
      creditAccountId: null,
      amount: '3',
      unit: 'coins_me',
    });
    // The next pages, until the last: every transfer touching her accounts once, newest first.
    const ids = book.transfers.map((transfer: { id: string }) => transfer.id);
    let cursor: string | null = book.nextCursor;
    while (cursor !== null) {
      const page = (await get(`?limit=2&cursor=${encodeURIComponent(cursor)}`)).json();
      ids.push(...page.transfers.map((transfer: { id: string }) => transfer.id));
      cursor = page.nextCursor;
    }
    expect(ids).toEqual([
      'move:1',
      'gift:2',
      'gift:1',
      'eur:hold',
      'eur:1',
      `starter:${alice.player.userId}:coins_me`,
    ]);
    const hold = (await get('?limit=200'))
      .json()
      .transfers.find((transfer: { id: string }) => transfer.id === 'eur:hold');
    expect(hold).toMatchObject({
      kind: 'hold',
      amount: '0.05',
      debitAccountId: euros.id,
      creditAccountId: null,
    });

    // Bob sees his own, not Alice's.
    const bobBook = (
      await socle.app.inject({
        method: 'GET',
        url: '/ledger/me',
        headers: { authorization: `Bearer ${bob.player.token}` },
      })
    ).json();
    expect(bobBook.accounts.map((account: { id: string }) => account.id)).toEqual([bob.wallet.id]);
    expect(bobBook.transfers.map((transfer: { id: string }) => transfer.id)).toEqual([
      'bob:only',
      'gift:2',
      'gift:1',
      `starter:${bob.player.userId}:coins_me`,
    ]);
    // Row-level security, not the query, keeps a person to their own: the platform's source
    // account (debited for both starters, credited by Bob) read as Alice gives only her starter,
    // and Bob's wallet nothing; as Bob, his.
    const transfersOf = (userId: string, accountId: string) =>
      asUser(userId, (trx) => ledgerStore.listPlatformTransfersOf(trx, [accountId], undefined, 50)).then(
        (rows) => rows.map((row) => row.id),
      );
    expect(await transfersOf(alice.player.userId, alice.source.id)).toEqual([
      `starter:${alice.player.userId}:coins_me`,
    ]);
    expect(await transfersOf(alice.player.userId, bob.wallet.id)).toEqual(['gift:2', 'gift:1']);
    expect(await transfersOf(bob.player.userId, bob.source.id)).toEqual([
      'bob:only',
      `starter:${bob.player.userId}:coins_me`,
    ]);
    // A person with no account outside organizations: an empty book.
    const stranger = await socle.newUser();
    const empty = await socle.app.inject({
      method: 'GET',
      url: '/ledger/me',
      headers: { authorization: `Bearer ${stranger.token}` },
    });
    expect(empty.json()).toEqual({ accounts: [], transfers: [], nextCursor: null });
    // Signed out: 401; a cursor this list did not give: 400 naming it.
    expect((await socle.app.inject({ method: 'GET', url: '/ledger/me' })).statusCode).toBe(401);
    const bad = await get('?cursor=not-a-cursor');
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'ledger.invalid_cursor' });
    expect(JSON.stringify(bad.json())).toContain('query/cursor');
  });

  it('holds in the platform book are posted, voided and expired', async () => {
    const { wallet } = await playerWithCoins('coins_d', 100);
    const revenue = await asService((trx) =>
      ledger.platformAccountOf(trx, { userId: null, unit: 'coins_d', code: 'revenue' }),
    );
    const hold = (id: string, timeoutSeconds = 60) =>
      asService((trx) =>
        ledger.hold(trx, {
          id,
          debitAccountId: wallet.id,
          creditAccountId: revenue.id,
          amount: 20,
          timeoutSeconds,
        }),
      );
    await hold('entry:1');
    await asService((trx) => ledger.post(trx, { id: 'entry:1:post', holdId: 'entry:1' }));
    await hold('entry:2');
    await asService((trx) => ledger.void(trx, { id: 'entry:2:void', holdId: 'entry:2' }));
    await hold('entry:3', 1);
    expect((await asService((trx) => ledger.balance(trx, wallet.id))).available).toBe(60n);
    clock.advance(2_000);
    expect(await ledger.expireHolds()).toBeGreaterThanOrEqual(1);
    const balance = await asService((trx) => ledger.balance(trx, wallet.id));
    expect(balance).toMatchObject({ posted: 80n, available: 80n, debitsPending: 0n });
    expect((await ledger.check()).ok).toBe(true);
  });

  it("privacy: export includes a person's accounts outside organizations, erasure pseudonymizes them", async () => {
    const { player, wallet, source } = await playerWithCoins('coins_e', 42);
    await asService((trx) =>
      ledger.transfer(trx, {
        id: nextId('gift'),
        debitAccountId: source.id,
        creditAccountId: wallet.id,
        amount: 8,
        metadata: { note: `for ${player.email}` },
      }),
    );
    const privacy = createLedgerPrivacy(socle.db);
    const subject = { userId: player.userId, email: player.email };
    const data = (await privacy.exportSubject(subject)) as {
      accounts: { id: string; orgId: string | null }[];
      transfers: { orgId: string | null; amount: string }[];
    };
    expect(data.accounts).toMatchObject([{ id: wallet.id, orgId: null }]);
    expect(data.transfers.map((transfer) => [transfer.orgId, transfer.amount])).toEqual([
      [null, '42'],
      [null, '8'],
    ]);
    await privacy.eraseSubject(subject);
    const erased = await asService((trx) => ledger.account(trx, wallet.id));
    expect(erased.owner).toEqual({ kind: 'erased' });
    expect(erased.balance.posted).toBe(50n);
    const history = await asService((trx) => ledger.history(trx, wallet.id, {}));
    expect(history.transfers.map((transfer) => transfer.metadata)).toEqual([{}, {}]);
    // The person no longer reads it: it is nobody's now.
    expect(await asUser(player.userId, (trx) => ledger.accounts(trx, {}))).toEqual([]);
    expect((await ledger.check()).ok).toBe(true);
  });
});
