import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { coreSplit, openFilesLimit, pinProcess } from '../../cpu-affinity.js';
import { processCpuSeconds } from '../../process-cpu.js';
import type { CustomResult, CustomRunSettings, CustomScenario } from '../../scenario.js';
import { type ServerProcess, spawnServer } from '../../server-process.js';
import type { BenchDialect } from '../../server-protocol.js';
import { publishPusher, publishSocketIo } from './publishers.js';
import { benchPayload, type WireProtocol } from './subscriber-protocol.js';
import { openSubscribers, type SubscriberGroup } from './subscribers.js';

/** Subscriber counts of the latency and throughput phases (capped by `--connections`). */
const FANOUT_SIZES = [1000, 10_000] as const;
/** Latency phase: messages published one at a time on an idle server. */
const LATENCY_MESSAGES = 40;
/** Pause after every subscriber got a message, before the next one: the server is idle again. */
const LATENCY_PAUSE_MS = 20;
/** A message not received everywhere within this is counted as missing; the next one goes out. */
const LATENCY_TIMEOUT_MS = 5000;
/**
 * Throughput phases: publish loops, each sending its next event when the previous one was
 * answered. One loop: a server never has two messages at once. Eight: bursts, as many app
 * servers and jobs publishing at the same time give.
 */
const PUBLISHERS = [1, 8] as const;
/** Sockets per subscriber process at most (each process has its own open-files limit). */
const SOCKETS_PER_PROCESS = 10_000;
/** Idle connections measured by default: the goal of issue 5, or what the open-files limit allows. */
const DEFAULT_IDLE_CONNECTIONS = 50_000;
/** Files the server keeps open besides sockets (database, Redis, logs, Node's own). */
const SERVER_SPARE_FILES = 500;
const DRAIN_TIMEOUT_MS = 60_000;
/**
 * Idle connections of the phase that spreads them over several Socle processes sharing one port
 * (`socle start --processes N`), run on Postgres when one process may not hold that many: issue 5's
 * goal is 50,000 per node, and a process here may open at most `ulimit -n` files.
 */
const SPREAD_CONNECTIONS = 50_000;
/** The Redis that joins the processes of the spread phase. */
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Contender {
  readonly label: 'socle' | 'socket.io';
  readonly entry: URL;
  readonly protocol: WireProtocol;
  publish(baseUrl: string, data: string): Promise<void>;
}

const contenders: readonly Contender[] = [
  {
    label: 'socle',
    entry: new URL('./socle-server.js', import.meta.url),
    protocol: 'pusher',
    publish: publishPusher,
  },
  {
    label: 'socket.io',
    entry: new URL('./socketio-server.js', import.meta.url),
    protocol: 'socket.io',
    publish: publishSocketIo,
  },
];

/** Figures of one fan-out size on one server. */
interface FanoutFigures {
  subscribers: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
  /** Deliveries of the latency phase that never arrived. */
  latencyMissing: number;
  throughput: ThroughputFigures[];
}

/** A throughput phase: `publishers` loops publishing back to back. */
interface ThroughputFigures {
  publishers: number;
  deliveriesPerSecond: number;
  /** Server CPU time (user + system, every thread) per delivery in the throughput phase. */
  serverCpuMicrosPerDelivery: number;
  /** Cores the server and the subscriber processes kept busy in the throughput phase. */
  serverCores: number;
  subscriberCores: number;
}

/** Server memory per idle connection (each joined to one channel), after a full GC. */
interface IdleFigures {
  connections: number;
  rssPerConnectionBytes: number;
  heapPerConnectionBytes: number;
  rssBytes: number;
  openSeconds: number;
}

/** Idle connections spread over several processes sharing one port. */
interface SpreadIdleFigures extends IdleFigures {
  processes: number;
  /** Open files of each process when the connections were open: how the kernel spread them. */
  openFilesPerProcess: number[];
}

interface ContenderFigures {
  idle: IdleFigures;
  fanout: FanoutFigures[];
}

const nowNs = () => Number(process.hrtime.bigint());

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] as number;
}

