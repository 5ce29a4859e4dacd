/**
 * The jobs workload both runners execute, so Socle and raw pg-boss do the same work: enqueue
 * `count` no-op jobs in one transaction (workers already running see them at commit), time the
 * drain, then time enqueue→start of single jobs on the idle queue.
 */
import type { BenchDialect } from '../../server-protocol.js';

/** Settings of a runner child, in `BENCH_JOBS_SETTINGS`. */
export interface JobsRunSettings {
  readonly dialect: BenchDialect;
  readonly databaseUrl: string | undefined;
  readonly poolMax: number;
  readonly jobCount: number;
  readonly latencySamples: number;
}

/** One runner's figures, printed as `result <json>` on its last line. */
export interface JobsRunResult {
  /** Jobs inserted per second inside the enqueue transaction. */
  readonly enqueuePerSecond: number;
  /** Jobs completed per second, from the commit to the last completion. */
  readonly processedPerSecond: number;
  /** Enqueue (autocommit) to handler start of one job on an idle queue. */
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  /** CPU of the runner process per processed job (user + system), over enqueue and drain. */
  readonly cpuMillisecondsPerJob: number;
}

export const JOBS_SETTINGS_ENV = 'BENCH_JOBS_SETTINGS';
/** Fetch settings both sides use (the measured ones: batch 100, burst while batches come back full). */
export const BATCH_SIZE = 100;
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
  /** Enqueues `count` jobs inside one transaction. */
  enqueueInOneTransaction(count: number): Promise<void>;
  /** Enqueues one job on its own. */
  enqueueOne(): Promise<void>;
  close(): Promise<void>;
}

/** Calls from the handler: every job started reports here. */
export const handlerHooks = { onStart: (): void => undefined };

export async function runWorkload(
  settings: JobsRunSettings,
  contender: JobsContender,
): Promise<JobsRunResult> {
  const cpuBefore = process.cpuUsage();
  let started = 0;
  let allStarted: () => void = () => undefined;
  const drained = new Promise<void>((resolve) => {
    allStarted = resolve;
  });
  handlerHooks.onStart = () => {
    started += 1;
    if (started === settings.jobCount) allStarted();
  };
  const enqueueStart = performance.now();
  await contender.enqueueInOneTransaction(settings.jobCount);
  const committed = performance.now();
  await drained;
  const finished = performance.now();
  const cpu = process.cpuUsage(cpuBefore);

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
  await contender.close();
  return {
    enqueuePerSecond: settings.jobCount / ((committed - enqueueStart) / 1000),
    processedPerSecond: settings.jobCount / ((finished - committed) / 1000),
    latencyP50Ms: percentile(latencies, 0.5),
    latencyP99Ms: percentile(latencies, 0.99),
    cpuMillisecondsPerJob: (cpu.user + cpu.system) / 1000 / settings.jobCount,
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
