/**
 * The jobs workload both runners execute, so Socle and raw pg-boss do the same work: enqueue
 * `count` no-op jobs in one transaction (workers already running see them at commit), time the
 * drain, then time enqueue→start of single jobs on the idle queue.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { openDatabaseCpu } from '../../database-cpu.js';
import type { BenchDialect } from '../../server-protocol.js';

/** Settings of a runner child, in `BENCH_JOBS_SETTINGS`. */
export interface JobsRunSettings {
  readonly dialect: BenchDialect;
  readonly databaseUrl: string | undefined;
  readonly poolMax: number;
  readonly jobCount: number;
  readonly latencySamples: number;
  /** When set, a CPU profile of the drain (commit to last job started) is written there. */
  readonly profilePath?: string | undefined;
}

/** One runner's figures, printed as `result <json>` on its last line. */
export interface JobsRunResult {
  /** Jobs inserted per second by the batch enqueue (one statement, one transaction). */
  readonly enqueuePerSecond: number;
  /** Jobs inserted per second one statement each, in one transaction ({@link EACH_COUNT} jobs). */
  readonly enqueueEachPerSecond: number;
  /** Jobs completed per second, from the commit to the last completion. */
  readonly processedPerSecond: number;
  /** Enqueue (autocommit) to handler start of one job on an idle queue. */
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  readonly latencyMaxMs: number;
  /** CPU of the runner process per processed job (user + system), over the batch enqueue and drain. */
  readonly cpuMillisecondsPerJob: number;
  /** CPU per job while enqueueing (before the commit). */
  readonly enqueueCpuMillisecondsPerJob: number;
  /** CPU per job from the commit to the last job started: what bounds jobs/s processed. */
  readonly drainCpuMillisecondsPerJob: number;
  /**
   * CPU of the database's Postgres backends per job over the drain (Postgres only; 10 ms clock
   * ticks, so ±0.002 ms/job at 20k jobs). PGlite runs in the runner's process: its CPU is in the above.
   */
  readonly databaseDrainCpuMillisecondsPerJob: number | null;
}

export const JOBS_SETTINGS_ENV = 'BENCH_JOBS_SETTINGS';
/** Fetch settings both sides use (the measured ones: batch 100, burst while batches come back full). */
export const BATCH_SIZE = 500;
export const FETCH_LOOPS = 2;

export function readSettings(): JobsRunSettings {
  const raw = process.env[JOBS_SETTINGS_ENV];
  if (raw === undefined)
    throw new Error(`${JOBS_SETTINGS_ENV} is not set: this runner is started by the bench`);
  return JSON.parse(raw) as JobsRunSettings;
}

function percentile(sorted: readonly number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
}

/** What a runner plugs into {@link runWorkload}: its enqueue paths and its handler hook. */
export interface JobsContender {
  /** Enqueues `count` jobs inside one transaction, in one statement (the batch API). */
  enqueueBatch(count: number): Promise<void>;
  /** Enqueues `count` jobs inside one transaction, one statement each (the single-job API). */
  enqueueEach(count: number): Promise<void>;
  /** Enqueues one job on its own. */
  enqueueOne(): Promise<void>;
  close(): Promise<void>;
}

/** Jobs enqueued one statement each, after the latency samples: that path's enqueue rate. */
export const EACH_COUNT = 2000;

/** Calls from the handler: every job started reports here. */
export const handlerHooks = { onStart: (): void => undefined };

/** Resolves when `count` more jobs have started. */
function startsOf(count: number): Promise<void> {
  let started = 0;
  return new Promise<void>((resolve) => {
    handlerHooks.onStart = () => {
      started += 1;
      if (started === count) resolve();
    };
  });
}

