import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Account,
  createLedgerModule,
  createManualClock,
  type LedgerOperation,
  type LedgerService,
  type LedgerTransaction,
  type NewAccount,
  tenantSettings,
  withOwnerTransaction,
} from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createPrivacyModule } from '../src/modules/privacy/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import {
  createTestSocle,
  findTenantIsolationProblems,
  type TestSocle,
  type TestTenant,
} from '../src/testing/index.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

const OPERATOR_TOKEN = 'operator-token-of-the-ledger-suite-0123456789';

describeEachDatabase('Ledger', (target) => {
  let socle: TestSocle;
  let ledger: LedgerService;
  const clock = createManualClock(new Date('2026-06-01T08:00:00Z'));
  const ledgerModule = createLedgerModule();
  let counter = 0;
  const nextId = (prefix: string) => `${prefix}-${++counter}`;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      clock,
      // No worker: jobs (the hourly reconciliation) run when a test calls runDueJobs, in the test.
      config: { jobsQueues: [] },
      settings: { identity: { operatorToken: OPERATOR_TOKEN } },
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

  /** Runs `work` in a transaction acting in `tenant`, as a module's code would. */
  const inTenant = <T>(tenant: Pick<TestTenant, 'id'>, work: (trx: LedgerTransaction) => Promise<T>) =>
    socle.db.transaction((trx) => work(trx), { settings: tenantSettings({ tenantId: tenant.id }) });

  const open = (tenant: TestTenant, account: Partial<NewAccount> = {}) =>
    inTenant(tenant, (trx) =>
      ledger.createAccount(trx, { owner: { kind: 'system' }, unit: 'credits', ...account }),
    );

  /** A system account that may go negative (the source of credits) and a wallet that may not. */
  async function sourceAndWallet(tenant: TestTenant, unit = 'credits') {
    const source = await open(tenant, { unit, code: 'source' });
    const wallet = await open(tenant, {
      unit,
      owner: { kind: 'user', userId: tenant.owner.userId },
      rule: 'debits_must_not_exceed_credits',
      code: 'wallet',
    });
    return { source, wallet };
  }

  const balanceOf = (tenant: TestTenant, account: Account) =>
    inTenant(tenant, (trx) => ledger.balance(trx, account.id));

  it('keeps its tables under forced row-level security', async () => {
    expect(await findTenantIsolationProblems(socle.db, socle.modules)).toEqual([]);
  });

  describe('units', () => {
    it('takes the ISO 4217 exponent of a currency and refuses another', async () => {
      const tenant = await socle.newTenant();
      expect((await open(tenant, { unit: 'XOF' })).scale).toBe(0);
      expect((await open(tenant, { unit: 'EUR' })).scale).toBe(2);
      expect((await open(tenant, { unit: 'BHD' })).scale).toBe(3);
      expect((await open(tenant, { unit: 'sats' })).scale).toBe(0);
      await expect(open(tenant, { unit: 'EUR', scale: 0 })).rejects.toMatchObject({
        code: 'ledger.invalid_unit',
      });
      await expect(open(tenant, { unit: 'ABC' })).rejects.toMatchObject({ code: 'ledger.invalid_unit' });
      const fixed = await open(tenant, { id: crypto.randomUUID() });
      await expect(open(tenant, { id: fixed.id })).rejects.toMatchObject({
        code: 'ledger.account_exists',
        status: 409,
      });
      await expect(open(tenant, { unit: 'Credits!' })).rejects.toMatchObject({ code: 'ledger.invalid_unit' });
    });
  });

  describe('transfers', () => {
    it('moves value double-entry and keeps each unit summing to zero', async () => {
      const tenant = await socle.newTenant();
      const { source, wallet } = await sourceAndWallet(tenant);
      const [transfer] = await inTenant(tenant, (trx) =>
        ledger.transfer(trx, {
          id: nextId('buy'),
          debitAccountId: source.id,
          creditAccountId: wallet.id,
          amount: 500n,
          code: 'purchase',
          metadata: { stripeSession: 'cs_1' },
        }),
      );
      expect(transfer).toMatchObject({ kind: 'transfer', amount: 500n, unit: 'credits', code: 'purchase' });
      expect(await balanceOf(tenant, wallet)).toMatchObject({
        posted: 500n,
        available: 500n,
        creditsPosted: 500n,
      });
      expect(await balanceOf(tenant, source)).toMatchObject({ posted: -500n, debitsPosted: 500n });
      expect((await ledger.check()).ok).toBe(true);
    });

    it("answers the new balance of a person's account with the transfer (none on a replay)", async () => {
      const tenant = await socle.newTenant();
      const { source, wallet } = await sourceAndWallet(tenant);
      const operation = { id: nextId('grant'), debitAccountId: source.id, creditAccountId: wallet.id };
      const first = await inTenant(tenant, (trx) =>
        ledger.transferWithBalances(trx, { ...operation, amount: 300n }),
      );
      expect(first.transfer).toMatchObject({ id: operation.id, amount: 300n });
      // Only the account a person owns: the system source is nobody's to be told.
      expect([...first.balances.keys()]).toEqual([wallet.id]);
      expect(first.balances.get(wallet.id)).toEqual(await balanceOf(tenant, wallet));
      const second = await inTenant(tenant, (trx) =>
        ledger.transferWithBalances(trx, { ...operation, id: nextId('grant'), amount: 200n }),
      );
      expect(second.balances.get(wallet.id)).toMatchObject({ posted: 500n, available: 500n });
      const replay = await inTenant(tenant, (trx) =>
        ledger.transferWithBalances(trx, { ...operation, amount: 300n }),
      );
      expect(replay.transfer.id).toBe(operation.id);
      expect(replay.balances.size).toBe(0);
    });

    it('returns the original on a replay and refuses the same id with other content', async () => {
      const tenant = await socle.newTenant();
      const { source, wallet } = await sourceAndWallet(tenant);
      const operation = {
        id: nextId('replay'),
        debitAccountId: source.id,
        creditAccountId: wallet.id,
        amount: '700',
      };
      const [first] = await inTenant(tenant, (trx) => ledger.transfer(trx, operation));
      clock.advance(1000);
      const [again] = await inTenant(tenant, (trx) => ledger.transfer(trx, operation));
      expect(again).toEqual(first);
      expect((await balanceOf(tenant, wallet)).posted).toBe(700n);
      await expect(
        inTenant(tenant, (trx) => ledger.transfer(trx, { ...operation, amount: 701 })),
      ).rejects.toMatchObject({ code: 'ledger.idempotency_conflict', status: 409 });
      await expect(
        inTenant(tenant, (trx) => ledger.transfer(trx, { ...operation, metadata: { other: true } })),
      ).rejects.toMatchObject({ code: 'ledger.idempotency_conflict' });
      expect((await balanceOf(tenant, wallet)).posted).toBe(700n);

      // A replay answers the original even when the balance no longer covers it.
      const spend = {
        id: nextId('spend'),
        debitAccountId: wallet.id,
        creditAccountId: source.id,
        amount: 700,
      };
      const [spent] = await inTenant(tenant, (trx) => ledger.transfer(trx, spend));
      expect(await inTenant(tenant, (trx) => ledger.transfer(trx, spend))).toEqual([spent]);
      await expect(
        inTenant(tenant, (trx) => ledger.transfer(trx, { ...spend, amount: 1 })),
      ).rejects.toMatchObject({ code: 'ledger.idempotency_conflict' });
      await expect(
        inTenant(tenant, (trx) => ledger.transfer(trx, { ...spend, id: nextId('spend') })),
      ).rejects.toMatchObject({ code: 'ledger.insufficient_funds', status: 422 });
      expect((await balanceOf(tenant, wallet)).posted).toBe(0n);

      // The same on the hot path in a transaction of its own (no caller's): nothing is written.
      const alone = (operation: LedgerOperation) =>
        socle.scope.run({ tenantId: tenant.id }, () => ledger.transfer(operation));
      expect(await alone(spend)).toEqual([spent]);
      const tooMuch = {
        id: nextId('alone'),
        debitAccountId: wallet.id,
        creditAccountId: source.id,
        amount: 1,
      };
      await expect(alone(tooMuch)).rejects.toMatchObject({
        code: 'ledger.insufficient_funds',
        status: 422,
        details: { accountId: wallet.id, rule: 'debits_must_not_exceed_credits' },
        errors: [{ field: 'transfers/0/amount' }],
      });
      await expect(inTenant(tenant, (trx) => ledger.getTransfer(trx, tooMuch.id))).rejects.toMatchObject({
        code: 'ledger.transfer_not_found',
      });
      const debtor = await open(tenant, { rule: 'credits_must_not_exceed_debits' });
      await expect(
        alone({ id: nextId('alone'), debitAccountId: source.id, creditAccountId: debtor.id, amount: 1 }),
      ).rejects.toMatchObject({
        code: 'ledger.insufficient_funds',
        details: { accountId: debtor.id, rule: 'credits_must_not_exceed_debits' },
      });
      const [refill] = await alone({ ...tooMuch, debitAccountId: source.id, creditAccountId: wallet.id });
      expect(refill).toMatchObject({ id: tooMuch.id, amount: 1n });
      expect(await alone({ ...tooMuch, debitAccountId: source.id, creditAccountId: wallet.id })).toEqual([
        refill,
      ]);
      expect((await balanceOf(tenant, wallet)).posted).toBe(1n);
      expect((await ledger.check()).ok).toBe(true);
    });

    it('coalesces concurrent single transfers into shared statements, each decided on its own', async () => {
      const tenant = await socle.newTenant();
      const { source, wallet } = await sourceAndWallet(tenant);
      await inTenant(tenant, (trx) =>
        ledger.transfer(trx, {
          id: nextId('fund'),
          debitAccountId: source.id,
          creditAccountId: wallet.id,
          amount: 100,
        }),
      );
      // Outside any caller's transaction, as a request or a job posts a transfer.
      const alone = (operation: LedgerOperation) =>
        socle.scope.run({ tenantId: tenant.id }, () => ledger.transfer(operation));
      const spend = (id: string, amount = 10) => ({
        id,
        debitAccountId: wallet.id,
        creditAccountId: source.id,
        amount,
        code: 'spend',
      });
      // 20 spends of 10 from a wallet holding 100, a replay sent twice at once, one id sent with
      // two contents, an unknown account: all at once.
      // source -> sink never refused (no rule), whatever the order.
      const sink = await open(tenant, { code: 'sink' });
      const move = (id: string, amount: number) => ({
        id,
        debitAccountId: source.id,
        creditAccountId: sink.id,
        amount,
      });
      const spends = Array.from({ length: 20 }, () => spend(nextId('spend')));
      const twice = move(nextId('twice'), 1);
      const contested = nextId('contested');
      const results = await Promise.allSettled([
        ...spends.map(alone),
        alone(twice),
        alone(twice),
        alone(move(contested, 2)),
        alone(move(contested, 3)),
        alone({ ...move(nextId('unknown'), 1), creditAccountId: crypto.randomUUID() }),
      ]);
      const spent = results.slice(0, 20);
      expect(spent.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
      for (const refused of spent.filter((r) => r.status === 'rejected'))
        expect(refused.reason).toMatchObject({ code: 'ledger.insufficient_funds' });
      const [first, second] = results.slice(20, 22);
      expect(first?.status).toBe('fulfilled');
      expect(second).toEqual(first); // the same transfer, written once
      const contestedResults = results.slice(22, 24);
      expect(contestedResults.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(contestedResults.find((r) => r.status === 'rejected')).toMatchObject({
        reason: { code: 'ledger.idempotency_conflict' },
      });
      expect(results[24]).toMatchObject({ status: 'rejected', reason: { code: 'ledger.account_not_found' } });
      const balance = await balanceOf(tenant, wallet);
      expect(balance.posted).toBe(0n);
      expect((await balanceOf(tenant, sink)).posted).toBe(
        BigInt(1 + 2 + contestedResults.findIndex((r) => r.status === 'fulfilled')),
      );
      // Shared statements: fewer transactions wrote them than there are transfers.
      const written = await withOwnerTransaction(socle.db, (connection) =>
        connection.query<{ transfers: number; transactions: number }>(
          `select count(*)::int as transfers, count(distinct xmin::text)::int as transactions
             from ledger.transfers where tenant_id = $1 and code = 'spend'`,
          [tenant.id],
        ),
      );
      expect(written.rows[0]?.transfers).toBe(10);
      expect(written.rows[0]?.transactions).toBeLessThan(10);

      // A statement that fails (a balance would overflow) undoes all of its transfers: each is
      // then posted alone, and only the one that overflows is refused.
      const full = await open(tenant, { code: 'full' });
      const mint = await open(tenant, { code: 'mint' });
      await inTenant(tenant, (trx) =>
        ledger.transfer(trx, {
          id: nextId('fill'),
          debitAccountId: mint.id,
          creditAccountId: full.id,
          amount: 2n ** 63n - 1n,
        }),
      );
      const refunds = Array.from({ length: 6 }, () => ({
        ...spend(nextId('refund'), 1),
        debitAccountId: source.id,
        creditAccountId: wallet.id,
      }));
      const overflowing = {
        ...spend(nextId('overflow'), 1),
        debitAccountId: source.id,
        creditAccountId: full.id,
      };
      const mixed = await Promise.allSettled(
        [...refunds.slice(0, 3), overflowing, ...refunds.slice(3)].map(alone),
      );
      expect(mixed[3]).toMatchObject({ status: 'rejected', reason: { code: 'ledger.overflow' } });
      expect(mixed.filter((r) => r.status === 'fulfilled')).toHaveLength(6);
      expect((await balanceOf(tenant, wallet)).posted).toBe(balance.posted + 6n);
      expect((await balanceOf(tenant, full)).creditsPosted).toBe(2n ** 63n - 1n);
    });

    it("opens a person's account only for a member of the organization", async () => {
      const tenant = await socle.newTenant();
      const outsider = await socle.newUser();
      const other = await socle.newTenant();
      const before = await inTenant(tenant, (trx) => ledger.accounts(trx, {}));
      for (const userId of [outsider.userId, other.owner.userId, crypto.randomUUID()])
        await expect(
          open(tenant, { owner: { kind: 'user', userId }, rule: 'debits_must_not_exceed_credits' }),
        ).rejects.toMatchObject({
          code: 'ledger.owner_not_member',
          status: 422,
          errors: [{ field: 'owner/userId' }],
        });
      // Refused before anything is written, also inside the caller's transaction.
      await inTenant(tenant, async (trx) => {
        await expect(
          ledger.createAccount(trx, { owner: { kind: 'user', userId: outsider.userId }, unit: 'credits' }),
        ).rejects.toMatchObject({ code: 'ledger.owner_not_member' });
        expect(await ledger.accounts(trx, {})).toEqual(before);
      });
      const response = await callAs(socle, tenant.owner, 'POST', '/org/ledger/accounts', {
        orgId: tenant.id,
        payload: { owner: { kind: 'user', userId: outsider.userId }, unit: 'credits' },
      });
      expect(response.statusCode).toBe(422);
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.json()).toMatchObject({
        code: 'ledger.owner_not_member',
        errors: [{ field: 'owner/userId' }],
      });
      // A person opening their own account (the transaction acts as them) needs no membership:
      // a player's wallet in the organization running a game.
      const own = await socle.db.transaction(
        (trx) =>
          ledger.createAccount(trx, { owner: { kind: 'user', userId: outsider.userId }, unit: 'coins' }),
        { settings: tenantSettings({ tenantId: tenant.id, userId: outsider.userId }) },
      );
      expect(own.owner).toEqual({ kind: 'user', userId: outsider.userId });
      // A member (any role) may own one.
      const member = await socle.newMember(tenant, { role: 'viewer' });
      const wallet = await open(tenant, { owner: { kind: 'user', userId: member.userId } });
      expect(wallet.owner).toEqual({ kind: 'user', userId: member.userId });
    });

    it('writes a batch all or none', async () => {
      const tenant = await socle.newTenant();
      const { source, wallet } = await sourceAndWallet(tenant);
      const spend = await open(tenant, { code: 'spend' });
      const batch = [
        { id: nextId('b'), debitAccountId: source.id, creditAccountId: wallet.id, amount: 100 },
        { id: nextId('b'), debitAccountId: wallet.id, creditAccountId: spend.id, amount: 150 },
      ];
      await expect(inTenant(tenant, (trx) => ledger.transfer(trx, batch))).rejects.toMatchObject({
        code: 'ledger.insufficient_funds',
        errors: [{ field: 'transfers/1/amount' }],
      });
      expect(await balanceOf(tenant, wallet)).toMatchObject({ posted: 0n });
      const page = await inTenant(tenant, (trx) => ledger.transfers(trx, {}));
      expect(page.transfers).toEqual([]);
      // In order, the first transfer funds the second.
      const done = await inTenant(tenant, (trx) =>
        ledger.transfer(trx, [
          { ...batch[0], id: nextId('b') },
          { ...batch[1], id: nextId('b'), amount: 50 },
        ] as LedgerOperation | LedgerOperation[]),
      );
      expect(done.map((t) => t.amount)).toEqual([100n, 50n]);
      expect((await balanceOf(tenant, wallet)).posted).toBe(50n);
    });

    it('refuses a unit mismatch, the same account twice and an unknown account', async () => {
      const tenant = await socle.newTenant();
      const eur = await open(tenant, { unit: 'EUR' });
      const xof = await open(tenant, { unit: 'XOF' });
      const run = (operation: LedgerOperation | LedgerOperation[]) =>
        inTenant(tenant, (trx) => ledger.transfer(trx, operation));
      await expect(
        run({ id: nextId('u'), debitAccountId: eur.id, creditAccountId: xof.id, amount: 1 }),
      ).rejects.toMatchObject({ code: 'ledger.unit_mismatch', status: 422 });
      await expect(
        run({ id: nextId('u'), debitAccountId: eur.id, creditAccountId: eur.id, amount: 1 }),
      ).rejects.toMatchObject({ code: 'ledger.same_account' });
      await expect(
        run({ id: nextId('u'), debitAccountId: eur.id, creditAccountId: crypto.randomUUID(), amount: 1 }),
      ).rejects.toMatchObject({ code: 'ledger.account_not_found', status: 404 });
      for (const amount of [0, -5, 1.5, '1e3', '-1', '99999999999999999999', 2 ** 60])
        await expect(
          run({ id: nextId('u'), debitAccountId: eur.id, creditAccountId: xof.id, amount: amount as number }),
        ).rejects.toMatchObject({ code: 'ledger.invalid_amount', status: 400 });
    });

    it('reverses a transfer, in part, never more than it moved', async () => {
      const tenant = await socle.newTenant();
      const { source, wallet } = await sourceAndWallet(tenant);
      const id = nextId('r');
      await inTenant(tenant, (trx) =>
        ledger.transfer(trx, { id, debitAccountId: source.id, creditAccountId: wallet.id, amount: 300 }),
      );
      const partial = await inTenant(tenant, (trx) =>
        ledger.reverse(trx, { id: nextId('rev'), transferId: id, amount: 100 }),
      );
      expect(partial).toMatchObject({
        reversesId: id,
        debitAccountId: wallet.id,
        creditAccountId: source.id,
        amount: 100n,
      });
      await expect(
        inTenant(tenant, (trx) => ledger.reverse(trx, { id: nextId('rev'), transferId: id, amount: 201 })),
      ).rejects.toMatchObject({ code: 'ledger.exceeds_reversible' });
      const restOperation = { id: nextId('rev'), transferId: id };
      const rest = await inTenant(tenant, (trx) => ledger.reverse(trx, restOperation));
      expect(rest.amount).toBe(200n);
      // "All that remains", retried, is the same reversal.
      expect(await inTenant(tenant, (trx) => ledger.reverse(trx, restOperation))).toEqual(rest);
      expect((await balanceOf(tenant, wallet)).posted).toBe(0n);
    });
  });

  describe('holds', () => {
    async function funded(amount: bigint) {
      const tenant = await socle.newTenant();
      const { source, wallet } = await sourceAndWallet(tenant);
      const revenue = await open(tenant, { code: 'revenue' });
      await inTenant(tenant, (trx) =>
        ledger.transfer(trx, {
          id: nextId('fund'),
          debitAccountId: source.id,
          creditAccountId: wallet.id,
          amount,
        }),
      );
      return { tenant, wallet, revenue };
    }

    it('reserves, refuses what exceeds the available balance, posts in part', async () => {
      const { tenant, wallet, revenue } = await funded(100n);
      const hold = await inTenant(tenant, (trx) =>
        ledger.hold(trx, {
          id: nextId('h'),
          debitAccountId: wallet.id,
          creditAccountId: revenue.id,
          amount: 80,
        }),
      );
      expect(await balanceOf(tenant, wallet)).toMatchObject({
        posted: 100n,
        available: 20n,
        debitsPending: 80n,
      });
      await expect(
        inTenant(tenant, (trx) =>
          ledger.hold(trx, {
            id: nextId('h'),
            debitAccountId: wallet.id,
            creditAccountId: revenue.id,
            amount: 21,
          }),
        ),
      ).rejects.toMatchObject({ code: 'ledger.insufficient_funds' });
      await expect(
        inTenant(tenant, (trx) => ledger.post(trx, { id: nextId('p'), holdId: hold.id, amount: 81 })),
      ).rejects.toMatchObject({ code: 'ledger.exceeds_hold' });
      const postId = nextId('p');
      const posted = await inTenant(tenant, (trx) =>
        ledger.post(trx, { id: postId, holdId: hold.id, amount: 30 }),
      );
      expect(posted).toMatchObject({ kind: 'post', holdId: hold.id, amount: 30n });
      expect(await balanceOf(tenant, wallet)).toMatchObject({
        posted: 70n,
        available: 70n,
        debitsPending: 0n,
      });
      // The job's retry of the same post is a replay; another resolution is refused.
      expect(
        await inTenant(tenant, (trx) => ledger.post(trx, { id: postId, holdId: hold.id, amount: 30 })),
      ).toEqual(posted);
      await expect(
        inTenant(tenant, (trx) => ledger.void(trx, { id: nextId('v'), holdId: hold.id })),
      ).rejects.toMatchObject({ code: 'ledger.hold_already_resolved', status: 409 });
      expect((await ledger.check()).ok).toBe(true);
    });

    it('voids, and expires by the job after its timeout', async () => {
      const { tenant, wallet, revenue } = await funded(100n);
      const hold = (amount: number, timeoutSeconds = 60) =>
        inTenant(tenant, (trx) =>
          ledger.hold(trx, {
            id: nextId('h'),
            debitAccountId: wallet.id,
            creditAccountId: revenue.id,
            amount,
            timeoutSeconds,
          }),
        );
      const voided = await hold(40);
      await inTenant(tenant, (trx) => ledger.void(trx, { id: nextId('v'), holdId: voided.id }));
      expect((await balanceOf(tenant, wallet)).available).toBe(100n);

      const expiring = await hold(60, 60);
      expect((await balanceOf(tenant, wallet)).available).toBe(40n);
      clock.advance(61_000);
      await expect(
        inTenant(tenant, (trx) => ledger.post(trx, { id: nextId('p'), holdId: expiring.id })),
      ).rejects.toMatchObject({ code: 'ledger.hold_expired' });
      expect(await ledger.expireHolds()).toBeGreaterThanOrEqual(1);
      expect(await ledger.expireHolds()).toBe(0);
      expect(await balanceOf(tenant, wallet)).toMatchObject({ available: 100n, debitsPending: 0n });
      const history = await inTenant(tenant, (trx) => ledger.history(trx, wallet.id, {}));
      expect(history.transfers[0]).toMatchObject({ kind: 'expire', holdId: expiring.id, amount: 60n });
      expect((await ledger.check()).ok).toBe(true);
    });
  });

  describe('history', () => {
    it('pages an account newest first and filters by code', async () => {
      const tenant = await socle.newTenant();
      const { source, wallet } = await sourceAndWallet(tenant);
      const ids: string[] = [];
      for (let index = 0; index < 5; index++) {
        const id = nextId('page');
        ids.push(id);
        await inTenant(tenant, (trx) =>
          ledger.transfer(trx, {
            id,
            debitAccountId: source.id,
            creditAccountId: wallet.id,
            amount: 1,
            code: index % 2 === 0 ? 'purchase' : 'bonus',
          }),
        );
      }
      const first = await inTenant(tenant, (trx) => ledger.history(trx, wallet.id, { limit: 2 }));
      expect(first.transfers.map((t) => t.id)).toEqual([ids[4], ids[3]]);
      const second = await inTenant(tenant, (trx) =>
        ledger.history(trx, wallet.id, { limit: 2, cursor: first.nextCursor as string }),
      );
      expect(second.transfers.map((t) => t.id)).toEqual([ids[2], ids[1]]);
      const bonuses = await inTenant(tenant, (trx) => ledger.transfers(trx, { code: 'bonus' }));
      expect(bonuses.transfers.map((t) => t.id)).toEqual([ids[3], ids[1]]);
      await expect(
        inTenant(tenant, (trx) => ledger.history(trx, wallet.id, { cursor: 'nonsense' })),
      ).rejects.toMatchObject({ code: 'ledger.invalid_cursor' });
    });
  });

  describe('HTTP', () => {
    it('lets admins post batches and members read only their own accounts; other tenants get 404', async () => {
      const tenant = await socle.newTenant();
      const admin = tenant.owner;
      const member = await socle.newMember(tenant, { role: 'member' });
      const call = (
        user: typeof admin,
        method: 'GET' | 'POST',
        url: string,
        payload?: object,
        orgId = tenant.id,
      ) => callAs(socle, user, method, url, { orgId, payload });
      const source = await call(admin, 'POST', '/org/ledger/accounts', {
        owner: { kind: 'system' },
        unit: 'coins',
      });
      expect(source.statusCode).toBe(201);
      const wallet = await call(admin, 'POST', '/org/ledger/accounts', {
        owner: { kind: 'user', userId: member.userId },
        unit: 'coins',
        rule: 'debits_must_not_exceed_credits',
      });
      const sourceId = source.json().id as string;
      const walletId = wallet.json().id as string;
      const transfer = {
        id: 'iap-1',
        debitAccountId: sourceId,
        creditAccountId: walletId,
        amount: '250',
        code: 'purchase',
      };
      const posted = await call(admin, 'POST', '/org/ledger/transfers', { transfers: [transfer] });
      expect(posted.statusCode).toBe(200);
      expect(posted.json().transfers[0]).toMatchObject({ id: 'iap-1', amount: '250' });
      const replay = await call(admin, 'POST', '/org/ledger/transfers', { transfers: [transfer] });
      expect(replay.json()).toEqual(posted.json());
      const conflict = await call(admin, 'POST', '/org/ledger/transfers', {
        transfers: [{ ...transfer, amount: 251 }],
      });
      expect(conflict.statusCode).toBe(409);
      expect(conflict.json()).toMatchObject({
        code: 'ledger.idempotency_conflict',
        errors: [{ field: 'body/transfers/0/id' }],
      });

      for (const amount of [-1, 1.5, 1e30, '12.5', 'ten'])
        expect(
          (
            await call(admin, 'POST', '/org/ledger/transfers', {
              transfers: [{ ...transfer, id: 'bad', amount }],
            })
          ).statusCode,
        ).toBe(400);
      const overdraw = await call(admin, 'POST', '/org/ledger/transfers', {
        transfers: [{ id: 'spend-1', debitAccountId: walletId, creditAccountId: sourceId, amount: 251 }],
      });
      expect(overdraw.statusCode).toBe(422);
      expect(overdraw.json()).toMatchObject({ code: 'ledger.insufficient_funds' });

      // The member sees their wallet and its history, not the source; posting is for admins.
      const mine = await call(member, 'GET', '/ledger/accounts');
      expect(mine.json().accounts.map((a: { id: string }) => a.id)).toEqual([walletId]);
      expect(mine.json().accounts[0].balance).toMatchObject({ posted: '250', available: '250' });
      expect(
        (await call(member, 'GET', `/ledger/accounts/${walletId}/transfers`)).json().transfers,
      ).toHaveLength(1);
      expect((await call(member, 'GET', `/ledger/accounts/${sourceId}`)).statusCode).toBe(404);
      expect(
        (await call(member, 'POST', '/org/ledger/transfers', { transfers: [transfer] })).statusCode,
      ).toBe(403);

      // Another organization's admin: the accounts do not exist for them.
      const other = await socle.newTenant();
      const foreign = await call(other.owner, 'GET', `/org/ledger/accounts/${walletId}`, undefined, other.id);
      expect(foreign.statusCode).toBe(404);
      const theft = await call(
        other.owner,
        'POST',
        '/org/ledger/transfers',
        { transfers: [{ id: 'steal', debitAccountId: walletId, creditAccountId: sourceId, amount: 1 }] },
        other.id,
      );
      expect(theft.statusCode).toBe(404);
      expect(theft.json()).toMatchObject({ code: 'ledger.account_not_found' });
      expect(
        (await call(other.owner, 'GET', '/org/ledger/transfers/iap-1', undefined, other.id)).statusCode,
      ).toBe(404);
    });
  });

  describe('reconciliation and privacy', () => {
    it('reports an account whose balance was changed by hand', async () => {
      const tenant = await socle.newTenant();
      const { source, wallet } = await sourceAndWallet(tenant);
      await inTenant(tenant, (trx) =>
        ledger.transfer(trx, {
          id: nextId('d'),
          debitAccountId: source.id,
          creditAccountId: wallet.id,
          amount: 10,
        }),
      );
      await withOwnerTransaction(socle.db, (connection) =>
        connection.query('update ledger.accounts set credits_posted = credits_posted + 5 where id = $1', [
          wallet.id,
        ]),
      );
      // The hourly job's run is kept: the operator reads its result (the console's Ledger page).
      const latest = async () => {
        const response = await socle.app.inject({
          method: 'GET',
          url: '/operator/ledger/reconciliation',
          headers: { 'x-operator-token': OPERATOR_TOKEN },
        });
        expect(response.statusCode, response.body).toBe(200);
        return response.json().last;
      };
      // The hourly job itself, enqueued now rather than waiting for the hour (a cron job is an
      // ordinary job of its queue once enqueued).
      // runDueJobs also runs what earlier tests left due (their mail): the job's own state says it ran.
      const { id } = await socle.jobs.enqueue(socle.db.kysely, 'ledger.reconcile', {});
      await socle.jobs.runDueJobs();
      expect(await socle.jobs.get(id, null)).toMatchObject({ name: 'ledger.reconcile', state: 'completed' });
      const report = await ledger.lastReconciliation();
      expect(report).toMatchObject({ ok: false, trigger: 'schedule' });
      expect(await latest()).toEqual({ ...report, checkedAt: report?.checkedAt.toISOString() });
      const metrics = await socle.app.inject({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/^socle_ledger_reconciliation_drifted [1-9]/m);
      if (report === undefined) throw new Error('no reconciliation kept');
      // The same report for the operator token over HTTP, on demand.
      const reconcile = (headers: Record<string, string>) =>
        socle.app.inject({ method: 'POST', url: '/operator/ledger/reconciliation', headers });
      expect((await reconcile({})).statusCode).toBe(401);
      const served = await reconcile({ 'x-operator-token': OPERATOR_TOKEN });
      expect(served.statusCode, served.body).toBe(200);
      expect(served.json()).toEqual({
        ...report,
        checkedAt: clock.now().toISOString(),
        trigger: 'operator',
      });
      expect(report.accounts).toContainEqual(
        expect.objectContaining({
          accountId: wallet.id,
          stored: expect.objectContaining({ creditsPosted: '15' }),
        }),
      );
      expect(report.units).toContainEqual({ orgId: tenant.id, unit: 'credits', posted: '5', pending: '0' });
      await withOwnerTransaction(socle.db, (connection) =>
        connection.query('update ledger.accounts set credits_posted = credits_posted - 5 where id = $1', [
          wallet.id,
        ]),
      );
      expect((await ledger.check()).ok).toBe(true);
      const again = await reconcile({ 'x-operator-token': OPERATOR_TOKEN });
      expect(again.json()).toMatchObject({ ok: true, accounts: [], units: [] });
      expect(await latest()).toMatchObject({ ok: true, trigger: 'operator', accounts: [] });
    });

    it("exports a person's accounts and history, and erasure pseudonymizes them", async () => {
      const tenant = await socle.newTenant();
      const { source, wallet } = await sourceAndWallet(tenant);
      await inTenant(tenant, (trx) =>
        ledger.transfer(trx, {
          id: nextId('x'),
          debitAccountId: source.id,
          creditAccountId: wallet.id,
          amount: 42,
          metadata: { email: tenant.owner.email },
        }),
      );
      const privacy = (await import('../src/modules/ledger/ledger.privacy.js')).createLedgerPrivacy(socle.db);
      const subject = { userId: tenant.owner.userId, email: tenant.owner.email };
      const data = (await privacy.exportSubject(subject)) as {
        accounts: { id: string }[];
        transfers: unknown[];
      };
      expect(data.accounts.map((a) => a.id)).toEqual([wallet.id]);
      expect(data.transfers).toHaveLength(1);
      await privacy.eraseSubject(subject);
      const erased = await balanceOf(tenant, wallet);
      expect(erased.posted).toBe(42n);
      const account = await inTenant(tenant, (trx) => ledger.account(trx, wallet.id));
      expect(account.owner).toEqual({ kind: 'erased' });
      const [transfer] = (await inTenant(tenant, (trx) => ledger.history(trx, wallet.id, {}))).transfers;
      expect(transfer?.metadata).toEqual({});
      expect((await ledger.check()).ok).toBe(true);
    });
  });
});
