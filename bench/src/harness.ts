import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTestPostgresDatabase, type TestDatabase } from 'socle/testing';
import { openDatabaseCpu } from './database-cpu.js';
import { type LoadMeasurement, measureLoad } from './load.js';
import { processCpuSeconds } from './process-cpu.js';
import type { BenchRequest, CustomResult, CustomScenario, Scenario } from './scenario.js';
import { type ServerProcess, spawnServer } from './server-process.js';
import type { BenchDialect, ServerSettings } from './server-protocol.js';

/** Concurrent connections of a scenario that names none, when `--connections` is not given. */
export const DEFAULT_CONNECTIONS = 50;

/** How to run: the same for every scenario of one invocation. */
export interface RunSettings {
  /** Concurrent connections; undefined uses the scenario's own default, else {@link DEFAULT_CONNECTIONS}. */
  readonly connections: number | undefined;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  /**
   * Socle/baseline pairs to run. More than one interleaves them, so a background load that comes
   * and goes hits both alike; the figures reported are medians.
   */
  readonly rounds: number;
  /** Pool size given to both servers (Socle's default). */
  readonly poolMax: number;
  /** How long each server may take to migrate, seed and listen (`--start-timeout`). */
  readonly startTimeoutSeconds: number;
  readonly postgresAdminUrl: string;
  /** When set, each server's CPU profile of the measured run is written there. */
  readonly profileDirectory: string | undefined;
  /** Aborting stops the load and the servers; temporary databases are still dropped. */
  readonly signal: AbortSignal;
  /** Progress lines (to stderr), kept out of the results table. */
  readonly progress: (line: string) => void;
}

/** One server's figures in one run. */
export interface ContenderResult extends LoadMeasurement {
  /** CPU the server process used per response during the measured run (user + system). */
  readonly cpuMillisecondsPerRequest: number | undefined;
  /**
   * CPU the Postgres backends serving the run's database used per response (Postgres on this
   * machine); undefined on PGlite, where the database's work is in the server's own CPU.
   */
  readonly databaseCpuMillisecondsPerRequest: number | undefined;
  /** CPU seconds the server used per second of the run: 1 is one core kept busy. */
  readonly cpuCoresUsed: number | undefined;
  /** `.cpuprofile` of the measured run, when profiling. */
  readonly profile: string | undefined;
}

/** Socle then the baseline, each started, warmed up and measured once. */
export interface RoundResult {
  readonly socle: ContenderResult;
  readonly baseline: ContenderResult;
  readonly ratio: number;
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly description: string;
  readonly dialect: BenchDialect;
  readonly connections: number;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  readonly poolMax: number;
  readonly socle: ContenderResult;
  readonly baseline: ContenderResult;
  /** Socle's req/s over the baseline's (medians over the rounds). */
  readonly ratio: number;
  /** Each round's figures; `socle` and `baseline` above are their medians. */
  readonly rounds: readonly RoundResult[];
  readonly goal: number;
  readonly goalMet: boolean;
  /** Whether both servers answered the probe with the same body (same work, same output). */
  readonly sameResponse: boolean;
  /** Problems that make the comparison doubtful (errors, non-2xx responses, different bodies). */
  readonly warnings: readonly string[];
}

type Contender = 'socle' | 'baseline';

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
}

function medianOrUndefined(values: readonly (number | undefined)[]): number | undefined {
  return values.some((value) => value === undefined) ? undefined : median(values as number[]);
}

/** One contender over several rounds: the median of each figure, the sum of each count. */
function combineRounds(results: readonly ContenderResult[]): ContenderResult {
  const first = results[0];
  if (first === undefined) throw new Error('no round was measured');
  if (results.length === 1) return first;
  const sum = (pick: (result: ContenderResult) => number) =>
    results.reduce((total, result) => total + pick(result), 0);
  return {
    requestsPerSecond: median(results.map((result) => result.requestsPerSecond)),
    latencyMs: {
      p50: median(results.map((result) => result.latencyMs.p50)),
      p90: median(results.map((result) => result.latencyMs.p90)),
      p99: median(results.map((result) => result.latencyMs.p99)),
      max: Math.max(...results.map((result) => result.latencyMs.max)),
    },
    totalRequests: sum((result) => result.totalRequests),
    non2xx: sum((result) => result.non2xx),
    errors: sum((result) => result.errors),
    timeouts: sum((result) => result.timeouts),
    durationSeconds: sum((result) => result.durationSeconds),
    cpuMillisecondsPerRequest: medianOrUndefined(results.map((result) => result.cpuMillisecondsPerRequest)),
    databaseCpuMillisecondsPerRequest: medianOrUndefined(
      results.map((result) => result.databaseCpuMillisecondsPerRequest),
    ),
    cpuCoresUsed: medianOrUndefined(results.map((result) => result.cpuCoresUsed)),
    profile: results.at(-1)?.profile,
  };
}

