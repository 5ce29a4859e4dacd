import type { CustomResult, CustomRunSettings, CustomScenario } from '../../scenario.js';
import { spawnServer } from '../../server-process.js';
import type { BenchDialect } from '../../server-protocol.js';
import {
  openPusherSubscribers,
  openSocketIoSubscribers,
  publishPusher,
  publishSocketIo,
  type Subscribers,
} from './clients.js';

/** Subscriber counts measured; the largest also gives memory per idle connection. */
const SIZES = [1000, 10_000] as const;
/** Messages published one after another (each waits for every delivery) for latency. */
const LATENCY_MESSAGES = 30;
/** Messages published at once for throughput (deliveries per second). */
const BURST_MESSAGES = 20;
const DELIVERY_TIMEOUT_MS = 60_000;

interface Contender {
  readonly label: 'socle' | 'socket.io';
  readonly entry: URL;
  open(baseUrl: string, count: number): Promise<Subscribers>;
  publish(baseUrl: string, data: string): Promise<void>;
}

const contenders: readonly Contender[] = [
  {
    label: 'socle',
    entry: new URL('./socle-server.js', import.meta.url),
    open: openPusherSubscribers,
    publish: publishPusher,
  },
  {
    label: 'socket.io',
    entry: new URL('./socketio-server.js', import.meta.url),
    open: openSocketIoSubscribers,
    publish: publishSocketIo,
  },
];

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] as number;
}

async function memoryOf(baseUrl: string): Promise<{ rss: number; heap: number }> {
  return (await (await fetch(`${baseUrl}/bench/memory`)).json()) as { rss: number; heap: number };
}

async function cpuOf(baseUrl: string): Promise<{ cpuMicros: number }> {
  return (await (await fetch(`${baseUrl}/bench/cpu`)).json()) as { cpuMicros: number };
}

/** Waits until `expected` deliveries arrived since `counter.count` was reset. */
function deliveries(subscribers: Subscribers, expected: number): { done: Promise<void>; times: number[] } {
  const times: number[] = [];
  let resolveDone: () => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    setTimeout(
      () =>
        reject(new Error(`only ${times.length} of ${expected} deliveries within ${DELIVERY_TIMEOUT_MS} ms`)),
      DELIVERY_TIMEOUT_MS,
    ).unref();
  });
  subscribers.onDelivery = (at) => {
    times.push(at);
    if (times.length === expected) resolveDone();
  };
  return { done, times };
}

interface SizeFigures {
  subscribers: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  deliveriesPerSecond: number;
  /** Server CPU time (user + system) per delivery during the burst: independent of the client's speed. */
  serverCpuMicrosPerDelivery: number;
  rssPerConnectionBytes: number;
  heapPerConnectionBytes: number;
}

async function measure(contender: Contender, baseUrl: string, count: number): Promise<SizeFigures> {
  const before = await memoryOf(baseUrl);
  const subscribers = await contender.open(baseUrl, count);
  try {
    const idle = await memoryOf(baseUrl);
    const latencies: number[] = [];
    for (let message = 0; message < LATENCY_MESSAGES; message++) {
      const wait = deliveries(subscribers, count);
      const started = performance.now();
      await contender.publish(baseUrl, `{"n":${message}}`);
      await wait.done;
      for (const at of wait.times) latencies.push(at - started);
    }
    latencies.sort((a, b) => a - b);
    const burst = deliveries(subscribers, count * BURST_MESSAGES);
    const cpuBefore = await cpuOf(baseUrl);
    const burstStarted = performance.now();
    await Promise.all(
      Array.from({ length: BURST_MESSAGES }, (_, message) => contender.publish(baseUrl, `{"b":${message}}`)),
    );
    await burst.done;
    const burstSeconds = (performance.now() - burstStarted) / 1000;
    const cpuAfter = await cpuOf(baseUrl);
    return {
      subscribers: count,
      latencyP50Ms: percentile(latencies, 0.5),
      latencyP99Ms: percentile(latencies, 0.99),
      deliveriesPerSecond: (count * BURST_MESSAGES) / burstSeconds,
      serverCpuMicrosPerDelivery: (cpuAfter.cpuMicros - cpuBefore.cpuMicros) / (count * BURST_MESSAGES),
      rssPerConnectionBytes: (idle.rss - before.rss) / count,
      heapPerConnectionBytes: (idle.heap - before.heap) / count,
    };
  } finally {
    await subscribers.close();
  }
}

