import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import pg from 'pg';
import {
  createIdentityModule,
  createLedgerModule,
  createMailModule,
  createSilentLogger,
  createSocle,
  createTenancyModule,
  loadConfig,
} from 'socle';
import { processCpuSeconds } from '../../process-cpu.js';
import { formatProfileEntries, summarizeProfile } from '../../profile-summary.js';
import type { CustomResult, CustomRunSettings, CustomScenario } from '../../scenario.js';
import { BASELINE_APPLICATION_NAME, openBaseline } from './baseline.js';

/** Clients posting transfers at once, each waiting for its answer before the next. */
const CLIENTS = 50;
/** Every account starts with this much, so no transfer of the load is refused. */
const FUNDS = 1_000_000_000_000n;
/** The ratio of Socle's transfers/s to the baseline's the issue aims for. */
const GOAL = 0.8;

/** Load before each measured run, not counted: opens every pooled session, warms the plans. */
const WARMUP_SECONDS = 1;

interface Figures {
  readonly accounts: number;
  readonly transfers: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU of this process (the client and, for Socle, the ledger service) per transfer. */
  readonly nodeCpuMs: number;
  /** CPU of the Postgres sessions serving the run, per transfer (from /proc). */
  readonly postgresCpuMs: number | undefined;
}

type Transfer = (id: string, debit: number, credit: number) => Promise<void>;

/** CPU seconds used so far by the Postgres sessions of `applicationName` on the run's database. */
async function sessionsCpu(url: string, applicationName: string): Promise<Map<number, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = current_database() and application_name = $1',
      [applicationName],
    );
    const cpu = new Map<number, number>();
    for (const { pid } of rows) {
      const seconds = await processCpuSeconds(pid);
      if (seconds !== undefined) cpu.set(pid, seconds);
    }
    return cpu;
  } finally {
    await client.end();
  }
}

/**
 * Runs the load for `seconds` after a warm-up and measures it: throughput, latency, and the CPU
 * it cost here and in Postgres. With `profilePath`, a CPU profile of this process covers the run.
 */
async function measure(
  settings: CustomRunSettings,
  applicationName: string,
  accounts: number,
  transfer: Transfer,
  profilePath?: string,
): Promise<Figures> {
  await load(accounts, WARMUP_SECONDS, transfer);
  const url = settings.databaseUrl as string;
  const before = await sessionsCpu(url, applicationName);
  let session: Session | undefined;
  if (profilePath !== undefined) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  const cpuStart = process.cpuUsage();
  const figures = await load(accounts, settings.durationSeconds, transfer);
  const cpu = process.cpuUsage(cpuStart);
  if (session !== undefined && profilePath !== undefined) {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(profilePath, JSON.stringify(profile));
    session.disconnect();
  }
  const after = await sessionsCpu(url, applicationName);
  let postgresSeconds = 0;
  for (const [pid, seconds] of after) postgresSeconds += seconds - (before.get(pid) ?? 0);
  const perTransfer = (seconds: number) => Math.round((seconds * 1000 * 1000) / figures.transfers) / 1000;
  return {
    ...figures,
    nodeCpuMs: perTransfer((cpu.user + cpu.system) / 1e6),
    postgresCpuMs: after.size === 0 ? undefined : perTransfer(postgresSeconds),
  };
}

