import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import {
  createOutboundModule,
  createSilentLogger,
  createSocle,
  defineModule,
  defineProvider,
  type OutboundServices,
} from 'socle';
import { Agent, request } from 'undici';
import type { CustomScenario } from '../../scenario.js';
import { benchSocleConfig } from '../shared/socle-setup.js';

/** Calls in flight at once, each loop awaiting its answer before the next call. */
const DEFAULT_CONCURRENCY = 32;
/**
 * Slices of each side per round, alternating A B B A …: a burst of other work on the (shared)
 * machine, or a pause of the collector, falls on both sides instead of on whichever ran then.
 */
const SLICES = 4;
/** Calls refused by an open circuit, one after the other. */
const FAIL_FAST_CALLS = 20_000;
const OVERHEAD_GOAL = 0.9;
const FAIL_FAST_GOAL_MS = 1;

interface LoadFigures {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** This process's CPU (user + system) per call, the local fake's share included. */
  readonly cpuUsPerCall: number;
  /** Time the garbage collector paused this process during the side's slices, per second. */
  readonly gcMsPerSecond: number;
}

/** What one side measured in a round's slices, added up. */
interface LoadSample {
  calls: number;
  seconds: number;
  cpuUs: number;
  gcMs: number;
  readonly latencies: number[];
}

const percentile = (sorted: Float64Array, fraction: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;

/** Collector pauses of this process (start and duration, ms on `performance.now()`'s clock). */
const gcPauses: { start: number; duration: number }[] = [];
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPauses.push({ start: entry.startTime, duration: entry.duration });
});

/** Runs `call` from `concurrency` loops for `seconds`, adding what it measured to `sample`. */
async function load(
  call: () => Promise<unknown>,
  concurrency: number,
  seconds: number,
  sample: LoadSample,
): Promise<void> {
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const until = started + seconds * 1000;
  let calls = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const begin = performance.now();
        await call();
        sample.latencies.push(performance.now() - begin);
        calls++;
      }
    }),
  );
  const ended = performance.now();
  const cpu = process.cpuUsage(cpuBefore);
  // Entries arrive after the pause: wait a tick for those of this slice.
  await new Promise((resolve) => setImmediate(resolve));
  for (const pause of gcPauses)
    if (pause.start >= started && pause.start < ended) sample.gcMs += pause.duration;
  sample.calls += calls;
  sample.seconds += (ended - started) / 1000;
  sample.cpuUs += cpu.user + cpu.system;
}

const newSample = (): LoadSample => ({ calls: 0, seconds: 0, cpuUs: 0, gcMs: 0, latencies: [] });

const figuresOf = (sample: LoadSample): LoadFigures => {
  const sorted = Float64Array.from(sample.latencies).sort();
  return {
    cpuUsPerCall: sample.cpuUs / Math.max(1, sample.calls),
    requestsPerSecond: sample.calls / sample.seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    gcMsPerSecond: sample.gcMs / sample.seconds,
  };
};

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

const format = (label: string, figures: LoadFigures) =>
  `  ${label.padEnd(9)} ${Math.round(figures.requestsPerSecond).toLocaleString('en-US').padStart(7)} req/s  p50 ${figures.p50Ms.toFixed(2)} ms  p99 ${figures.p99Ms.toFixed(2)} ms`;

/**
 * A declared client (`defineProvider` with its default retry, breaker and timeouts, metrics and
 * logs, in a running Socle) against a bare `undici` request with a keep-alive agent, both calling
 * the same local fake in this process; then the time a call takes to fail with the circuit open.
 */
