/**
 * `npm run bench`: runs every scenario (or the chosen one) on Socle and on its baseline, prints
 * req/s, p50, p99 and the ratio, and writes the figures to `bench/results/`.
 *
 * @example
 * npm run bench -- --duration 5 --scenario db-select --dialect all
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from 'socle';
import { testPostgresAdminUrl } from 'socle/testing';
import { buildCalibration, progressBar, writeCalibration } from './calibration.js';
import {
  DEFAULT_CONNECTIONS,
  type RunSettings,
  runCustomScenario,
  runScenario,
  type ScenarioResult,
} from './harness.js';
import { formatProfileEntries, summarizeProfile } from './profile-summary.js';
import { formatResult, writeResults } from './report.js';
import type { CustomResult, CustomScenario, Scenario } from './scenario.js';
import { scenarios } from './scenarios/index.js';
import { DEFAULT_START_TIMEOUT_SECONDS } from './server-process.js';
import type { BenchDialect } from './server-protocol.js';

/** Scenarios with their own default number of connections, for the usage text. */
const OWN_CONNECTIONS = scenarios
  .filter((scenario): scenario is Scenario => !('kind' in scenario) && scenario.connections !== undefined)
  .map((scenario) => `; ${scenario.name}: ${scenario.connections}`)
  .join('');

const USAGE = `Usage: npm run bench -- [options]

  --duration <seconds>     measured time per server (default 10)
  --connections <n>        concurrent connections (default ${DEFAULT_CONNECTIONS}${OWN_CONNECTIONS})
  --warmup <seconds>       unmeasured load before each measured run (default 2)
  --rounds <n>             Socle/baseline pairs, interleaved; medians are reported (default 1)
  --start-timeout <s>      how long each server may take to migrate, seed and listen before the run
                           fails naming it, with its CPU used and what it printed (default ${DEFAULT_START_TIMEOUT_SECONDS})
  --scenario <name>        one of: ${scenarios.map((scenario) => scenario.name).join(', ')} (default: all)
  --dialect <d>            postgres, pglite or all (default postgres)
  --profile                write a CPU profile of each server's measured run to bench/results/profiles
  --calibrate              also write the calibration profile socle plan reads (CPU per operation of
                           Socle, with this machine described) to --calibration-file
  --calibration-file <f>   default packages/socle/plan-data/calibration.json
  --help                   this text

Postgres: a database is created and dropped through BENCH_POSTGRES_URL
(default ${testPostgresAdminUrl({})}). DATABASE_POOL_MAX sizes both servers' pools (default Socle's).`;

interface CliOptions {
  readonly durationSeconds: number;
  /** Undefined: each scenario's default. */
  readonly connections: number | undefined;
  readonly warmupSeconds: number;
  readonly rounds: number;
  readonly startTimeoutSeconds: number;
  readonly scenarios: readonly (Scenario | CustomScenario)[];
  readonly dialects: readonly BenchDialect[];
  readonly profile: boolean;
  /** Where to write the calibration profile; undefined without --calibrate. */
  readonly calibrationFile: string | undefined;
}

class UsageError extends Error {}

function positiveNumber(flag: string, raw: string, integer: boolean): number {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0 || (integer && !Number.isInteger(value))) {
    throw new UsageError(`--${flag} must be a positive ${integer ? 'integer' : 'number'}, got "${raw}"`);
  }
  return value;
}