export async function runWorkload(
  settings: JobsRunSettings,
  contender: JobsContender,
): Promise<JobsRunResult> {
  const drained = startsOf(settings.jobCount);
  const databaseCpu =
    settings.databaseUrl === undefined ? undefined : await openDatabaseCpu(settings.databaseUrl);
  const cpuBefore = process.cpuUsage();
  const enqueueStart = performance.now();
  await contender.enqueueBatch(settings.jobCount);
  const committed = performance.now();
  const cpuEnqueue = process.cpuUsage(cpuBefore);
  const databaseCpuAtCommit = await databaseCpu?.read();
  const stopProfile =
    settings.profilePath === undefined ? undefined : await startProfile(settings.profilePath);
  const callgrind = process.env.BENCH_JOBS_CALLGRIND === '1';
  if (callgrind) await callgrindControl('--zero');
  await drained;
  if (callgrind) await callgrindControl('--dump=drain');
  await stopProfile?.();
  const finished = performance.now();
  const cpu = process.cpuUsage(cpuBefore);
  const databaseCpuAtEnd = await databaseCpu?.read();
  await databaseCpu?.close();
  const perJob = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1000 / settings.jobCount;

  const latencies: number[] = [];
  for (let sample = 0; sample < settings.latencySamples; sample++) {
    // Idle queue: the previous job has started and the worker is waiting again.
    await new Promise((resolve) => setTimeout(resolve, 20));
    let startedAt = 0;
    const start = new Promise<void>((resolve) => {
      handlerHooks.onStart = () => {
        startedAt = performance.now();
        resolve();
      };
    });
    const sent = performance.now();
    await contender.enqueueOne();
    await start;
    latencies.push(startedAt - sent);
  }
  latencies.sort((a, b) => a - b);

  const eachDrained = startsOf(EACH_COUNT);
  const eachStart = performance.now();
  await contender.enqueueEach(EACH_COUNT);
  const eachCommitted = performance.now();
  await eachDrained;
  await contender.close();
  return {
    enqueuePerSecond: settings.jobCount / ((committed - enqueueStart) / 1000),
    enqueueEachPerSecond: EACH_COUNT / ((eachCommitted - eachStart) / 1000),
    processedPerSecond: settings.jobCount / ((finished - committed) / 1000),
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP99Ms: percentile(latencies, 0.99),
    latencyMaxMs: latencies.at(-1) ?? Number.NaN,
    cpuMillisecondsPerJob: perJob(cpu),
    enqueueCpuMillisecondsPerJob: perJob(cpuEnqueue),
    drainCpuMillisecondsPerJob: perJob(cpu) - perJob(cpuEnqueue),
    databaseDrainCpuMillisecondsPerJob:
      databaseCpuAtEnd === undefined || databaseCpuAtCommit === undefined
        ? null
        : (databaseCpuAtEnd - databaseCpuAtCommit) / settings.jobCount,
  };
}

/**
 * Under `valgrind --tool=callgrind` (`BENCH_JOBS_CALLGRIND=1`): zeroes the counts at the commit and
 * dumps them (`<out>.1`) when the last job has started, so that file holds the drain's instructions:
 * repeatable where CPU time on a shared machine is not.
 */
function callgrindControl(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('callgrind_control', [command, String(process.pid)], (error) =>
      error === null ? resolve() : reject(error),
    );
  });
}

/**
 * Profiles this process until the returned function is called. Started at the commit, so the profile
 * holds the drain only. Sampling every 100 µs: the drain lasts a couple of seconds.
 */
async function startProfile(path: string): Promise<() => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    await writeFile(path, JSON.stringify(profile));
  };
}

/** Runs the workload and prints the result line the harness reads; exits non-zero on failure. */
export function runJobsChild(open: (settings: JobsRunSettings) => Promise<JobsContender>): void {
  const settings = readSettings();
  open(settings)
    .then((contender) => runWorkload(settings, contender))
    .then(
      (result) => {
        process.stdout.write(`result ${JSON.stringify(result)}\n`);
        process.exit(0);
      },
      (error: unknown) => {
        console.error((error as Error).stack ?? String(error));
        process.exit(1);
      },
    );
}
