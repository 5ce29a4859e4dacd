import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createStreamingPair, type StreamingPair } from 'socle/testing';
import { type LoadMeasurement, type LoadOptions, measureLoad } from '../../load.js';
import { processCpuSeconds } from '../../process-cpu.js';
import type { BenchRequest, CustomResult, CustomRunSettings, CustomScenario } from '../../scenario.js';
import { type ServerProcess, spawnServer } from '../../server-process.js';
import type { BenchDialect, RequestHeaders } from '../../server-protocol.js';
import { randomItemId } from '../db-select/items.js';

/**
 * The fleet of docs/fleet.md on this machine: HAProxy (the Debian package, with the configuration
 * shipped in deploy/haproxy) in front of 1, 2 and 3 Socle nodes on one database, a tenant-scoped
 * read and a read/write mix, against one node loaded directly; then one node with a streaming
 * replica (pg_basebackup, a private cluster made for the run and removed after) against the same
 * node without it. On two cores the point is overhead and correctness, not scale.
 */

const HAPROXY = process.env.BENCH_HAPROXY ?? '/usr/sbin/haproxy';
const HAPROXY_CONFIG = fileURLToPath(new URL('../../../../deploy/haproxy/haproxy.cfg', import.meta.url));
const NODE_SERVER = new URL('./socle-server.js', import.meta.url);
/** Concurrent connections of each load (`--connections` overrides). */
const DEFAULT_CONNECTIONS = 32;
/** Unmeasured load before each measured one: HAProxy's checks settle, pools and JIT warm up. */
const WARMUP_SECONDS = 2;
/** HAProxy marks a node up after `rise` (2) checks; this interval makes that 200 ms. */
const CHECK_INTER = '100ms';
/** Reads after each write in the mix's session: 1 write in 5 requests. */
const READS_PER_WRITE = 4;
/** Loads of one comparison, alternated this many times per round (A B A B): neighbours share the machine's state. */
const ALTERNATIONS = 2;
/** Lines of HAProxy's output kept to explain a start that fails. */
const KEPT_HAPROXY_LINES = 20;
/** The header carrying a client's last write position (the kernel's LSN_HEADER). */
const LSN_HEADER = 'socle-lsn';

type Mix = 'read' | 'mix' | 'replica-read';

const tenantRead = (): BenchRequest => ({ method: 'GET', path: `/tenant-items/${randomItemId()}` });
const replicaRead = (): BenchRequest => ({ method: 'GET', path: `/replica-items/${randomItemId()}` });
const write = (): BenchRequest => ({
  method: 'PATCH',
  path: `/tenant-items/${randomItemId()}`,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ priceCents: Math.floor(Math.random() * 100_000) }),
});

/**
 * What each connection sends. The mix is a client's session: a write, then reads through
 * db.replica that send back the write's `socle-lsn` (read-your-writes: a replica serves them only
 * once it has replayed the write, else the primary does); the session then starts over unpinned.
 */
const loadOf: Record<Mix, Pick<LoadOptions, 'nextRequest' | 'session' | 'echoHeaders'>> = {
  read: { nextRequest: tenantRead },
  mix: {
    nextRequest: replicaRead,
    session: [write, ...Array.from({ length: READS_PER_WRITE }, () => replicaRead)],
    echoHeaders: [LSN_HEADER],
  },
  'replica-read': { nextRequest: replicaRead },
};