function parseCli(argv: readonly string[]): CliOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string', default: '10' },
      connections: { type: 'string' },
      warmup: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '1' },
      'start-timeout': { type: 'string', default: String(DEFAULT_START_TIMEOUT_SECONDS) },
      scenario: { type: 'string' },
      dialect: { type: 'string', default: 'postgres' },
      profile: { type: 'boolean', default: false },
      calibrate: { type: 'boolean', default: false },
      'calibration-file': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  let selected = scenarios;
  if (values.scenario !== undefined) {
    selected = scenarios.filter((scenario) => scenario.name === values.scenario);
    if (selected.length === 0) {
      throw new UsageError(
        `Unknown scenario "${values.scenario}"; known: ${scenarios.map((scenario) => scenario.name).join(', ')}`,
      );
    }
  }
  const dialects: BenchDialect[] =
    values.dialect === 'all'
      ? ['postgres', 'pglite']
      : values.dialect === 'postgres' || values.dialect === 'pglite'
        ? [values.dialect]
        : [];
  if (dialects.length === 0)
    throw new UsageError(`--dialect must be postgres, pglite or all, got "${values.dialect}"`);
  return {
    durationSeconds: positiveNumber('duration', values.duration, false),
    connections:
      values.connections === undefined ? undefined : positiveNumber('connections', values.connections, true),
    warmupSeconds: positiveNumber('warmup', values.warmup, false),
    rounds: positiveNumber('rounds', values.rounds, true),
    startTimeoutSeconds: positiveNumber('start-timeout', values['start-timeout'], false),
    scenarios: selected,
    dialects,
    profile: values.profile,
    calibrationFile: values.calibrate
      ? (values['calibration-file'] ??
        fileURLToPath(new URL('../../packages/socle/plan-data/calibration.json', import.meta.url)))
      : undefined,
  };
}