interface MemoryReading {
  rss: number;
  heap: number;
  pid: number;
}

/**
 * `GET /bench/memory` on a connection of its own: with several processes sharing the port, the
 * kernel picks which one answers.
 */
function memoryOf(baseUrl: string): Promise<MemoryReading> {
  return new Promise((resolve, reject) => {
    const call = request(`${baseUrl}/bench/memory`, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => {
        try {
          resolve(JSON.parse(body) as MemoryReading);
        } catch (error) {
          reject(error);
        }
      });
    });
    call.on('error', reject);
    call.end();
  });
}

/** Memory of every process sharing the port, each read after its own full GC, summed. */
async function memoryOfProcesses(
  baseUrl: string,
  pids: readonly number[],
): Promise<{ rss: number; heap: number }> {
  const readings = new Map<number, MemoryReading>();
  for (let attempt = 0; attempt < 50 * pids.length && readings.size < pids.length; attempt++) {
    const reading = await memoryOf(baseUrl);
    if (pids.includes(reading.pid)) readings.set(reading.pid, reading);
  }
  if (readings.size < pids.length)
    throw new Error(`only ${readings.size} of ${pids.length} processes answered on ${baseUrl}`);
  let rss = 0;
  let heap = 0;
  for (const reading of readings.values()) {
    rss += reading.rss;
    heap += reading.heap;
  }
  return { rss, heap };
}

