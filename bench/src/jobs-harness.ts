/**
 * How the `jobs` custom scenario runs a workload (no HTTP load): each contender is a child process that runs
 * the whole workload and prints its figures. Socle and the baseline run one after the other on the
 * same database server (never together: two cores), interleaved over the rounds; medians reported.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestPostgresDatabase, type TestDatabase } from 'socle/testing';
import { formatProfileEntries, summarizeProfile } from './profile-summary.js';
import type { CustomRunSettings } from './scenario.js';
import { JOBS_SETTINGS_ENV, type JobsRunResult, type JobsRunSettings } from './scenarios/jobs/workload.js';
import type { BenchDialect } from './server-protocol.js';

/** A workload measured on Socle and on its baseline, each a child process. */
export interface WorkScenario {
  readonly name: string;
  readonly description: string;
  readonly dialects: readonly BenchDialect[];
  /** Socle's processed jobs/s over the baseline's that this scenario aims for. */
  readonly goal: number;
  readonly jobCount: number;
  readonly latencySamples: number;
  /** Socle's idle enqueue→start p99 must stay under this in every round. */
  readonly latencyGoalMs: number;
  readonly socleRunner: URL;
  readonly baselineRunner: URL;
}

export interface WorkScenarioResult {
  readonly scenario: string;
  readonly dialect: BenchDialect;
  readonly jobCount: number;
  readonly socle: JobsRunResult;
  readonly baseline: JobsRunResult;
  readonly rounds: readonly { socle: JobsRunResult; baseline: JobsRunResult }[];
  /** Socle's processed jobs/s over the baseline's (medians). */
  readonly ratio: number;
  readonly goal: number;
  readonly goalMet: boolean;
  /** Socle's worst per-round idle enqueue→start p99, and whether it is under the scenario's goal. */
  readonly worstLatencyP99Ms: number;
  readonly latencyGoalMs: number;
  readonly latencyGoalMet: boolean;
  /** `--profile`: CPU profiles of the last round's drains. */
  readonly profiles: { readonly socle?: string; readonly baseline?: string };
}

const RUN_TIMEOUT_MS = 300_000;

function runChild(
  entry: URL,
  settings: JobsRunSettings,
  label: string,
  signal: AbortSignal,
): Promise<JobsRunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(entry)], {
      env: { ...process.env, [JOBS_SETTINGS_ENV]: JSON.stringify(settings) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    const abort = () => child.kill('SIGKILL');
    signal.addEventListener('abort', abort, { once: true });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      const line = stdout.split('\n').find((candidate) => candidate.startsWith('result '));
      if (code === 0 && line !== undefined)
        resolve(JSON.parse(line.slice('result '.length)) as JobsRunResult);
      else
        reject(
          new Error(`${label} runner exited with ${code}:\n${stderr.slice(-3000)}\n${stdout.slice(-1000)}`),
        );
    });
  });
}

function medianOf(results: readonly JobsRunResult[]): JobsRunResult {
  const median = (pick: (result: JobsRunResult) => number) => {
    const sorted = results.map(pick).sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
  };
  return {
    enqueuePerSecond: median((result) => result.enqueuePerSecond),
    enqueueEachPerSecond: median((result) => result.enqueueEachPerSecond),
    processedPerSecond: median((result) => result.processedPerSecond),
    latencyP50Ms: median((result) => result.latencyP50Ms),
    latencyP99Ms: median((result) => result.latencyP99Ms),
    latencyMaxMs: median((result) => result.latencyMaxMs),
    cpuMillisecondsPerJob: median((result) => result.cpuMillisecondsPerJob),
    enqueueCpuMillisecondsPerJob: median((result) => result.enqueueCpuMillisecondsPerJob),
    drainCpuMillisecondsPerJob: median((result) => result.drainCpuMillisecondsPerJob),
    databaseDrainCpuMillisecondsPerJob: results.some(
      (result) => result.databaseDrainCpuMillisecondsPerJob === null,
    )
      ? null
      : median((result) => result.databaseDrainCpuMillisecondsPerJob ?? 0),
  };
}

