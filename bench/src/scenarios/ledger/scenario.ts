import { randomUUID } from 'node:crypto';
import {
  createIdentityModule,
  createLedgerModule,
  createMailModule,
  createSilentLogger,
  createSocle,
  createTenancyModule,
  loadConfig,
} from 'socle';
import type { CustomResult, CustomRunSettings, CustomScenario } from '../../scenario.js';
import { openBaseline } from './baseline.js';

/** Clients posting transfers at once, each waiting for its answer before the next. */
const CLIENTS = 50;
/** Every account starts with this much, so no transfer of the load is refused. */
const FUNDS = 1_000_000_000_000n;
/** The ratio of Socle's transfers/s to the baseline's the issue aims for. */
const GOAL = 0.8;

interface Figures {
  readonly accounts: number;
  readonly transfers: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

const percentile = (sorted: readonly number[], fraction: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;

/** Runs `transfer` from CLIENTS concurrent loops for `seconds`; transfers/s and latency. */
async function load(
  accounts: number,
  seconds: number,
  transfer: (id: string, debit: number, credit: number) => Promise<void>,
): Promise<Figures> {
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < until) {
        const debit = Math.floor(Math.random() * accounts);
        const credit = (debit + 1 + Math.floor(Math.random() * (accounts - 1))) % accounts;
        const start = performance.now();
        await transfer(randomUUID(), debit, credit);
        latencies.push(performance.now() - start);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    accounts,
    transfers: latencies.length,
    perSecond: Math.round(latencies.length / elapsed),
    p50Ms: Math.round(percentile(latencies, 0.5) * 10) / 10,
    p99Ms: Math.round(percentile(latencies, 0.99) * 10) / 10,
  };
}

/** Socle's ledger service (`ledger.transfer`, its own transaction per call) on the run's database. */
async function runSocle(settings: CustomRunSettings, accounts: number): Promise<Figures> {
  const ledgerModule = createLedgerModule();
  const socle = await createSocle({
    config: loadConfig({
      env: {},
      configFile: false,
      overrides: {
        port: 0,
        logLevel: 'warn',
        databaseUrl: settings.databaseUrl,
        databasePoolMax: settings.poolMax,
        secretKey: Buffer.alloc(32, 'b').toString('base64'),
        jobsQueues: [],
      },
    }),
    modules: [
      createIdentityModule({ rateLimits: false }),
      createMailModule(),
      createTenancyModule(),
      ledgerModule,
    ],
    log: createSilentLogger(),
  });
  try {
    const email = `ledger-bench-${randomUUID().slice(0, 8)}@example.com`;
    const signUp = await socle.app.inject({
      method: 'POST',
      url: '/auth/sign-up',
      payload: { email, password: 'quartz-lantern-hollow-91-meadow' },
    });
    const token = signUp.json().tokens.accessToken as string;
    const org = await socle.app.inject({
      method: 'POST',
      url: '/orgs',
      payload: { name: 'Ledger bench' },
      headers: { authorization: `Bearer ${token}` },
    });
    const tenantId = org.json().id as string;
    const { ledger } = socle.servicesOf(ledgerModule);
    const inTenant = <T>(work: () => Promise<T>) => socle.scope.run({ tenantId }, work);
    const ids: string[] = [];
    const source = await inTenant(() => ledger.createAccount({ owner: { kind: 'system' }, unit: 'credits' }));
    for (let start = 0; start < accounts; start += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, accounts - start) }, () =>
          inTenant(() =>
            ledger.createAccount({
              owner: { kind: 'tenant' },
              unit: 'credits',
              rule: 'debits_must_not_exceed_credits',
            }),
          ),
        ),
      );
      await inTenant(() =>
        ledger.transfer(
          batch.map((account) => ({
            id: `fund-${account.id}`,
            debitAccountId: source.id,
            creditAccountId: account.id,
            amount: FUNDS,
          })),
        ),
      );
      ids.push(...batch.map((account) => account.id));
    }
    return await load(accounts, settings.durationSeconds, (id, debit, credit) =>
      inTenant(() =>
        ledger.transfer({
          id,
          debitAccountId: ids[debit] as string,
          creditAccountId: ids[credit] as string,
          amount: 1,
        }),
      ).then(() => undefined),
    );
  } finally {
    await socle.close();
  }
}

async function runBaseline(settings: CustomRunSettings, accounts: number): Promise<Figures> {
  const baseline = await openBaseline(settings.databaseUrl as string, settings.poolMax, accounts, FUNDS);
  try {
    return await load(accounts, settings.durationSeconds, (id, debit, credit) =>
      baseline.transfer(id, debit + 1, credit + 1, 1),
    );
  } finally {
    await baseline.close();
  }
}

const line = (name: string, figures: Figures) =>
  `  ${name.padEnd(9)} ${String(figures.perSecond).padStart(6)} transfers/s   p50 ${figures.p50Ms} ms   p99 ${figures.p99Ms} ms   (${figures.transfers} transfers)`;

/**
 * Transfers/s with 50 concurrent clients on 10 hot accounts (and on 1,000, uncontended, for
 * reference): Socle's ledger service vs a plain SQL function doing the same locking, in one run
 * on the same database.
 */
export const ledgerTransfers: CustomScenario = {
  kind: 'custom',
  name: 'ledger-transfers',
  description:
    'Ledger transfers/s, 50 clients on 10 hot and 1,000 accounts: ledger.transfer vs a plain SQL function',
  dialects: ['postgres'],
  async run(dialect, settings): Promise<CustomResult> {
    const rows: { accounts: number; socle: Figures; baseline: Figures; ratio: number }[] = [];
    for (const accounts of [10, 1000]) {
      settings.progress(`ledger-transfers: ${accounts} accounts, Socle`);
      const socle = await runSocle(settings, accounts);
      settings.progress(`ledger-transfers: ${accounts} accounts, plain SQL`);
      const baseline = await runBaseline(settings, accounts);
      rows.push({
        accounts,
        socle,
        baseline,
        ratio: Math.round((socle.perSecond / baseline.perSecond) * 100) / 100,
      });
    }
    const text = rows
      .map(
        (row) =>
          `${row.accounts} accounts, ${CLIENTS} clients: ratio ${row.ratio} (goal ≥ ${GOAL}, and ≥ 2000/s on 10)\n${line('socle', row.socle)}\n${line('plain SQL', row.baseline)}`,
      )
      .join('\n');
    return { scenario: 'ledger-transfers', dialect, text, figures: rows };
  },
};