function openFilesOf(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** A port free on 127.0.0.1 right now, for processes that must all listen on the same one. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

interface Run {
  readonly contender: Contender;
  readonly server: ServerProcess;
  readonly subscriberCores: string | undefined;
  readonly settings: CustomRunSettings;
}

async function subscribe(run: Run, sockets: number): Promise<SubscriberGroup> {
  const group = await openSubscribers({
    url: run.server.url,
    protocol: run.contender.protocol,
    sockets,
    perProcess: SOCKETS_PER_PROCESS,
    cores: run.subscriberCores,
    signal: run.settings.signal,
  });
  if (group.handshakeRetries > 0)
    run.settings.progress(
      `    warning: ${group.handshakeRetries} of ${sockets} handshakes retried (the server refused or dropped them while busy)`,
    );
  return group;
}

/** Memory per connection from the readings before and after `connections` sockets were opened. */
function idleFigures(
  connections: number,
  before: { rss: number; heap: number },
  idle: { rss: number; heap: number },
  openSeconds: number,
): IdleFigures {
  return {
    connections,
    rssPerConnectionBytes: (idle.rss - before.rss) / connections,
    heapPerConnectionBytes: (idle.heap - before.heap) / connections,
    rssBytes: idle.rss,
    openSeconds,
  };
}

async function measureIdle(run: Run, connections: number): Promise<IdleFigures> {
  const before = await memoryOf(run.server.url);
  const started = performance.now();
  const group = await subscribe(run, connections);
  const openSeconds = (performance.now() - started) / 1000;
  try {
    return idleFigures(connections, before, await memoryOf(run.server.url), openSeconds);
  } finally {
    await group.close();
  }
}

/**
 * `connections` idle sockets on `processes` Socle processes sharing one port over Redis, as
 * `socle start --processes N` runs them (Postgres only): memory per connection summed over the
 * processes, each read after its own full GC.
 */
async function measureSpreadIdle(
  settings: CustomRunSettings,
  cores: ReturnType<typeof coreSplit>,
  connections: number,
  processes: number,
): Promise<SpreadIdleFigures> {
  const socle = contenders.find((contender) => contender.label === 'socle') as Contender;
  const port = await freePort();
  const servers: ServerProcess[] = [];
  try {
    // One after the other: the first applies the migrations.
    for (let index = 0; index < processes; index++) {
      const server = await spawnServer({
        label: `socle ${index + 1}/${processes}`,
        entry: socle.entry,
        settings: {
          dialect: 'postgres',
          databaseUrl: settings.databaseUrl,
          poolMax: settings.poolMax,
          sharedPort: port,
          redisUrl: REDIS_URL,
        },
        signal: settings.signal,
        startTimeoutSeconds: settings.startTimeoutSeconds,
      });
      servers.push(server);
      if (cores !== undefined) await pinProcess(server.pid, cores.server);
    }
    const url = (servers[0] as ServerProcess).url;
    const pids = servers.map((server) => server.pid);
    const before = await memoryOfProcesses(url, pids);
    const filesBefore = pids.map(openFilesOf);
    const started = performance.now();
    const group = await openSubscribers({
      url,
      protocol: socle.protocol,
      sockets: connections,
      perProcess: SOCKETS_PER_PROCESS,
      cores: cores?.clients,
      signal: settings.signal,
    });
    const openSeconds = (performance.now() - started) / 1000;
    try {
      return {
        ...idleFigures(connections, before, await memoryOfProcesses(url, pids), openSeconds),
        processes,
        openFilesPerProcess: pids.map((pid, index) => openFilesOf(pid) - (filesBefore[index] as number)),
      };
    } finally {
      await group.close();
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

/**
 * Latency: one publish at a time on an idle server; the next goes out once every subscriber got
 * the previous one and a pause passed. Every delivery is a sample.
 */
async function measureLatency(run: Run, group: SubscriberGroup) {
  group.broadcast({ type: 'latency', messages: LATENCY_MESSAGES });
  let missingMessages = 0;
  for (let message = 0; message < LATENCY_MESSAGES; message++) {
    // Settled into a boolean at once: a publish slower than the timeout (a loaded machine) must
    // not leave the rejection unhandled while it is awaited, which ends the whole bench run.
    const received = group
      .collect('received', LATENCY_TIMEOUT_MS, (report) => report.message === message)
      .then(
        () => true,
        () => false,
      );
    await run.contender.publish(run.server.url, benchPayload(message, nowNs()));
    if (!(await received)) missingMessages++;
    await sleep(LATENCY_PAUSE_MS);
  }
  const reported = group.collect('latencies', 60_000);
  group.broadcast({ type: 'report' });
  const reports = await reported;
  const all = new Float64Array(reports.reduce((sum, report) => sum + report.micros.length, 0));
  let offset = 0;
  for (const report of reports) {
    all.set(report.micros, offset);
    offset += report.micros.length;
  }
  all.sort();
  return {
    latencyP50Ms: percentile(all, 0.5) / 1000,
    latencyP99Ms: percentile(all, 0.99) / 1000,
    latencyMaxMs: (all.at(-1) ?? Number.NaN) / 1000,
    latencyMissing: LATENCY_MESSAGES * group.sockets - all.length,
    missingMessages,
  };
}

/**
 * Throughput at saturation: `publishers` loops publish back to back for `--duration` seconds;
 * deliveries per second from the first publish to the last delivery.
 */
async function measureThroughput(
  run: Run,
  group: SubscriberGroup,
  publishers: number,
): Promise<ThroughputFigures> {
  group.broadcast({ type: 'throughput' });
  const serverCpuBefore = (await processCpuSeconds(run.server.pid)) ?? Number.NaN;
  const subscriberCpuBefore = await group.cpuSeconds();
  const startedNs = nowNs();
  const endsAt = performance.now() + run.settings.durationSeconds * 1000;
  let published = 0;
  await Promise.all(
    Array.from({ length: publishers }, async () => {
      while (performance.now() < endsAt && !run.settings.signal.aborted) {
        const message = LATENCY_MESSAGES + published++;
        await run.contender.publish(run.server.url, benchPayload(message, nowNs()));
      }
    }),
  );
  const drained = await group.drain(published, DRAIN_TIMEOUT_MS);
  const seconds = (drained.lastAtNs - startedNs) / 1e9;
  const serverCpu = ((await processCpuSeconds(run.server.pid)) ?? Number.NaN) - serverCpuBefore;
  const subscriberCpu = (await group.cpuSeconds()) - subscriberCpuBefore;
  if (drained.deliveries < published * group.sockets)
    run.settings.progress(
      `    warning: ${published * group.sockets - drained.deliveries} deliveries missing after ${DRAIN_TIMEOUT_MS / 1000} s`,
    );
  return {
    publishers,
    deliveriesPerSecond: drained.deliveries / seconds,
    serverCpuMicrosPerDelivery: (serverCpu * 1e6) / drained.deliveries,
    serverCores: serverCpu / seconds,
    subscriberCores: subscriberCpu / seconds,
  };
}

async function measureFanout(run: Run, size: number): Promise<FanoutFigures> {
  const group = await subscribe(run, size);
  try {
    const latency = await measureLatency(run, group);
    if (latency.missingMessages > 0)
      run.settings.progress(
        `    warning: ${latency.missingMessages} message(s) did not reach every subscriber within ${LATENCY_TIMEOUT_MS} ms`,
      );
    const throughput: ThroughputFigures[] = [];
    for (const publishers of PUBLISHERS) throughput.push(await measureThroughput(run, group, publishers));
    return {
      subscribers: size,
      latencyP50Ms: latency.latencyP50Ms,
      latencyP99Ms: latency.latencyP99Ms,
      latencyMaxMs: latency.latencyMaxMs,
      latencyMissing: latency.latencyMissing,
      throughput,
    };
  } finally {
    await group.close();
  }
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const fixed = (value: number, digits: number, width: number) => value.toFixed(digits).padStart(width);

const formatFanout = (label: string, figures: FanoutFigures) =>
  [
    `${label}${integer.format(figures.subscribers).padStart(6)} subs  latency p50 ${fixed(figures.latencyP50Ms, 2, 7)} ms  p99 ${fixed(figures.latencyP99Ms, 2, 7)} ms  max ${fixed(figures.latencyMaxMs, 2, 7)} ms` +
      (figures.latencyMissing > 0 ? `  (${figures.latencyMissing} deliveries missing)` : ''),
    ...figures.throughput.map(
      (throughput) =>
        `${label}${integer.format(figures.subscribers).padStart(6)} subs  ${String(throughput.publishers).padStart(2)} publisher(s) ` +
        `${integer.format(throughput.deliveriesPerSecond).padStart(9)} deliveries/s  ${fixed(throughput.serverCpuMicrosPerDelivery, 2, 6)} µs cpu/delivery  ` +
        `server ${fixed(throughput.serverCores, 2, 4)} cores  subscribers ${fixed(throughput.subscriberCores, 2, 4)} cores`,
    ),
  ].join('\n');

const formatIdle = (figures: IdleFigures) =>
  `${integer.format(figures.connections).padStart(6)} idle  ${fixed(figures.rssPerConnectionBytes / 1024, 1, 5)} KiB rss/conn  ${fixed(figures.heapPerConnectionBytes / 1024, 1, 5)} KiB heap/conn  ` +
  `rss ${integer.format(figures.rssBytes / 2 ** 20)} MiB  opened in ${fixed(figures.openSeconds, 1, 4)} s`;

const formatSpreadIdle = (figures: SpreadIdleFigures) =>
  `${formatIdle(figures)}\n            on ${figures.processes} processes sharing the port over Redis ` +
  `(sockets per process ≈ open files added: ${figures.openFilesPerProcess.map((files) => integer.format(files)).join(' / ')})`;

/**
 * Processes the spread phase needs for {@link SPREAD_CONNECTIONS}, or undefined when one process
 * may hold them all (the single-process idle phase measures that) or the run is not on Postgres.
 */
function spreadProcesses(dialect: BenchDialect): number | undefined {
  const limit = openFilesLimit();
  if (dialect !== 'postgres' || limit === undefined || limit >= SPREAD_CONNECTIONS + SERVER_SPARE_FILES)
    return undefined;
  // The kernel spreads connections by a hash: leave each process a tenth of its share spare.
  return Math.ceil(SPREAD_CONNECTIONS / ((limit - SERVER_SPARE_FILES) * 0.9));
}

/** How many idle connections to measure: `--connections`, or what the open-files limit allows. */
function idleConnections(settings: CustomRunSettings): number {
  const limit = openFilesLimit();
  const allowed = limit === undefined ? DEFAULT_IDLE_CONNECTIONS : limit - SERVER_SPARE_FILES;
  if (settings.connections === undefined) return Math.min(DEFAULT_IDLE_CONNECTIONS, allowed);
  if (settings.connections > allowed)
    throw new Error(
      `--connections ${settings.connections} needs more open files than the server may have: ulimit -n is ${limit}, ` +
        `so at most ${allowed} connections (${SERVER_SPARE_FILES} kept for the rest). Raise it (ulimit -n ${settings.connections + SERVER_SPARE_FILES}) and rerun.`,
    );
  return settings.connections;
}

function median<T>(values: readonly T[], pick: (value: T) => number): number {
  const sorted = values.map(pick).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/**
 * One node, N subscribers of one channel, events published through the server's HTTP endpoint,
 * on Socle (Pusher protocol) and on Socket.IO 4 in the same run. Per server: memory per idle
 * connection at `--connections` sockets; then for 1,000 and 10,000 subscribers a latency phase
 * (one publish at a time, idle server) and a throughput phase (publishing back to back for
 * `--duration` seconds). The server runs alone on the first core; subscriber processes and the
 * harness share the others.
 */
export const realtimeFanout: CustomScenario = {
  kind: 'custom',
  name: 'realtime-fanout',
  description: 'one channel, N subscribers, REST publish: Socle (Pusher protocol) vs Socket.IO 4',
  dialects: ['postgres', 'pglite'],
  async run(dialect: BenchDialect, settings: CustomRunSettings): Promise<CustomResult> {
    const connections = idleConnections(settings);
    const sizes = [...new Set(FANOUT_SIZES.map((size) => Math.min(size, connections)))];
    const cores = coreSplit();
    if (cores === undefined) settings.progress('  one core: server and subscribers share it');
    else if (!(await pinProcess(process.pid, cores.clients)))
      settings.progress('  warning: taskset failed; processes are not pinned to cores');
    const rounds: Record<string, ContenderFigures[]> = {};
    const processes = spreadProcesses(dialect);
    let spread: SpreadIdleFigures | undefined;
    try {
      for (let round = 0; round < settings.rounds; round++) {
        for (const contender of contenders) {
          const server = await spawnServer({
            label: contender.label,
            entry: contender.entry,
            settings: { dialect, databaseUrl: settings.databaseUrl, poolMax: settings.poolMax },
            signal: settings.signal,
            startTimeoutSeconds: settings.startTimeoutSeconds,
          });
          try {
            if (cores !== undefined) await pinProcess(server.pid, cores.server);
            const run: Run = { contender, server, subscriberCores: cores?.clients, settings };
            settings.progress(`  ${contender.label}: ${connections} idle connections (round ${round + 1})`);
            const idle = await measureIdle(run, connections);
            settings.progress(`    ${formatIdle(idle)}`);
            const fanout: FanoutFigures[] = [];
            for (const size of sizes) {
              settings.progress(`  ${contender.label}: ${size} subscribers (round ${round + 1})`);
              const figures = await measureFanout(run, size);
              settings.progress(formatFanout('    ', figures));
              fanout.push(figures);
            }
            rounds[contender.label] = [...(rounds[contender.label] ?? []), { idle, fanout }];
          } finally {
            await server.stop();
          }
        }
      }
      if (processes !== undefined) {
        settings.progress(
          `  socle: ${integer.format(SPREAD_CONNECTIONS)} idle connections on ${processes} processes sharing one port`,
        );
        spread = await measureSpreadIdle(settings, cores, SPREAD_CONNECTIONS, processes);
        settings.progress(`    ${formatSpreadIdle(spread)}`);
      }
    } finally {
      if (cores !== undefined) await pinProcess(process.pid, cores.all);
    }

    const medianIdle = (label: string): IdleFigures => {
      const all = (rounds[label] ?? []).map((figures) => figures.idle);
      return {
        connections,
        rssPerConnectionBytes: median(all, (figures) => figures.rssPerConnectionBytes),
        heapPerConnectionBytes: median(all, (figures) => figures.heapPerConnectionBytes),
        rssBytes: median(all, (figures) => figures.rssBytes),
        openSeconds: median(all, (figures) => figures.openSeconds),
      };
    };
    const medianFanout = (label: string, size: number): FanoutFigures => {
      const all = (rounds[label] ?? []).flatMap((figures) =>
        figures.fanout.filter((fanout) => fanout.subscribers === size),
      );
      const pick = (value: (figures: FanoutFigures) => number) => median(all, value);
      return {
        subscribers: size,
        latencyP50Ms: pick((figures) => figures.latencyP50Ms),
        latencyP99Ms: pick((figures) => figures.latencyP99Ms),
        latencyMaxMs: pick((figures) => figures.latencyMaxMs),
        latencyMissing: pick((figures) => figures.latencyMissing),
        throughput: PUBLISHERS.map((publishers, index) => {
          const phase = (figures: FanoutFigures) => figures.throughput[index] as ThroughputFigures;
          return {
            publishers,
            deliveriesPerSecond: pick((figures) => phase(figures).deliveriesPerSecond),
            serverCpuMicrosPerDelivery: pick((figures) => phase(figures).serverCpuMicrosPerDelivery),
            serverCores: pick((figures) => phase(figures).serverCores),
            subscriberCores: pick((figures) => phase(figures).subscriberCores),
          };
        }),
      };
    };

    const lines = [
      `realtime-fanout (${dialect}, ${settings.rounds} round(s), medians; throughput ${settings.durationSeconds} s per phase; ` +
        `${cores === undefined ? 'one core' : `server on core ${cores.server}, subscribers on ${cores.clients}`})`,
    ];
    const summary: Record<string, ContenderFigures> = {};
    for (const contender of contenders) {
      const figures = {
        idle: medianIdle(contender.label),
        fanout: sizes.map((size) => medianFanout(contender.label, size)),
      };
      summary[contender.label] = figures;
      lines.push(`  ${contender.label.padEnd(9)} ${formatIdle(figures.idle)}`);
      for (const fanout of figures.fanout)
        lines.push(formatFanout(`  ${contender.label.padEnd(9)} `, fanout));
    }
    if (spread !== undefined) lines.push(`  socle     ${formatSpreadIdle(spread)}`);
    const socleIdle = medianIdle('socle');
    lines.push(
      `  idle: ${(socleIdle.rssPerConnectionBytes / 1024).toFixed(1)} KiB rss/conn at ${integer.format(connections)} on one process` +
        (spread === undefined
          ? ''
          : `, ${(spread.rssPerConnectionBytes / 1024).toFixed(1)} KiB at ${integer.format(spread.connections)} on ${spread.processes}`) +
        ' (goal ≤ 16 KiB at 50,000 per node)',
    );
    for (const size of sizes) {
      const socle = medianFanout('socle', size);
      const baseline = medianFanout('socket.io', size);
      const ratios = PUBLISHERS.map((publishers, index) => {
        const ours = socle.throughput[index] as ThroughputFigures;
        const theirs = baseline.throughput[index] as ThroughputFigures;
        return (
          `${publishers} publisher(s): deliveries/s ratio ${(ours.deliveriesPerSecond / theirs.deliveriesPerSecond).toFixed(2)}, ` +
          `cpu/delivery ratio ${(theirs.serverCpuMicrosPerDelivery / ours.serverCpuMicrosPerDelivery).toFixed(2)}`
        );
      });
      lines.push(
        `  ${integer.format(size)} subs: ${ratios.join('; ')} (goal ≥ 2)` +
          (size === 1000 ? `; socle latency p99 ${socle.latencyP99Ms.toFixed(2)} ms (goal ≤ 5 ms)` : ''),
      );
    }
    return {
      scenario: 'realtime-fanout',
      dialect,
      text: lines.join('\n'),
      figures: { summary, rounds, connections, spread },
    };
  },
};
