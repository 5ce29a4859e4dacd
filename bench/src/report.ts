import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import type { ScenarioResult } from './harness.js';

const integerFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

function milliseconds(value: number): string {
  return `${value < 10 ? value.toFixed(2) : value.toFixed(1)} ms`;
}

/**
 * The human-readable block of one result:
 *
 * ```
 * db-select (postgres, 50 conns, 10 s)
 *   socle     14,210 req/s  p50 3.10 ms  p99 7.90 ms
 *   baseline  15,820 req/s  p50 2.90 ms  p99 6.80 ms
 *   ratio 0.90 (goal ≥ 0.80: met)
 * ```
 */
export function formatResult(result: ScenarioResult): string {
  const rows = (['socle', 'baseline'] as const).map((label) => {
    const figures = result[label];
    return [
      label.padEnd(9),
      `${integerFormat.format(figures.requestsPerSecond).padStart(7)} req/s`,
      `p50 ${milliseconds(figures.latencyMs.p50).padStart(8)}`,
      `p99 ${milliseconds(figures.latencyMs.p99).padStart(8)}`,
      figures.cpuMillisecondsPerRequest === undefined || figures.cpuCoresUsed === undefined
        ? ''
        : `cpu ${figures.cpuMillisecondsPerRequest.toFixed(3)} ms/req (${figures.cpuCoresUsed.toFixed(2)} cores)`,
    ]
      .filter((column) => column !== '')
      .join('  ');
  });
  const lines = [
    `${result.scenario} (${result.dialect}, ${result.connections} conns, ${result.durationSeconds} s${
      result.rounds.length > 1 ? `, median of ${result.rounds.length} rounds` : ''
    })`,
    ...rows.map((row) => `  ${row}`),
    `  ratio ${result.ratio.toFixed(2)} (goal ≥ ${result.goal.toFixed(2)}: ${result.goalMet ? 'met' : 'NOT met'})`,
    ...cpuRatioLine(result),
    ...(result.rounds.length > 1
      ? [`  ratio per round: ${result.rounds.map((round) => round.ratio.toFixed(2)).join(' ')}`]
      : []),
    ...result.warnings.map((warning) => `  warning: ${warning}`),
  ];
  return lines.join('\n');
}

/**
 * The baseline's CPU per request over Socle's: what the req/s ratio tends to when the server's
 * core is the bottleneck. Steadier than req/s on a busy machine.
 */
function cpuRatioLine(result: ScenarioResult): string[] {
  const socle = result.socle.cpuMillisecondsPerRequest;
  const baseline = result.baseline.cpuMillisecondsPerRequest;
  if (socle === undefined || baseline === undefined || socle === 0) return [];
  return [`  cpu ratio ${(baseline / socle).toFixed(2)} (baseline cpu/req ÷ socle cpu/req)`];
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch {
    return undefined;
  }
}

/** Facts that make two result files comparable or not. */
function environment() {
  const cpus = os.cpus();
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model,
    loadAverage: os.loadavg(),
    commit: gitCommit(),
  };
}

/**
 * Writes `<scenario>-<timestamp>.json` for each scenario run (all its dialects in one file) and
 * `latest.json` with everything this invocation measured. Returns the paths written.
 */
export async function writeResults(
  directory: string,
  startedAt: Date,
  options: Readonly<Record<string, unknown>>,
  results: readonly ScenarioResult[],
): Promise<string[]> {
  await mkdir(directory, { recursive: true });
  const stamp = startedAt
    .toISOString()
    .replaceAll(':', '-')
    .replace(/\.\d+Z$/, 'Z');
  const header = { startedAt: startedAt.toISOString(), options, environment: environment() };
  const written: string[] = [];
  const names = [...new Set(results.map((result) => result.scenario))];
  for (const name of names) {
    const path = join(directory, `${name}-${stamp}.json`);
    const runs = results.filter((result) => result.scenario === name);
    await writeFile(path, `${JSON.stringify({ ...header, scenario: name, runs }, null, 2)}\n`);
    written.push(path);
  }
  const latest = join(directory, 'latest.json');
  await writeFile(latest, `${JSON.stringify({ ...header, results }, null, 2)}\n`);
  written.push(latest);
  return written;
}
