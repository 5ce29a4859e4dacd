import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createStreamingPair, type StreamingPair } from 'socle/testing';
import { type LoadMeasurement, measureLoad } from '../../load.js';
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
/** Share of writes in the mix. */
const WRITE_SHARE = 0.2;

type Mix = 'read' | 'mix' | 'replica-read';

const requestOf: Record<Mix, () => BenchRequest> = {
  read: () => ({ method: 'GET', path: `/tenant-items/${randomItemId()}` }),
  mix: () =>
    Math.random() < WRITE_SHARE
      ? {
          method: 'PATCH',
          path: `/tenant-items/${randomItemId()}`,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ priceCents: Math.floor(Math.random() * 100_000) }),
        }
      : { method: 'GET', path: `/replica-items/${randomItemId()}` },
  'replica-read': () => ({ method: 'GET', path: `/replica-items/${randomItemId()}` }),
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
async function startHaproxy(nodes: readonly string[], signal: AbortSignal) {
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
  const url = `http://127.0.0.1:${port}`;
  // Ready once it answers /readyz through a node (bounded: 20 s).
  for (let attempt = 0; attempt < 200 && !signal.aborted; attempt++) {
    const response = await fetch(`${url}/readyz`).catch(() => undefined);
    if (response?.status === 200) break;
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
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
  const next = () => {
    const request = requestOf[load]();
    return { ...request, headers: { ...headers, ...request.headers } };
  };
  await measureLoad({
    url,
    connections,
    durationSeconds: WARMUP_SECONDS,
    nextRequest: next,
    signal: settings.signal,
  });
  const cpuBefore = await cpuOf(pids);
  const result: LoadMeasurement = await measureLoad({
    url,
    connections,
    durationSeconds: settings.durationSeconds,
    nextRequest: next,
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
  };
  settings.progress(
    `  ${setup.padEnd(22)} ${load.padEnd(12)} ${figures.requestsPerSecond.toFixed(0).padStart(6)} req/s  p99 ${figures.p99Ms.toFixed(1)} ms  cpu ${figures.cpuMsPerRequest.toFixed(2)} ms/req  non2xx ${figures.non2xx}  errors ${figures.errors}`,
  );
  return figures;
}

async function startNodes(
  count: number,
  databaseUrl: string,
  replicaUrls: readonly string[],
  settings: CustomRunSettings,
): Promise<ServerProcess[]> {
  const nodes: ServerProcess[] = [];
  try {
    // One after the other: the first migrates and seeds, the others find both done.
    for (let index = 0; index < count; index++)
      nodes.push(
        await spawnServer({
          label: `node${index + 1}`,
          entry: NODE_SERVER,
          settings: {
            dialect: 'postgres',
            databaseUrl,
            poolMax: settings.poolMax,
            ...(replicaUrls.length === 0 ? {} : { replicaUrls }),
          },
          signal: settings.signal,
        }),
      );
    return nodes;
  } catch (error) {
    await Promise.all(nodes.map((node) => node.stop()));
    throw error;
  }
}

const hostPort = (url: string) => new URL(url).host;

/** One round: every setup and load once. */
async function round(pair: StreamingPair, settings: CustomRunSettings): Promise<Figures[]> {
  const figures: Figures[] = [];
  const nodes = await startNodes(3, pair.primaryUrl, [], settings);
  try {
    const [first] = nodes as [ServerProcess];
    const headers = first.requestHeaders;
    for (const load of ['read', 'mix'] as const)
      figures.push(await measure('1 node, direct', load, first.url, headers, [first.pid], settings));
    figures.push(await measure('1 node, direct', 'replica-read', first.url, headers, [first.pid], settings));
    for (const count of [1, 2, 3]) {
      const serving = nodes.slice(0, count);
      const haproxy = await startHaproxy(
        serving.map((node) => hostPort(node.url)),
        settings.signal,
      );
      try {
        const pids = [...serving.map((node) => node.pid), haproxy.pid];
        for (const load of ['read', 'mix'] as const)
          figures.push(
            await measure(
              `HAProxy + ${count} node${count > 1 ? 's' : ''}`,
              load,
              haproxy.url,
              headers,
              pids,
              settings,
            ),
          );
      } finally {
        await haproxy.stop();
      }
    }
  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
  }
  // The same node with the streaming replica in DATABASE_REPLICA_URLS.
  const [withReplica] = (await startNodes(1, pair.primaryUrl, [pair.replicaUrl], settings)) as [
    ServerProcess,
  ];
  try {
    for (const load of ['replica-read', 'mix'] as const)
      figures.push(
        await measure(
          '1 node + replica',
          load,
          withReplica.url,
          withReplica.requestHeaders,
          [withReplica.pid],
          settings,
        ),
      );
  } finally {
    await withReplica.stop();
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
    'HAProxy (deploy/haproxy) in front of 1, 2 and 3 Socle nodes: tenant read and a read/write mix (20 % PATCH, reads through db.replica) vs one node loaded directly; one node with a pg_basebackup streaming replica vs primary-only',
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
    // Medians of the rounds, per setup and load.
    const medians = (rounds[0] ?? []).map((first, position) => {
      const of = (key: keyof Figures) => median(rounds.map((figures) => figures[position]?.[key] as number));
      return {
        setup: first.setup,
        load: first.load,
        requestsPerSecond: of('requestsPerSecond'),
        p50Ms: of('p50Ms'),
        p99Ms: of('p99Ms'),
        cpuMsPerRequest: of('cpuMsPerRequest'),
        non2xx: Math.max(...rounds.map((figures) => figures[position]?.non2xx ?? 0)),
        errors: Math.max(...rounds.map((figures) => figures[position]?.errors ?? 0)),
      };
    });
    const direct = (load: Mix) =>
      medians.find((row) => row.setup === '1 node, direct' && row.load === load)?.requestsPerSecond ??
      Number.NaN;
    const lines = [
      `fleet (${dialect}, medians of ${rounds.length} round(s), ${settings.durationSeconds} s each, ${settings.connections ?? DEFAULT_CONNECTIONS} connections)`,
      `  ${'setup'.padEnd(22)} ${'load'.padEnd(12)} ${'req/s'.padStart(7)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'CPU ms/req'.padStart(10)} ${'vs direct'.padStart(9)}  non2xx/errors`,
      ...medians.map(
        (row) =>
          `  ${row.setup.padEnd(22)} ${row.load.padEnd(12)} ${row.requestsPerSecond.toFixed(0).padStart(7)} ${row.p50Ms.toFixed(2).padStart(7)} ${row.p99Ms.toFixed(2).padStart(7)} ${row.cpuMsPerRequest.toFixed(3).padStart(10)} ${(row.requestsPerSecond / direct(row.load)).toFixed(2).padStart(9)}  ${row.non2xx}/${row.errors}`,
      ),
    ];
    return { scenario: 'fleet', dialect, text: lines.join('\n'), figures: { medians, rounds } };
  },
};