const format = (figures: SizeFigures) =>
  `${String(figures.subscribers).padStart(6)} subs  p50 ${figures.latencyP50Ms.toFixed(2).padStart(7)} ms  p99 ${figures.latencyP99Ms
    .toFixed(2)
    .padStart(
      7,
    )} ms  ${Math.round(figures.deliveriesPerSecond).toLocaleString('en-US').padStart(9)} deliveries/s  ${figures.serverCpuMicrosPerDelivery.toFixed(1).padStart(5)} µs cpu/delivery  ${(
    figures.rssPerConnectionBytes / 1024
  )
    .toFixed(1)
    .padStart(
      5,
    )} KiB rss/conn  ${(figures.heapPerConnectionBytes / 1024).toFixed(1).padStart(5)} KiB heap/conn`;

/**
 * One node, N raw-`ws` subscribers of one channel, events published through the server's HTTP
 * endpoint: publish → receive latency (every delivery), deliveries per second in a burst, and
 * memory per idle connection, on Socle (Pusher protocol) and on Socket.IO 4 in the same run.
 */
export const realtimeFanout: CustomScenario = {
  kind: 'custom',
  name: 'realtime-fanout',
  description: 'one channel, N subscribers, REST publish: Socle (Pusher protocol) vs Socket.IO 4',
  dialects: ['postgres', 'pglite'],
  async run(dialect: BenchDialect, settings: CustomRunSettings): Promise<CustomResult> {
    const results: Record<string, SizeFigures[]> = {};
    for (let round = 0; round < settings.rounds; round++) {
      for (const contender of contenders) {
        const server = await spawnServer({
          label: contender.label,
          entry: contender.entry,
          settings: { dialect, databaseUrl: settings.databaseUrl, poolMax: settings.poolMax },
          signal: settings.signal,
        });
        try {
          for (const size of SIZES) {
            settings.progress(`  ${contender.label}: ${size} subscribers (round ${round + 1})`);
            const figures = await measure(contender, server.url, size);
            settings.progress(`    ${format(figures)}`);
            results[contender.label] = [...(results[contender.label] ?? []), figures];
          }
        } finally {
          await server.stop();
        }
      }
    }
    // Medians over rounds, per size.
    const median = (label: string, size: number): SizeFigures => {
      const all = (results[label] ?? []).filter((figures) => figures.subscribers === size);
      const pick = (key: keyof SizeFigures) =>
        all.map((figures) => figures[key]).sort((a, b) => a - b)[Math.floor(all.length / 2)] as number;
      return {
        subscribers: size,
        latencyP50Ms: pick('latencyP50Ms'),
        latencyP99Ms: pick('latencyP99Ms'),
        deliveriesPerSecond: pick('deliveriesPerSecond'),
        serverCpuMicrosPerDelivery: pick('serverCpuMicrosPerDelivery'),
        rssPerConnectionBytes: pick('rssPerConnectionBytes'),
        heapPerConnectionBytes: pick('heapPerConnectionBytes'),
      };
    };
    const lines = [`realtime-fanout (${dialect}, ${settings.rounds} round(s), medians)`];
    const summary: Record<string, SizeFigures[]> = {};
    for (const contender of contenders) {
      summary[contender.label] = SIZES.map((size) => median(contender.label, size));
      for (const figures of summary[contender.label] ?? [])
        lines.push(`  ${contender.label.padEnd(9)} ${format(figures)}`);
    }
    for (const size of SIZES) {
      const socle = median('socle', size);
      const baseline = median('socket.io', size);
      lines.push(
        `  ${size} subs: deliveries/s ratio ${(socle.deliveriesPerSecond / baseline.deliveriesPerSecond).toFixed(2)} (goal ≥ 2), ` +
          `server cpu/delivery ratio ${(baseline.serverCpuMicrosPerDelivery / socle.serverCpuMicrosPerDelivery).toFixed(2)}` +
          (size === 1000 ? `, socle p99 ${socle.latencyP99Ms.toFixed(2)} ms (goal ≤ 5 ms)` : ''),
      );
    }
    return {
      scenario: 'realtime-fanout',
      dialect,
      text: lines.join('\n'),
      figures: { summary, rounds: results },
    };
  },
};