export async function runWorkScenario(
  scenario: WorkScenario,
  dialect: BenchDialect,
  settings: CustomRunSettings,
): Promise<WorkScenarioResult> {
  const rounds: { socle: JobsRunResult; baseline: JobsRunResult }[] = [];
  const profiles: { socle?: string; baseline?: string } = {};
  for (let round = 1; round <= settings.rounds; round++) {
    if (settings.rounds > 1) settings.progress(`  round ${round} of ${settings.rounds}`);
    // A fresh database per round: the previous round's completed jobs would slow the next.
    let database: TestDatabase | undefined;
    try {
      if (dialect === 'postgres')
        database = await createTestPostgresDatabase(settings.postgresAdminUrl, 'socle_bench');
      const runSettings: JobsRunSettings = {
        dialect,
        databaseUrl: database?.url,
        poolMax: settings.poolMax,
        jobCount: scenario.jobCount,
        latencySamples: scenario.latencySamples,
      };
      // `--profile`: the last round's drains, one profile per contender.
      const profileOf = (label: 'socle' | 'baseline') => {
        if (settings.profileDirectory === undefined || round !== settings.rounds) return runSettings;
        const path = join(
          settings.profileDirectory,
          `${scenario.name}-${dialect}-${label}-${Date.now()}.cpuprofile`,
        );
        profiles[label] = path;
        return { ...runSettings, profilePath: path };
      };
      settings.progress('  socle …');
      const socle = await runChild(scenario.socleRunner, profileOf('socle'), 'socle', settings.signal);
      settings.progress('  baseline …');
      const baseline = await runChild(
        scenario.baselineRunner,
        profileOf('baseline'),
        'baseline',
        settings.signal,
      );
      rounds.push({ socle, baseline });
    } finally {
      await database?.drop();
    }
  }
  const socle = medianOf(rounds.map((round) => round.socle));
  const baseline = medianOf(rounds.map((round) => round.baseline));
  const ratio = socle.processedPerSecond / baseline.processedPerSecond;
  const worstLatencyP99Ms = Math.max(...rounds.map((round) => round.socle.latencyP99Ms));
  return {
    scenario: scenario.name,
    dialect,
    jobCount: scenario.jobCount,
    socle,
    baseline,
    rounds,
    ratio,
    goal: scenario.goal,
    goalMet: ratio >= scenario.goal,
    worstLatencyP99Ms,
    latencyGoalMs: scenario.latencyGoalMs,
    latencyGoalMet: worstLatencyP99Ms < scenario.latencyGoalMs,
    profiles,
  };
}

const number = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const micro = new Intl.NumberFormat('en-US', { minimumFractionDigits: 3, maximumFractionDigits: 3 });

/** Where each contender's drain spent its CPU (`--profile`), per job. */
export async function formatWorkProfiles(result: WorkScenarioResult): Promise<string> {
  const parts: string[] = [];
  for (const label of ['socle', 'baseline'] as const) {
    const profile = result.profiles[label];
    if (profile === undefined) continue;
    const summary = await summarizeProfile(profile, 15);
    parts.push(
      `  ${label} drain CPU by package (${profile}), per job:\n${formatProfileEntries(summary.byPackage, result.jobCount)}`,
      `  ${label} heaviest functions:\n${formatProfileEntries(summary.byFunction, result.jobCount)}`,
    );
  }
  return parts.join('\n');
}

export function formatWorkResult(result: WorkScenarioResult): string {
  const rows = (['socle', 'baseline'] as const).flatMap((label) => {
    const figures = result[label];
    const database =
      figures.databaseDrainCpuMillisecondsPerJob === null
        ? ''
        : `, database ${micro.format(figures.databaseDrainCpuMillisecondsPerJob)} ms/job`;
    return [
      `  ${label.padEnd(9)} ${number.format(figures.processedPerSecond).padStart(7)} jobs/s processed` +
        `  (drain cpu ${micro.format(figures.drainCpuMillisecondsPerJob)} ms/job${database})`,
      `            enqueue ${number.format(figures.enqueuePerSecond)} jobs/s in one statement, ` +
        `${number.format(figures.enqueueEachPerSecond)} jobs/s one by one; idle enqueue→start ` +
        `p50 ${decimal.format(figures.latencyP50Ms)} ms, p99 ${decimal.format(figures.latencyP99Ms)} ms, ` +
        `max ${decimal.format(figures.latencyMaxMs)} ms`,
    ];
  });
  return [
    `${result.scenario} (${result.dialect}, ${number.format(result.jobCount)} no-op jobs)`,
    ...rows,
    `  ratio ${decimal.format(result.ratio)} (goal ≥ ${decimal.format(result.goal)}: ${result.goalMet ? 'met' : 'NOT met'})` +
      `; drain cpu ratio ${decimal.format(
        result.baseline.drainCpuMillisecondsPerJob / result.socle.drainCpuMillisecondsPerJob,
      )} (baseline drain cpu/job ÷ socle's)`,
    `  idle enqueue→start: socle's worst p99 over ${result.rounds.length} round(s) ${decimal.format(result.worstLatencyP99Ms)} ms ` +
      `(goal < ${result.latencyGoalMs} ms in every round: ${result.latencyGoalMet ? 'met' : 'NOT met'})`,
  ].join('\n');
}
