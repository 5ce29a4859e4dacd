import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type Account,
  isSocleError,
  type LedgerService,
  type LedgerTransaction,
  type NewAccount,
  sql,
  tenantSettings,
  withOwnerTransaction,
} from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTenancyModule } from '../src/modules/tenancy/index.js';
import {
  createTestSocle,
  TEST_SECRET_KEY,
  type TestDatabase,
  type TestSocle,
  type TestTenant,
} from '../src/testing/index.js';
import { createLedgerChargeModules } from './fixtures/ledger-charge-module.js';
import { killCliProcesses, runCli, spawnCli } from './support/cli-process.js';
import { postgresTarget } from './support/each-database.js';

const CHARGE_MODULE = fileURLToPath(new URL('./fixtures/ledger-charge-module.ts', import.meta.url));

// Postgres only: races need many database sessions (PGlite has one), and workers are processes.
describe.skipIf(!postgresTarget.available)('Ledger under concurrency [postgres]', () => {
  let database: TestDatabase;
  let socle: TestSocle;
  let ledger: LedgerService;
  const [ledgerModule, chargeModule] = createLedgerChargeModules();
  afterEach(killCliProcesses);
  beforeAll(async () => {
    database = await postgresTarget.create();
    socle = await createTestSocle(postgresTarget, {
      database,
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        ledgerModule,
        chargeModule,
      ],
      // 50 clients share this pool; this process works no queue (the worker processes do).
      config: { databasePoolMax: 20, jobsQueues: [] },
    });
    ({ ledger } = socle.servicesOf(ledgerModule));
  }, 60_000);
  afterAll(async () => {
    await socle?.dispose();
    await database?.drop();
  });

  const inTenant = <T>(tenant: Pick<TestTenant, 'id'>, work: (trx: LedgerTransaction) => Promise<T>) =>
    // The tenant's scope, as a request or a job has it: transactions carry its tenant, and so do
    // jobs enqueued in them (the job engine reads the scope, not the transaction's settings).
    socle.scope.run({ tenantId: tenant.id }, () => socle.db.transaction((trx) => work(trx)));
  const open = (tenant: TestTenant, account: Partial<NewAccount> = {}) =>
    inTenant(tenant, (trx) =>
      ledger.createAccount(trx, { owner: { kind: 'system' }, unit: 'credits', ...account }),
    );

  it('keeps every unit at zero and no wallet negative with 50 clients racing on 10 accounts', async () => {
    const tenant = await socle.newTenant();
    const source = await open(tenant);
    const wallets: Account[] = [];
    for (let index = 0; index < 10; index++)
      wallets.push(
        await open(tenant, {
          owner: { kind: 'user', userId: tenant.owner.userId },
          rule: 'debits_must_not_exceed_credits',
        }),
      );
    await inTenant(tenant, (trx) =>
      ledger.transfer(
        trx,
        wallets.map((wallet, index) => ({
          id: `seed-${index}`,
          debitAccountId: source.id,
          creditAccountId: wallet.id,
          amount: 1000,
        })),
      ),
    );
    // A fixed sequence of pseudo-random choices, so a failure replays the same way.
    let seed = 42;
    const random = (below: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % below;
    };
    const unexpected: unknown[] = [];
    let attempted = 0;
    let written = 0;
    let refused = 0;
    const clients = Array.from({ length: 50 }, async (_, client) => {
      const done: { operation: object; transfer: unknown }[] = [];
      for (let step = 0; step < 20; step++) {
        // Every fifth step sends an earlier transfer again, as a client whose answer was lost.
        const earlier = step % 5 === 4 ? done[random(done.length)] : undefined;
        // Even clients post in a transaction of their own (the hot path's one statement commits on
        // its own), odd ones in the caller's transaction (committed after it): both forms race.
        const post = (operation: object) =>
          client % 2 === 0
            ? socle.scope.run({ tenantId: tenant.id }, () => ledger.transfer(operation as never))
            : inTenant(tenant, (trx) => ledger.transfer(trx, operation as never));
        if (earlier !== undefined) {
          const [again] = await post(earlier.operation);
          expect(again).toEqual(earlier.transfer);
          continue;
        }
        const from = random(10);
        const to = (from + 1 + random(9)) % 10;
        const operation = {
          id: `race-${client}-${step}`,
          debitAccountId: (wallets[from] as Account).id,
          creditAccountId: (wallets[to] as Account).id,
          amount: 1 + random(400),
        };
        attempted++;
        try {
          const [transfer] = await post(operation);
          done.push({ operation, transfer });
          written++;
        } catch (error) {
          if (isSocleError(error) && error.code === 'ledger.insufficient_funds') refused++;
          else unexpected.push(error);
        }
      }
    });
    await Promise.all(clients);
    // No deadlock, serialization or other error surfaced: only refusals of what did not fit.
    expect(unexpected).toEqual([]);
    expect(written).toBeGreaterThan(0);
    expect(written + refused).toBe(attempted);
    const balances = await Promise.all(
      wallets.map((wallet) => inTenant(tenant, (trx) => ledger.balance(trx, wallet.id))),
    );
    for (const balance of balances) expect(balance.posted).toBeGreaterThanOrEqual(0n);
    expect(balances.reduce((sum, balance) => sum + balance.posted, 0n)).toBe(10_000n);
    const { rows } = await sql<{ count: number }>`
      select count(*)::int as count from ledger.transfers where tenant_id = ${tenant.id} and id like 'race-%'`.execute(
      socle.db.withSettings(tenantSettings({ tenantId: tenant.id })),
    );
    expect(rows[0]?.count).toBe(written);
    expect(await ledger.check()).toMatchObject({ ok: true });
  }, 120_000);

  it('lets only the holds that fit through when they race on one wallet', async () => {
    const tenant = await socle.newTenant();
    const source = await open(tenant);
    const revenue = await open(tenant);
    const wallet = await open(tenant, {
      owner: { kind: 'user', userId: tenant.owner.userId },
      rule: 'debits_must_not_exceed_credits',
    });
    await inTenant(tenant, (trx) =>
      ledger.transfer(trx, {
        id: 'fund',
        debitAccountId: source.id,
        creditAccountId: wallet.id,
        amount: 1000,
      }),
    );
    const outcomes = await Promise.allSettled(
      Array.from({ length: 30 }, (_, index) =>
        inTenant(tenant, (trx) =>
          ledger.hold(trx, {
            id: `hold-${index}`,
            debitAccountId: wallet.id,
            creditAccountId: revenue.id,
            amount: 100,
          }),
        ),
      ),
    );
    const held = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    expect(held).toHaveLength(10);
    for (const outcome of outcomes)
      if (outcome.status === 'rejected')
        expect(outcome.reason).toMatchObject({ code: 'ledger.insufficient_funds' });
    expect(await inTenant(tenant, (trx) => ledger.balance(trx, wallet.id))).toMatchObject({
      posted: 1000n,
      available: 0n,
      debitsPending: 1000n,
    });
  }, 60_000);

  it('answers the same id sent at once by many clients with one transfer', async () => {
    const tenant = await socle.newTenant();
    const source = await open(tenant);
    const wallet = await open(tenant);
    const operation = {
      id: 'webhook-evt-1',
      debitAccountId: source.id,
      creditAccountId: wallet.id,
      amount: 77,
    };
    // Every client locks the two accounts first: the first to commit writes the transfer; every
    // other one then finds the id taken at its insert and answers it as a replay.
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        // No caller's transaction: the service opens its own (and would retry a lost insert race).
        socle.scope
          .run({ tenantId: tenant.id }, () => ledger.transfer(operation))
          .catch((error: unknown) => error),
      ),
    );
    const transfers = results.filter((result) => Array.isArray(result)) as Awaited<
      ReturnType<LedgerService['transfer']>
    >[];
    expect(transfers.length).toBeGreaterThan(0);
    for (const result of results)
      if (!Array.isArray(result)) expect(result).toMatchObject({ code: 'ledger.concurrent_duplicate' });
    for (const [transfer] of transfers) expect(transfer).toEqual(transfers[0]?.[0]);
    expect((await inTenant(tenant, (trx) => ledger.balance(trx, wallet.id))).posted).toBe(77n);
  }, 60_000);

  // Generous waits: a worker compiles the sources under tsx before it starts, which takes tens of
  // seconds on a busy machine. No timing is asserted.
  const workerEnv = () => ({
    DATABASE_URL: database.url as string,
    SECRET_KEY: TEST_SECRET_KEY,
    SOCLE_MODULES: CHARGE_MODULE,
    JOBS_SUPERVISE_INTERVAL_MS: '1000',
    JOBS_POLL_INTERVAL_MS: '500',
    SHUTDOWN_TIMEOUT_MS: '2000',
  });

  for (const pause of ['before', 'after'] as const)
    it(`charges a job once when its worker is killed ${pause} posting the hold`, async () => {
      const tenant = await socle.newTenant();
      const source = await open(tenant);
      const revenue = await open(tenant);
      const wallet = await open(tenant, {
        owner: { kind: 'user', userId: tenant.owner.userId },
        rule: 'debits_must_not_exceed_credits',
      });
      await inTenant(tenant, (trx) =>
        ledger.transfer(trx, {
          id: 'fund',
          debitAccountId: source.id,
          creditAccountId: wallet.id,
          amount: 100,
        }),
      );
      const first = spawnCli(['worker', '--queues', 'default'], { env: workerEnv() });
      await first.waitForLog((line) => line.msg.includes('worker started'), 90_000);
      // The request: hold the price and enqueue the job in one transaction.
      const { id: jobId } = await inTenant(tenant, async (trx) => {
        const hold = await ledger.hold(trx, {
          id: `hold-${pause}`,
          debitAccountId: wallet.id,
          creditAccountId: revenue.id,
          amount: 30,
          code: 'image_transform',
        });
        return socle.jobs.enqueue(trx, 'ledger_charge.render', { holdId: hold.id, pause });
      });
      await first.waitForLog(
        (line) =>
          line.msg === (pause === 'before' ? 'Charge started' : 'Charge posted') && line.jobId === jobId,
        90_000,
      );
      first.signal('SIGKILL');
      await first.waitForExit(10_000);

      const second = spawnCli(['worker', '--queues', 'default'], { env: workerEnv() });
      const retried = await second.waitForLog(
        (line) => line.msg === 'Charge posted' && line.jobId === jobId,
        90_000,
      );
      expect(retried.attempt).toBe(2);
      const until = Date.now() + 90_000;
      while ((await socle.jobs.get(jobId, null)).state !== 'completed' && Date.now() < until)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await socle.jobs.get(jobId, null)).toMatchObject({ state: 'completed' });
      const history = await inTenant(tenant, (trx) => ledger.history(trx, wallet.id, {}));
      expect(history.transfers.filter((transfer) => transfer.kind === 'post')).toHaveLength(1);
      expect(await inTenant(tenant, (trx) => ledger.balance(trx, wallet.id))).toMatchObject({
        posted: 70n,
        available: 70n,
      });
    }, 300_000);

  it('`socle ledger check` exits 1 and names the account when a balance drifted', async () => {
    const tenant = await socle.newTenant();
    const source = await open(tenant);
    const wallet = await open(tenant);
    await inTenant(tenant, (trx) =>
      ledger.transfer(trx, { id: 'drift', debitAccountId: source.id, creditAccountId: wallet.id, amount: 9 }),
    );
    const env = {
      DATABASE_URL: database.url as string,
      SECRET_KEY: TEST_SECRET_KEY,
      SOCLE_MODULES: CHARGE_MODULE,
    };
    expect((await runCli(['ledger', 'check'], { env }, 90_000)).code).toBe(0);
    // Drift injected by hand, as the table owner.
    await withOwnerTransaction(socle.db, (connection) =>
      connection.query('update ledger.accounts set debits_posted = debits_posted + 1 where id = $1', [
        source.id,
      ]),
    );
    const drifted = await runCli(['ledger', 'check'], { env }, 90_000);
    expect(drifted.code).toBe(1);
    expect(JSON.parse(drifted.stdout)).toMatchObject({
      ok: false,
      accounts: [{ accountId: source.id, stored: { debitsPosted: '10' }, computed: { debitsPosted: '9' } }],
    });
    await withOwnerTransaction(socle.db, (connection) =>
      connection.query('update ledger.accounts set debits_posted = debits_posted - 1 where id = $1', [
        source.id,
      ]),
    );
  }, 240_000);
});