const percentile = (sorted: readonly number[], fraction: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;

/** Runs `transfer` from CLIENTS concurrent loops for `seconds`; transfers/s and latency. */
async function load(
  accounts: number,
  seconds: number,
  transfer: Transfer,
): Promise<Pick<Figures, 'accounts' | 'transfers' | 'perSecond' | 'p50Ms' | 'p99Ms'>> {
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
async function runSocle(
  settings: CustomRunSettings,
  accounts: number,
  profilePath?: string,
): Promise<Figures> {
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
    return await measure(
      settings,
      'socle',
      accounts,
      (id, debit, credit) =>
        inTenant(() =>
          ledger.transfer({
            id,
            debitAccountId: ids[debit] as string,
            creditAccountId: ids[credit] as string,
            amount: 1,
          }),
        ).then(() => undefined),
      profilePath,
    );
  } finally {
    await socle.close();
  }
}

async function runBaseline(settings: CustomRunSettings, accounts: number): Promise<Figures> {
  const baseline = await openBaseline(settings.databaseUrl as string, settings.poolMax, accounts, FUNDS);
  try {
    return await measure(settings, BASELINE_APPLICATION_NAME, accounts, (id, debit, credit) =>
      baseline.transfer(id, debit + 1, credit + 1, 1),
    );
  } finally {
    await baseline.close();
  }
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

/** The median of each figure over the rounds (each figure on its own). */
function medianFigures(rounds: readonly Figures[]): Figures {
  const of = (pick: (figures: Figures) => number | undefined) => {
    const values = rounds.map(pick).filter((value): value is number => value !== undefined);
    return values.length === 0 ? undefined : median(values);
  };
  return {
    accounts: rounds[0]?.accounts ?? 0,
    transfers: of((f) => f.transfers) ?? 0,
    perSecond: Math.round(of((f) => f.perSecond) ?? 0),
    p50Ms: of((f) => f.p50Ms) ?? 0,
    p99Ms: of((f) => f.p99Ms) ?? 0,
    nodeCpuMs: of((f) => f.nodeCpuMs) ?? 0,
    postgresCpuMs: of((f) => f.postgresCpuMs),
  };
}

const cpuText = (figures: Figures) =>
  `cpu ${figures.nodeCpuMs} ms node + ${figures.postgresCpuMs ?? '?'} ms postgres per transfer`;

const line = (name: string, figures: Figures) =>
  `  ${name.padEnd(9)} ${String(figures.perSecond).padStart(6)} transfers/s   p50 ${figures.p50Ms} ms   p99 ${figures.p99Ms} ms   ${cpuText(figures)}`;

const totalCpu = (figures: Figures) => figures.nodeCpuMs + (figures.postgresCpuMs ?? 0);

/**
 * Transfers/s with 50 concurrent clients on 10 hot accounts (and on 1,000, uncontended, for
 * reference): Socle's ledger service vs a plain SQL function doing the same locking, in one run
 * on the same database. Rounds alternate Socle and the baseline; medians are reported, with the
 * CPU each transfer cost in this process and in Postgres (the CPU ratio is what the throughput
 * ratio comes to when the CPU is the bottleneck).
 */
export const ledgerTransfers: CustomScenario = {
  kind: 'custom',
  name: 'ledger-transfers',
  description:
    'Ledger transfers/s, 50 clients on 10 hot and 1,000 accounts: ledger.transfer vs a plain SQL function',
  dialects: ['postgres'],
  async run(dialect, settings): Promise<CustomResult> {
    const rows: {
      accounts: number;
      socle: Figures;
      baseline: Figures;
      ratio: number;
      cpuRatio: number;
      rounds: { socle: Figures; baseline: Figures }[];
    }[] = [];
    const profiles: string[] = [];
    for (const accounts of [10, 1000]) {
      const rounds: { socle: Figures; baseline: Figures }[] = [];
      for (let round = 1; round <= Math.max(1, settings.rounds); round++) {
        const profilePath =
          settings.profileDirectory !== undefined && round === settings.rounds
            ? `${settings.profileDirectory}/ledger-transfers-socle-${accounts}-${Date.now()}.cpuprofile`
            : undefined;
        settings.progress(`ledger-transfers: ${accounts} accounts, round ${round}, Socle`);
        const socle = await runSocle(settings, accounts, profilePath);
        if (profilePath !== undefined) profiles.push(profilePath);
        settings.progress(`ledger-transfers: ${accounts} accounts, round ${round}, plain SQL`);
        const baseline = await runBaseline(settings, accounts);
        rounds.push({ socle, baseline });
      }
      const socle = medianFigures(rounds.map((r) => r.socle));
      const baseline = medianFigures(rounds.map((r) => r.baseline));
      rows.push({
        accounts,
        socle,
        baseline,
        ratio: Math.round((socle.perSecond / baseline.perSecond) * 100) / 100,
        cpuRatio: Math.round((totalCpu(baseline) / totalCpu(socle)) * 100) / 100,
        rounds,
      });
    }
    let text = rows
      .map(
        (row) =>
          `${row.accounts} accounts, ${CLIENTS} clients, median of ${row.rounds.length}: ratio ${row.ratio} (goal ≥ ${GOAL}, and ≥ 2000/s on 10), cpu ratio ${row.cpuRatio}\n${line('socle', row.socle)}\n${line('plain SQL', row.baseline)}`,
      )
      .join('\n');
    for (const path of profiles) {
      const summary = await summarizeProfile(path, 15);
      const transfers =
        rows.find((row) => path.includes(`-socle-${row.accounts}-`))?.rounds.at(-1)?.socle.transfers ?? 1;
      text += `\n  socle CPU by package (${path}):\n${formatProfileEntries(summary.byPackage, transfers)}\n  socle heaviest functions:\n${formatProfileEntries(summary.byFunction, transfers)}`;
    }
    return { scenario: 'ledger-transfers', dialect, text, figures: rows };
  },
};