/** The request with the headers the server asked for at start added (the request's own win). */
function withServerHeaders(server: ServerProcess, request: BenchRequest): BenchRequest {
  if (Object.keys(server.requestHeaders).length === 0) return request;
  const headers =
    request.headers === undefined ? server.requestHeaders : { ...server.requestHeaders, ...request.headers };
  return { ...request, headers };
}

/** Connections a scenario runs with: the flag, else the scenario's default, else the harness's. */
export function connectionsOf(scenario: Scenario, settings: RunSettings): number {
  return settings.connections ?? scenario.connections ?? DEFAULT_CONNECTIONS;
}

async function probeServer(server: ServerProcess, label: Contender, probe: BenchRequest): Promise<string> {
  const request = withServerHeaders(server, probe);
  const response = await fetch(new URL(request.path, server.url), {
    method: request.method,
    ...(request.headers ? { headers: request.headers } : {}),
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  const body = await response.text();
  if (!response.ok) {
    throw new Error(`${label} answered ${request.method} ${request.path} with ${response.status}: ${body}`);
  }
  return body;
}

async function measureContender(
  scenario: Scenario,
  label: Contender,
  serverSettings: ServerSettings,
  settings: RunSettings,
  stamp: string,
): Promise<{ result: ContenderResult; probeBody: string }> {
  const { signal, progress } = settings;
  progress(`  ${label}: starting`);
  const server = await spawnServer({
    label,
    entry: label === 'socle' ? scenario.socleServer : scenario.baselineServer,
    settings: serverSettings,
    signal,
    startTimeoutSeconds: settings.startTimeoutSeconds,
  });
  try {
    const probeBody = await probeServer(server, label, scenario.probe);
    const load = {
      url: server.url,
      connections: connectionsOf(scenario, settings),
      nextRequest: () => withServerHeaders(server, scenario.nextRequest()),
      signal,
    };
    progress(`  ${label}: warming up ${settings.warmupSeconds} s (pid ${server.pid})`);
    await measureLoad({ ...load, durationSeconds: settings.warmupSeconds });
    signal.throwIfAborted();
    let profile: string | undefined;
    if (settings.profileDirectory !== undefined) {
      profile = join(
        settings.profileDirectory,
        `${scenario.name}-${serverSettings.dialect}-${label}-${stamp}.cpuprofile`,
      );
      server.startProfile();
    }
    progress(`  ${label}: measuring ${settings.durationSeconds} s`);
    const databaseCpu =
      serverSettings.databaseUrl === undefined
        ? undefined
        : await openDatabaseCpu(serverSettings.databaseUrl);
    const cpuBefore = await processCpuSeconds(server.pid);
    const databaseBefore = await databaseCpu?.read();
    const measurement = await measureLoad({ ...load, durationSeconds: settings.durationSeconds });
    const cpuAfter = await processCpuSeconds(server.pid);
    const databaseAfter = await databaseCpu?.read();
    const databaseReadable = databaseCpu?.readable() === true;
    await databaseCpu?.close();
    signal.throwIfAborted();
    if (profile !== undefined) await server.stopProfile(profile);
    const cpuSeconds = cpuBefore === undefined || cpuAfter === undefined ? undefined : cpuAfter - cpuBefore;
    return {
      result: {
        ...measurement,
        cpuMillisecondsPerRequest:
          cpuSeconds === undefined ? undefined : (cpuSeconds * 1000) / measurement.totalRequests,
        cpuCoresUsed: cpuSeconds === undefined ? undefined : cpuSeconds / measurement.durationSeconds,
        databaseCpuMillisecondsPerRequest:
          databaseReadable && databaseBefore !== undefined && databaseAfter !== undefined
            ? (databaseAfter - databaseBefore) / measurement.totalRequests
            : undefined,
        profile,
      },
      probeBody,
    };
  } finally {
    await server.stop();
  }
}

function warningsOf(label: Contender, measurement: LoadMeasurement): string[] {
  const warnings: string[] = [];
  if (measurement.errors > 0 || measurement.timeouts > 0)
    warnings.push(`${label}: ${measurement.errors} errors, ${measurement.timeouts} timeouts`);
  if (measurement.non2xx > 0) warnings.push(`${label}: ${measurement.non2xx} non-2xx responses`);
  return warnings;
}

/**
 * Runs one scenario on one dialect: a fresh Postgres database when needed, then the Socle server
 * and the baseline one after the other (never both at once: they would share the two cores),
 * each in its own process, warmed up, then loaded from this process for the same time.
 */
export async function runScenario(
  scenario: Scenario,
  dialect: BenchDialect,
  settings: RunSettings,
): Promise<ScenarioResult> {
  const stamp = new Date().toISOString().replaceAll(':', '-');
  let database: TestDatabase | undefined;
  try {
    if (dialect === 'postgres') {
      database = await createTestPostgresDatabase(settings.postgresAdminUrl, 'socle_bench');
      settings.progress(`  database ${database.name} created`);
    }
    const serverSettings: ServerSettings = {
      dialect,
      databaseUrl: database?.url,
      poolMax: settings.poolMax,
    };
    const rounds: RoundResult[] = [];
    const probeBodies = new Set<string>();
    const warnings: string[] = [];
    for (let round = 1; round <= settings.rounds; round++) {
      if (settings.rounds > 1) settings.progress(`  round ${round} of ${settings.rounds}`);
      const roundStamp = settings.rounds > 1 ? `${stamp}-round${round}` : stamp;
      const socle = await measureContender(scenario, 'socle', serverSettings, settings, roundStamp);
      // Let the database and the kernel settle (closed sessions, freed memory) between the two.
      await sleep(500, undefined, { signal: settings.signal });
      const baseline = await measureContender(scenario, 'baseline', serverSettings, settings, roundStamp);
      rounds.push({
        socle: socle.result,
        baseline: baseline.result,
        ratio: socle.result.requestsPerSecond / baseline.result.requestsPerSecond,
      });
      const shape = (body: string) => scenario.probeShape?.(body) ?? body;
      probeBodies.add(`socle ${shape(socle.probeBody)}`);
      probeBodies.add(`baseline ${shape(baseline.probeBody)}`);
      warnings.push(...warningsOf('socle', socle.result), ...warningsOf('baseline', baseline.result));
    }
    const socle = combineRounds(rounds.map((round) => round.socle));
    const baseline = combineRounds(rounds.map((round) => round.baseline));
    const ratio = socle.requestsPerSecond / baseline.requestsPerSecond;
    const bodies = new Set([...probeBodies].map((body) => body.replace(/^\w+ /, '')));
    const sameResponse = bodies.size === 1;
    if (!sameResponse) warnings.push(`responses differ: ${[...probeBodies].join(' / ')}`);
    return {
      scenario: scenario.name,
      description: scenario.description,
      dialect,
      connections: connectionsOf(scenario, settings),
      durationSeconds: settings.durationSeconds,
      warmupSeconds: settings.warmupSeconds,
      poolMax: settings.poolMax,
      socle,
      baseline,
      ratio,
      rounds,
      goal: scenario.goal,
      goalMet: ratio >= scenario.goal,
      sameResponse,
      warnings,
    };
  } finally {
    if (database !== undefined) {
      await database.drop();
      settings.progress(`  database ${database.name} dropped`);
    }
  }
}

/** Runs a custom (non-HTTP-load) scenario on one dialect, with a fresh Postgres database when needed. */
export async function runCustomScenario(
  scenario: CustomScenario,
  dialect: BenchDialect,
  settings: RunSettings,
): Promise<CustomResult> {
  let database: TestDatabase | undefined;
  try {
    if (dialect === 'postgres' && !scenario.createsDatabases) {
      database = await createTestPostgresDatabase(settings.postgresAdminUrl, 'socle_bench');
      settings.progress(`  database ${database.name} created`);
    }
    return await scenario.run(dialect, {
      poolMax: settings.poolMax,
      connections: settings.connections,
      durationSeconds: settings.durationSeconds,
      databaseUrl: database?.url,
      postgresAdminUrl: settings.postgresAdminUrl,
      rounds: settings.rounds,
      startTimeoutSeconds: settings.startTimeoutSeconds,
      profileDirectory: settings.profileDirectory,
      signal: settings.signal,
      progress: settings.progress,
    });
  } finally {
    if (database !== undefined && process.env.BENCH_KEEP_DATABASE === '1') {
      // To look at the data the run left (EXPLAIN ANALYZE at the bench's sizes); drop it by hand.
      settings.progress(`  database ${database.name} kept (BENCH_KEEP_DATABASE=1)`);
    } else if (database !== undefined) {
      await database.drop();
      settings.progress(`  database ${database.name} dropped`);
    }
  }
}