interface Figures {
  readonly setup: string;
  readonly load: Mix;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU of the Socle nodes and HAProxy (not the load generator) per request, in milliseconds. */
  readonly cpuMsPerRequest: number;
  readonly non2xx: number;
  readonly errors: number;
  /** Requests per second over those of the comparison's baseline measured just before it (1 for the baseline). */
  readonly ratio: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * HAProxy in front of `nodes` (host:port), with the shipped configuration's three server lines:
 * a missing node gets a port nothing listens on, which the checks take out (a refused connection
 * is retried on another node meanwhile, so it fails no request).
 */
async function startHaproxy(nodes: readonly string[], settings: CustomRunSettings) {
  const port = await freePort();
  const dead = `127.0.0.1:${await freePort()}`;
  const child: ChildProcess = spawn(HAPROXY, ['-db', '-f', HAPROXY_CONFIG], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      SOCLE_LISTEN: `127.0.0.1:${port}`,
      SOCLE_CHECK_INTER: CHECK_INTER,
      SOCLE_NODE_1: nodes[0] ?? dead,
      SOCLE_NODE_2: nodes[1] ?? dead,
      SOCLE_NODE_3: nodes[2] ?? dead,
    },
  });
  // Its warnings (a server marked down...) are kept to explain a start that fails; reading them
  // also keeps a full pipe from blocking HAProxy.
  const said: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    said.push(...chunk.split('\n').filter((line) => line !== ''));
    said.splice(0, Math.max(0, said.length - KEPT_HAPROXY_LINES));
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  // Ready once it answers /readyz through a node; a load started before would count HAProxy's
  // 503s (no node up yet) as the nodes' failures.
  const deadline = performance.now() + settings.startTimeoutSeconds * 1000;
  let last = 'no answer';
  for (;;) {
    settings.signal.throwIfAborted();
    const response = await fetch(`${url}/readyz`).catch((error: Error) => error);
    if (!(response instanceof Error) && response.status === 200) break;
    last = response instanceof Error ? response.message : `HTTP ${response.status}`;
    if (child.exitCode !== null || performance.now() > deadline) {
      await stop();
      const reason =
        child.exitCode !== null
          ? `exited with ${child.exitCode}`
          : `was not ready within ${settings.startTimeoutSeconds} s (--start-timeout)`;
      throw new Error(
        `haproxy in front of ${nodes.join(', ')} ${reason}; its /readyz last gave ${last}; it printed:\n${said.map((line) => `    ${line}`).join('\n') || '    nothing'}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, pid: child.pid as number, stop };
}

async function cpuOf(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += (await processCpuSeconds(pid)) ?? 0;
  return total;
}

async function measure(
  setup: string,
  load: Mix,
  url: string,
  headers: RequestHeaders,
  pids: readonly number[],
  settings: CustomRunSettings,
): Promise<Figures> {
  const connections = settings.connections ?? DEFAULT_CONNECTIONS;
  const withHeaders = (make: () => BenchRequest) => (): BenchRequest => {
    const request = make();
    return { ...request, headers: { ...headers, ...request.headers } };
  };
  const { nextRequest, session, echoHeaders } = loadOf[load];
  const requests = {
    nextRequest: withHeaders(nextRequest),
    ...(session === undefined ? {} : { session: session.map(withHeaders) }),
    ...(echoHeaders === undefined ? {} : { echoHeaders }),
  };
  await measureLoad({
    url,
    connections,
    durationSeconds: WARMUP_SECONDS,
    ...requests,
    signal: settings.signal,
  });
  const cpuBefore = await cpuOf(pids);
  const result: LoadMeasurement = await measureLoad({
    url,
    connections,
    durationSeconds: settings.durationSeconds,
    ...requests,
    signal: settings.signal,
  });
  const cpuSeconds = (await cpuOf(pids)) - cpuBefore;
  const figures: Figures = {
    setup,
    load,
    requestsPerSecond: result.requestsPerSecond,
    p50Ms: result.latencyMs.p50,
    p99Ms: result.latencyMs.p99,
    cpuMsPerRequest: result.totalRequests === 0 ? Number.NaN : (cpuSeconds * 1000) / result.totalRequests,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    ratio: 1,
  };
  settings.progress(
    `  ${setup.padEnd(22)} ${load.padEnd(12)} ${figures.requestsPerSecond.toFixed(0).padStart(6)} req/s  p99 ${figures.p99Ms.toFixed(1)} ms  cpu ${figures.cpuMsPerRequest.toFixed(2)} ms/req  non2xx ${figures.non2xx}  errors ${figures.errors}`,
  );
  return figures;
}

async function startNodes(
  labels: readonly string[],
  databaseUrl: string,
  replicaUrls: readonly string[],
  settings: CustomRunSettings,
): Promise<ServerProcess[]> {
  const nodes: ServerProcess[] = [];
  try {
    // One after the other: the first migrates and seeds, the others find both done.
    for (const label of labels)
      nodes.push(
        await spawnServer({
          label,
          entry: NODE_SERVER,
          settings: {
            dialect: 'postgres',
            databaseUrl,
            poolMax: settings.poolMax,
            ...(replicaUrls.length === 0 ? {} : { replicaUrls }),
          },
          signal: settings.signal,
          startTimeoutSeconds: settings.startTimeoutSeconds,
        }),
      );
    return nodes;
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw error;
  }
}

const hostPort = (url: string) => new URL(url).host;

/** A place to send load: a node directly, or HAProxy in front of some. */
interface Target {
  readonly setup: string;
  readonly url: string;
  readonly headers: RequestHeaders;
  /** Processes whose CPU the requests cost (nodes, HAProxy). */
  readonly pids: readonly number[];
}

/**
 * Measures `load` on the baseline then each other target, `ALTERNATIONS` times over (A B A B):
 * each ratio is to the baseline measured just before, under the same load of the machine.
 */
async function compare(
  load: Mix,
  baseline: Target,
  others: readonly Target[],
  settings: CustomRunSettings,
): Promise<Figures[]> {
  const figures: Figures[] = [];
  for (let turn = 0; turn < ALTERNATIONS && !settings.signal.aborted; turn++) {
    const base = await measure(baseline.setup, load, baseline.url, baseline.headers, baseline.pids, settings);
    figures.push(base);
    for (const target of others) {
      const measured = await measure(target.setup, load, target.url, target.headers, target.pids, settings);
      figures.push({ ...measured, ratio: measured.requestsPerSecond / base.requestsPerSecond });
    }
  }
  return figures;
}

/**
 * One round: three nodes and HAProxy in front of 1, 2 and 3 of them, and a fourth node with the
 * streaming replica, all running at once so the loads can alternate between them.
 */
async function round(pair: StreamingPair, settings: CustomRunSettings): Promise<Figures[]> {
  const figures: Figures[] = [];
  const nodes = await startNodes(['node1', 'node2', 'node3'], pair.primaryUrl, [], settings);
  const haproxies: Awaited<ReturnType<typeof startHaproxy>>[] = [];
  let withReplica: ServerProcess | undefined;
  try {
    [withReplica] = (await startNodes(
      ['node4 (with replica)'],
      pair.primaryUrl,
      [pair.replicaUrl],
      settings,
    )) as [ServerProcess];
    const [first] = nodes as [ServerProcess];
    const headers = first.requestHeaders;
    const direct: Target = { setup: '1 node, direct', url: first.url, headers, pids: [first.pid] };
    const balanced: Target[] = [];
    for (const count of [1, 2, 3]) {
      const serving = nodes.slice(0, count);
      const haproxy = await startHaproxy(
        serving.map((node) => hostPort(node.url)),
        settings,
      );
      haproxies.push(haproxy);
      balanced.push({
        setup: `HAProxy + ${count} node${count > 1 ? 's' : ''}`,
        url: haproxy.url,
        headers,
        pids: [...serving.map((node) => node.pid), haproxy.pid],
      });
    }
    for (const load of ['read', 'mix'] as const)
      figures.push(...(await compare(load, direct, balanced, settings)));
    // The same node's code with the streaming replica in DATABASE_REPLICA_URLS, against primary-only.
    const replica: Target = {
      setup: '1 node + replica',
      url: withReplica.url,
      headers: withReplica.requestHeaders,
      pids: [withReplica.pid],
    };
    for (const load of ['replica-read', 'mix'] as const)
      figures.push(...(await compare(load, direct, [replica], settings)));
  } finally {
    await Promise.all(haproxies.map((haproxy) => haproxy.stop()));
    await Promise.all(
      [...nodes, ...(withReplica === undefined ? [] : [withReplica])].map((node) => node.stop()),
    );
  }
  return figures;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export const fleet: CustomScenario = {
  kind: 'custom',
  name: 'fleet',
  description:
    'HAProxy (deploy/haproxy) in front of 1, 2 and 3 Socle nodes: tenant read and a read/write mix (sessions of a PATCH then 4 db.replica reads echoing its socle-lsn) vs one node loaded directly; one node with a pg_basebackup streaming replica vs primary-only; loads alternated A B A B',
  dialects: ['postgres'],
  createsDatabases: true,
  async run(dialect: BenchDialect, settings: CustomRunSettings): Promise<CustomResult> {
    if (!existsSync(HAPROXY)) throw new Error(`fleet needs HAProxy (${HAPROXY}): apt-get install haproxy`);
    settings.progress('  creating a primary and a streaming replica (initdb, pg_basebackup)');
    const pair = await createStreamingPair();
    const rounds: Figures[][] = [];
    try {
      for (let index = 0; index < settings.rounds && !settings.signal.aborted; index++) {
        settings.progress(`  round ${index + 1}/${settings.rounds}`);
        rounds.push(await round(pair, settings));
      }
    } finally {
      await pair.destroy();
      settings.progress('  primary and replica stopped and removed');
    }
    // Medians of every measurement of each setup and load (rounds × alternations); the ratio's is
    // the median of ratios each taken against the baseline measured just before.
    const all = rounds.flat();
    const keys = [...new Set(all.map((row) => `${row.setup}\u0000${row.load}`))];
    const medians = keys.map((key) => {
      const rows = all.filter((row) => `${row.setup}\u0000${row.load}` === key);
      const of = (field: keyof Figures) => median(rows.map((row) => row[field] as number));
      const [first] = rows as [Figures];
      return {
        setup: first.setup,
        load: first.load,
        samples: rows.length,
        requestsPerSecond: of('requestsPerSecond'),
        p50Ms: of('p50Ms'),
        p99Ms: of('p99Ms'),
        cpuMsPerRequest: of('cpuMsPerRequest'),
        ratio: of('ratio'),
        non2xx: Math.max(...rows.map((row) => row.non2xx)),
        errors: Math.max(...rows.map((row) => row.errors)),
      };
    });
    const lines = [
      `fleet (${dialect}, medians of ${rounds.length} round(s) × ${ALTERNATIONS} alternations, ${settings.durationSeconds} s each, ${settings.connections ?? DEFAULT_CONNECTIONS} connections; mix = a write then ${READS_PER_WRITE} db.replica reads sending its ${LSN_HEADER} back)`,
      `  ${'setup'.padEnd(22)} ${'load'.padEnd(12)} ${'req/s'.padStart(7)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'CPU ms/req'.padStart(10)} ${'vs direct'.padStart(9)}  non2xx/errors`,
      ...medians.map(
        (row) =>
          `  ${row.setup.padEnd(22)} ${row.load.padEnd(12)} ${row.requestsPerSecond.toFixed(0).padStart(7)} ${row.p50Ms.toFixed(2).padStart(7)} ${row.p99Ms.toFixed(2).padStart(7)} ${row.cpuMsPerRequest.toFixed(3).padStart(10)} ${row.ratio.toFixed(2).padStart(9)}  ${row.non2xx}/${row.errors}`,
      ),
    ];
    return { scenario: 'fleet', dialect, text: lines.join('\n'), figures: { medians, rounds } };
  },
};
