import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
}

const percentile = (sorted: Float64Array, fraction: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0;

/** Runs `call` from `concurrency` loops for `seconds`; req/s and latency percentiles. */
async function load(
  call: () => Promise<unknown>,
  concurrency: number,
  seconds: number,
): Promise<LoadFigures> {
  const latencies: number[] = [];
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const begin = performance.now();
        await call();
        latencies.push(performance.now() - begin);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const sorted = Float64Array.from(latencies).sort();
  return {
    cpuUsPerCall: (cpu.user + cpu.system) / Math.max(1, latencies.length),
    requestsPerSecond: latencies.length / elapsed,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
  };
}

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
      await load(bare, concurrency, 1);
      await load(viaSocle, concurrency, 1);
      const rounds: { baseline: LoadFigures; socle: LoadFigures }[] = [];
      for (let round = 0; round < settings.rounds; round++) {
        const baseline = await load(bare, concurrency, settings.durationSeconds);
        const socleFigures = await load(viaSocle, concurrency, settings.durationSeconds);
        rounds.push({ baseline, socle: socleFigures });
        settings.progress(
          `round ${round + 1}: ratio ${(socleFigures.requestsPerSecond / baseline.requestsPerSecond).toFixed(2)}, CPU ratio ${(baseline.cpuUsPerCall / socleFigures.cpuUsPerCall).toFixed(2)}`,
        );
      }
      const pick = (side: 'baseline' | 'socle'): LoadFigures => ({
        requestsPerSecond: median(rounds.map((round) => round[side].requestsPerSecond)),
        p50Ms: median(rounds.map((round) => round[side].p50Ms)),
        p99Ms: median(rounds.map((round) => round[side].p99Ms)),
        cpuUsPerCall: median(rounds.map((round) => round[side].cpuUsPerCall)),
      });
      const socleFigures = pick('socle');
      const baseline = pick('baseline');
      const ratio = socleFigures.requestsPerSecond / baseline.requestsPerSecond;
      // CPU per call, baseline over Socle: what the client costs, less sensitive to a busy machine.
      const cpuRatio = baseline.cpuUsPerCall / socleFigures.cpuUsPerCall;

      // Open the circuit, then time calls that it refuses.
      failing = true;
      for (let call = 0; call < 10 && breakingClient.circuitState() !== 'open'; call++)
        await breakingClient.request({ method: 'GET', path: 'models' }).catch(() => undefined);
      if (breakingClient.circuitState() !== 'open') throw new Error('the circuit did not open');
      const failFast = new Float64Array(FAIL_FAST_CALLS);
      for (let call = 0; call < FAIL_FAST_CALLS; call++) {
        const begin = performance.now();
        await breakingClient.request({ method: 'GET', path: 'models' }).catch(() => undefined);
        failFast[call] = performance.now() - begin;
      }
      failFast.sort();
      const failFastFigures = { p50Ms: percentile(failFast, 0.5), p99Ms: percentile(failFast, 0.99) };

      const text = [
        `outbound (${dialect}, ${concurrency} concurrent calls, ${settings.durationSeconds} s, median of ${rounds.length} rounds)`,
        format('socle', socleFigures),
        format('baseline', baseline),
        `  ratio ${ratio.toFixed(2)} (goal ≥ ${OVERHEAD_GOAL.toFixed(2)}: ${ratio >= OVERHEAD_GOAL ? 'met' : 'NOT met'}); CPU per call ${socleFigures.cpuUsPerCall.toFixed(0)} vs ${baseline.cpuUsPerCall.toFixed(0)} µs, CPU ratio ${cpuRatio.toFixed(2)}`,
        `  breaker open: fail fast p50 ${(failFastFigures.p50Ms * 1000).toFixed(1)} µs  p99 ${(failFastFigures.p99Ms * 1000).toFixed(1)} µs (goal p99 < ${FAIL_FAST_GOAL_MS} ms: ${failFastFigures.p99Ms < FAIL_FAST_GOAL_MS ? 'met' : 'NOT met'})`,
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
