import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type Account,
  type BalanceMessage,
  createLedgerModule,
  type LedgerService,
  type LedgerTransaction,
  tenantSettings,
} from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createRealtimeModule } from '../src/modules/realtime/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import { createTestSocle, type TestSocle, type TestTenant } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import {
  connected,
  nextEvent,
  type PusherJs,
  pusherClient,
  testRealtimeApp,
} from './support/realtime-clients.js';

describeEachDatabase('Ledger balance pushes', (target) => {
  let socle: TestSocle;
  let ledger: LedgerService;
  let baseUrl: string;
  const realtimeApp = testRealtimeApp();
  // Registered before realtime: the ledger finds it when the first push is due, not at set-up.
  const ledgerModule = createLedgerModule();
  const clients: PusherJs[] = [];

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      settings: { realtime: realtimeApp },
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        ledgerModule,
        createRealtimeModule(),
      ],
    });
    ({ ledger } = socle.servicesOf(ledgerModule));
    baseUrl = await socle.listen();
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await socle?.dispose();
  });

  const inTenant = <T>(tenant: TestTenant, work: (trx: LedgerTransaction) => Promise<T>) =>
    socle.db.transaction((trx) => work(trx), { settings: tenantSettings({ tenantId: tenant.id }) });

  /** The user's private channel, subscribed with a real pusher-js client. */
  async function privateChannel(user: { userId: string; token: string }) {
    const client = pusherClient(baseUrl, realtimeApp, user.token);
    clients.push(client);
    await connected(client);
    const channel = client.subscribe(`private-user-${user.userId}`);
    await nextEvent(channel, 'pusher:subscription_succeeded');
    return { next: () => nextEvent<BalanceMessage>(channel, 'ledger.balance') };
  }

  it("tells the owner of a person's account its new balance after each commit, never for a rollback", async () => {
    const tenant = await socle.newTenant();
    const owner = tenant.owner;
    const [source, wallet] = await inTenant(tenant, async (trx) => [
      await ledger.createAccount(trx, { owner: { kind: 'system' }, unit: 'credits', code: 'source' }),
      await ledger.createAccount(trx, {
        owner: { kind: 'user', userId: owner.userId },
        unit: 'credits',
        rule: 'debits_must_not_exceed_credits',
        code: 'wallet',
      }),
    ]);
    const channel = await privateChannel(owner);
    const walletMessage = (transferId: string, balance: Partial<BalanceMessage['balance']>) => ({
      accountId: (wallet as Account).id,
      unit: 'credits',
      scale: 0,
      code: 'wallet',
      transferId,
      balance: expect.objectContaining(balance),
    });

    // Rolled back after the transfer was written in the caller's transaction: nothing is told.
    // The next message on the channel is the committed transfer's (a channel keeps the order).
    let message = channel.next();
    await expect(
      inTenant(tenant, async (trx) => {
        await ledger.transfer(trx, {
          id: 'rolled-back',
          debitAccountId: source.id,
          creditAccountId: wallet.id,
          amount: 900n,
        });
        throw new Error('the caller gives up');
      }),
    ).rejects.toThrow('the caller gives up');
    await inTenant(tenant, (trx) =>
      ledger.transfer(trx, {
        id: 'purchase-1',
        debitAccountId: source.id,
        creditAccountId: wallet.id,
        amount: 500n,
      }),
    );
    expect(await message).toEqual(
      walletMessage('purchase-1', {
        posted: '500',
        available: '500',
        creditsPosted: '500',
        debitsPending: '0',
      }),
    );

    // A hold (the general path, in the caller's transaction): pending, available goes down.
    message = channel.next();
    await inTenant(tenant, (trx) =>
      ledger.hold(trx, { id: 'hold-1', debitAccountId: wallet.id, creditAccountId: source.id, amount: 200n }),
    );
    expect(await message).toEqual(
      walletMessage('hold-1', { posted: '500', available: '300', debitsPending: '200' }),
    );

    // A void in the ledger's own transaction (no caller's), acting in the tenant's scope.
    message = channel.next();
    await socle.scope.run({ tenantId: tenant.id }, () => ledger.void({ id: 'void-1', holdId: 'hold-1' }));
    expect(await message).toEqual(
      walletMessage('void-1', { posted: '500', available: '500', debitsPending: '0' }),
    );

    // The hot path on its own (one statement, committed by itself).
    message = channel.next();
    await socle.scope.run({ tenantId: tenant.id }, () =>
      ledger.transfer({ id: 'spend-1', debitAccountId: wallet.id, creditAccountId: source.id, amount: 120 }),
    );
    expect(await message).toEqual(
      walletMessage('spend-1', {
        posted: '380',
        available: '380',
        debitsPosted: '120',
        creditsPosted: '500',
      }),
    );

    // A replay writes nothing and tells nothing; a refused transfer neither: the next message
    // is the one of the batch after them, with the balance after its last operation.
    message = channel.next();
    await inTenant(tenant, (trx) =>
      ledger.transfer(trx, {
        id: 'spend-1',
        debitAccountId: wallet.id,
        creditAccountId: source.id,
        amount: 120,
      }),
    );
    await expect(
      inTenant(tenant, (trx) =>
        ledger.transfer(trx, {
          id: 'too-much',
          debitAccountId: wallet.id,
          creditAccountId: source.id,
          amount: 1000,
        }),
      ),
    ).rejects.toMatchObject({ code: 'ledger.insufficient_funds' });
    await inTenant(tenant, (trx) =>
      ledger.transfer(trx, [
        { id: 'batch-1', debitAccountId: source.id, creditAccountId: wallet.id, amount: 20 },
        { id: 'batch-2', debitAccountId: wallet.id, creditAccountId: source.id, amount: 100 },
      ]),
    );
    expect(await message).toEqual(walletMessage('batch-2', { posted: '300', available: '300' }));
  });
});