export const outbound: CustomScenario = {
  kind: 'custom',
  name: 'outbound',
  description: 'declared outbound client vs bare undici against one local fake; breaker-open fail-fast time',
  dialects: ['postgres', 'pglite'],
  async run(dialect, settings) {
    let failing = false;
    const fake = createServer((incoming, response) => {
      incoming.resume();
      incoming.on('end', () => {
        response.writeHead(failing ? 500 : 200, { 'content-type': 'application/json' });
        response.end('{"ok":true}');
      });
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(fake.address() as AddressInfo).port}`;

    const declared = defineProvider('bench', { baseUrl: url });
    const breaking = defineProvider('bench-breaking', {
      baseUrl: url,
      retry: false,
      breaker: { failureRate: 0.5, minimumCalls: 5, windowMs: 60_000, halfOpenAfterMs: 600_000 },
    });
    const holder = defineModule({
      name: 'bench_outbound',
      dependsOn: ['outbound'],
      setup(context) {
        const { outbound: service } = context.servicesOf<OutboundServices>('outbound');
        return { client: service.client(declared), breaking: service.client(breaking) };
      },
    });
    const dataDir = dialect === 'pglite' ? await mkdtemp(join(tmpdir(), 'socle-bench-outbound-')) : undefined;
    const socle = await createSocle({
      config: benchSocleConfig(
        { dialect, databaseUrl: settings.databaseUrl, poolMax: settings.poolMax },
        dataDir === undefined ? {} : { dataDir },
      ),
      modules: [createOutboundModule(), holder],
      log: createSilentLogger(),
    });
    const agent = new Agent({ keepAliveTimeout: 10_000, connections: 128 });
    try {
      const { client, breaking: breakingClient } = socle.servicesOf(holder);
      const concurrency = settings.connections ?? DEFAULT_CONCURRENCY;
      const bare = async () => {
        const answer = await request(`${url}/models`, { method: 'GET', dispatcher: agent });
        return answer.body.json();
      };
      const viaSocle = async () => (await client.request({ method: 'GET', path: 'models' })).json();
      // Warm both paths (connections, JIT) before measuring.
      await load(bare, concurrency, 1, newSample());
      await load(viaSocle, concurrency, 1, newSample());
      gcObserver.observe({ entryTypes: ['gc'] });
      const rounds: { baseline: LoadFigures; socle: LoadFigures; loadAverage: number }[] = [];
      const slice = settings.durationSeconds / SLICES;
      for (let round = 0; round < settings.rounds; round++) {
        const bareSample = newSample();
        const socleSample = newSample();
        for (let index = 0; index < SLICES; index++) {
          const bareFirst = index % 2 === 0;
          await load(bareFirst ? bare : viaSocle, concurrency, slice, bareFirst ? bareSample : socleSample);
          await load(bareFirst ? viaSocle : bare, concurrency, slice, bareFirst ? socleSample : bareSample);
        }
        gcPauses.length = 0;
        const baseline = figuresOf(bareSample);
        const socleFigures = figuresOf(socleSample);
        const loadAverage = loadavg()[0] ?? 0;
        rounds.push({ baseline, socle: socleFigures, loadAverage });
        settings.progress(
          `round ${round + 1}: ratio ${(socleFigures.requestsPerSecond / baseline.requestsPerSecond).toFixed(2)}, CPU ratio ${(baseline.cpuUsPerCall / socleFigures.cpuUsPerCall).toFixed(2)} (${socleFigures.cpuUsPerCall.toFixed(0)} vs ${baseline.cpuUsPerCall.toFixed(0)} µs), GC ${socleFigures.gcMsPerSecond.toFixed(1)} vs ${baseline.gcMsPerSecond.toFixed(1)} ms/s, load ${loadAverage.toFixed(1)}`,
        );
      }
      gcObserver.disconnect();
      const pick = (side: 'baseline' | 'socle'): LoadFigures => ({
        requestsPerSecond: median(rounds.map((round) => round[side].requestsPerSecond)),
        p50Ms: median(rounds.map((round) => round[side].p50Ms)),
        p99Ms: median(rounds.map((round) => round[side].p99Ms)),
        cpuUsPerCall: median(rounds.map((round) => round[side].cpuUsPerCall)),
        gcMsPerSecond: median(rounds.map((round) => round[side].gcMsPerSecond)),
      });
      const socleFigures = pick('socle');
      const baseline = pick('baseline');
      // Each round's two sides ran interleaved: their ratio is a paired figure; its median over the
      // rounds (not the ratio of each side's median, which pairs different rounds).
      const ratio = median(
        rounds.map((round) => round.socle.requestsPerSecond / round.baseline.requestsPerSecond),
      );
      // CPU per call, baseline over Socle: what the client costs, less sensitive to a busy machine.
      const cpuRatio = median(rounds.map((round) => round.baseline.cpuUsPerCall / round.socle.cpuUsPerCall));

      // Open the circuit, then time calls that it refuses.
      failing = true;
      for (let call = 0; call < 10 && breakingClient.circuitState() !== 'open'; call++)
        await breakingClient.request({ method: 'GET', path: 'models' }).catch(() => undefined);
      if (breakingClient.circuitState() !== 'open') throw new Error('the circuit did not open');
      const failFast = new Float64Array(FAIL_FAST_CALLS);
      // CPU per refused call: what the code costs, whatever other processes take of the cores (the
      // p99 of a 15 µs call on a loaded machine is mostly the time this process waited for one).
      const failFastCpu = process.cpuUsage();
      for (let call = 0; call < FAIL_FAST_CALLS; call++) {
        const begin = performance.now();
        await breakingClient.request({ method: 'GET', path: 'models' }).catch(() => undefined);
        failFast[call] = performance.now() - begin;
      }
      const failFastCpuUs = process.cpuUsage(failFastCpu);
      failFast.sort();
      const failFastFigures = {
        p50Ms: percentile(failFast, 0.5),
        p99Ms: percentile(failFast, 0.99),
        cpuUsPerCall: (failFastCpuUs.user + failFastCpuUs.system) / FAIL_FAST_CALLS,
      };

      const text = [
        `outbound (${dialect}, ${concurrency} concurrent calls, ${settings.durationSeconds} s a side in ${SLICES} alternating slices, median of ${rounds.length} rounds)`,
        format('socle', socleFigures),
        format('baseline', baseline),
        `  ratio ${ratio.toFixed(2)} (median of the rounds' ratios; goal ≥ ${OVERHEAD_GOAL.toFixed(2)}: ${ratio >= OVERHEAD_GOAL ? 'met' : 'NOT met'}); CPU per call ${socleFigures.cpuUsPerCall.toFixed(0)} vs ${baseline.cpuUsPerCall.toFixed(0)} µs, CPU ratio ${cpuRatio.toFixed(2)}`,
        `  GC pauses ${socleFigures.gcMsPerSecond.toFixed(1)} vs ${baseline.gcMsPerSecond.toFixed(1)} ms/s; load average ${rounds.map((round) => round.loadAverage.toFixed(1)).join(', ')}`,
        `  breaker open: fail fast p50 ${(failFastFigures.p50Ms * 1000).toFixed(1)} µs  p99 ${(failFastFigures.p99Ms * 1000).toFixed(1)} µs (goal p99 < ${FAIL_FAST_GOAL_MS} ms: ${failFastFigures.p99Ms < FAIL_FAST_GOAL_MS ? 'met' : 'NOT met'}); CPU ${failFastFigures.cpuUsPerCall.toFixed(1)} µs per refused call`,
      ].join('\n');
      return {
        scenario: 'outbound',
        dialect,
        text,
        figures: { socle: socleFigures, baseline, ratio, cpuRatio, rounds, failFast: failFastFigures },
      };
    } finally {
      await socle.close();
      await agent.close();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
      if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
    }
  },
};