async function main(): Promise<number> {
  let options: CliOptions | 'help';
  try {
    options = parseCli(process.argv.slice(2));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }

  const interrupt = new AbortController();
  process.on('SIGINT', () => {
    if (interrupt.signal.aborted) process.exit(130);
    console.error(
      '\nInterrupted: stopping the servers and dropping the bench database (Ctrl-C again to quit now)',
    );
    interrupt.abort(new Error('interrupted'));
  });
  process.once('SIGTERM', () => interrupt.abort(new Error('terminated')));

  const resultsDirectory = fileURLToPath(new URL('../results/', import.meta.url));
  const settings: RunSettings = {
    connections: options.connections,
    durationSeconds: options.durationSeconds,
    warmupSeconds: options.warmupSeconds,
    rounds: options.rounds,
    startTimeoutSeconds: options.startTimeoutSeconds,
    // Socle's own default (DATABASE_POOL_MAX read as a server would), given to the baseline too.
    poolMax: loadConfig({
      env:
        process.env.DATABASE_POOL_MAX === undefined
          ? {}
          : { DATABASE_POOL_MAX: process.env.DATABASE_POOL_MAX },
      configFile: false,
    }).databasePoolMax,
    postgresAdminUrl: process.env.BENCH_POSTGRES_URL ?? testPostgresAdminUrl({}),
    profileDirectory: options.profile ? `${resultsDirectory}profiles` : undefined,
    signal: interrupt.signal,
    progress: (line) => console.error(line),
  };
  if (settings.profileDirectory !== undefined) {
    await mkdir(settings.profileDirectory, { recursive: true });
  }

  const cores = os.cpus().length;
  const [load] = os.loadavg();
  if (load !== undefined && load > cores / 2) {
    console.error(
      `warning: the machine is busy (load average ${load.toFixed(1)} on ${cores} cores): figures will be low and noisy`,
    );
  }

  // Servers are spawned with this process's Node: run through `npm run bench` (or
  // node_modules/.bin/node), which puts the pinned Node 24 first. The system's Node 20 runs
  // Socle's AsyncLocalStorage on promise hooks, a cost per promise the pinned runtime does not
  // pay (strategybuzzer, 32 rooms: ≈ 100 ms of hooks in a profile of 8 s on Node 20, none on 24).
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  if (nodeMajor < 24) {
    console.error(
      `warning: running on Node ${process.versions.node}, not the pinned Node 24 (use npm run bench): Socle's figures will be lower than in production`,
    );
  }

  const startedAt = new Date();
  const loadAtStart = os.loadavg();
  const results: ScenarioResult[] = [];
  const customResults: CustomResult[] = [];
  let failed = false;
  // With --calibrate, a progress bar over the scenario runs (each runs its servers in turn).
  const runsTotal = options.scenarios.reduce(
    (count, scenario) =>
      count + options.dialects.filter((dialect) => scenario.dialects.includes(dialect)).length,
    0,
  );
  let runsDone = 0;
  for (const scenario of options.scenarios) {
    for (const dialect of options.dialects) {
      if (!scenario.dialects.includes(dialect)) {
        console.error(`${scenario.name}: skipped on ${dialect} (not supported)`);
        continue;
      }
      if (options.calibrationFile !== undefined)
        console.error(`calibration ${progressBar(runsDone, runsTotal)} next: ${scenario.name} on ${dialect}`);
      runsDone += 1;
      console.error(`${scenario.name} on ${dialect}: ${scenario.description}`);
      if ('kind' in scenario) {
        try {
          const result = await runCustomScenario(scenario, dialect, settings);
          customResults.push(result);
          console.log(`\n${result.text}\n`);
          await mkdir(resultsDirectory, { recursive: true });
          const file = `${resultsDirectory}${scenario.name}-${dialect}-${startedAt.toISOString().replaceAll(':', '-')}.json`;
          await writeFile(file, JSON.stringify({ startedAt, rounds: options.rounds, ...result }, null, 2));
          console.error(`Results: ${file}`);
        } catch (error) {
          if (interrupt.signal.aborted) break;
          failed = true;
          console.error(`${scenario.name} on ${dialect} failed: ${(error as Error).stack ?? String(error)}`);
        }
        continue;
      }
      try {
        const result = await runScenario(scenario, dialect, settings);
        results.push(result);
        console.log(`\n${formatResult(result)}\n`);
        for (const label of ['socle', 'baseline'] as const) {
          const profile = result[label].profile;
          if (profile === undefined) continue;
          const summary = await summarizeProfile(profile, 15);
          // The profile covers the last round's measured run only.
          const requests = result.rounds.at(-1)?.[label].totalRequests ?? result[label].totalRequests;
          console.error(
            `  ${label} CPU by package (${profile}):\n${formatProfileEntries(summary.byPackage, requests)}\n` +
              `  ${label} heaviest functions:\n${formatProfileEntries(summary.byFunction, requests)}`,
          );
        }
      } catch (error) {
        if (interrupt.signal.aborted) break;
        failed = true;
        console.error(`${scenario.name} on ${dialect} failed: ${(error as Error).stack ?? String(error)}`);
      }
    }
    if (interrupt.signal.aborted) break;
  }

  if (results.length > 0) {
    const written = await writeResults(
      resultsDirectory,
      startedAt,
      {
        durationSeconds: options.durationSeconds,
        connections: options.connections ?? 'per scenario',
        warmupSeconds: options.warmupSeconds,
        rounds: options.rounds,
        dialects: options.dialects,
        poolMax: settings.poolMax,
      },
      results,
    );
    console.error(`Results: ${written.join(', ')}`);
  }
  if (options.calibrationFile !== undefined && !interrupt.signal.aborted) {
    console.error(`calibration ${progressBar(runsDone, runsTotal)} done`);
    const profile = buildCalibration(
      results,
      customResults,
      {
        durationSeconds: options.durationSeconds,
        warmupSeconds: options.warmupSeconds,
        rounds: options.rounds,
        dialects: options.dialects,
        scenarios: options.scenarios.map((scenario) => scenario.name),
      },
      loadAtStart,
      startedAt,
    );
    const measured = [...Object.keys(profile.capacities), ...Object.keys(profile.memory)];
    if (measured.length === 0) {
      console.error('Calibration: nothing measured, profile left as it was');
    } else {
      await writeCalibration(options.calibrationFile, profile);
      console.error(`Calibration (${measured.join(', ')}): ${options.calibrationFile}`);
    }
  }
  if (interrupt.signal.aborted) return 130;
  return failed ? 1 : 0;
}

process.exitCode = await main();
