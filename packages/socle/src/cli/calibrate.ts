import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Pool } from 'undici';
import { WebSocket } from 'ws';
import { SOCLE_VERSION } from '../kernel/version.js';
import type { CalibrationProfile, Capacity } from '../plan/data.js';
import {
  CALIBRATION_BUCKET,
  CALIBRATION_CHANNEL,
  CALIBRATION_EVENT,
  CALIBRATION_ITEMS,
  CALIBRATION_MAX_UPLOADS,
  CALIBRATION_PASSWORD,
  CALIBRATION_REALTIME_KEY,
  CALIBRATION_UPLOAD_BYTES,
  type CalibrationChildMessage,
  type CalibrationChildSettings,
  type CalibrationParentMessage,
  calibrationEmail,
  isCalibrationChildMessage,
} from './calibrate-protocol.js';
import { EXIT } from './exit-codes.js';
import { type DatabaseCpu, openDatabaseCpu } from './process-cpu.js';

/**
 * `socle bench --calibrate`: measures Socle's CPU per operation on this machine and writes the
 * calibration profile `socle plan --calibration` reads (`socle-calibration/1`, the format
 * `npm run bench -- --calibrate` writes in the repository). The server runs in a child process
 * on a throwaway database; this process drives bounded phases over keep-alive connections
 * (undici) and asks the child for its own CPU time around each, so CPU per operation is the
 * server's alone. The load generator is written here rather than taken from autocannon: it is 40
 * lines on undici, which Socle already depends on, and an installed `socle` must not need a
 * benchmarking tool.
 */

export interface CalibrateOptions {
  readonly output: string;
  /** Seconds each phase runs. */
  readonly duration: number;
  /** Keep-alive connections (and concurrent requests) of the load. */
  readonly connections: number;
}

export const CALIBRATE_DEFAULTS = { output: 'socle-calibration.json', duration: 10, connections: 16 };

/** Reads the flags; a string names what is wrong (the CLI exits 2 with it). */
export function parseCalibrateOptions(values: {
  readonly output?: string | undefined;
  readonly duration?: string | undefined;
  readonly connections?: string | undefined;
}): CalibrateOptions | string {
  const duration = values.duration === undefined ? CALIBRATE_DEFAULTS.duration : Number(values.duration);
  if (!Number.isFinite(duration) || duration <= 0 || duration > 600)
    return `--duration must be a number of seconds per phase, above 0 and at most 600 (got "${values.duration}")`;
  const connections =
    values.connections === undefined ? CALIBRATE_DEFAULTS.connections : Number(values.connections);
  if (!Number.isInteger(connections) || connections < 1 || connections > 1000)
    return `--connections must be a whole number from 1 to 1000 (got "${values.connections}")`;
  if (values.output === '') return '--output must name a file';
  return { output: values.output ?? CALIBRATE_DEFAULTS.output, duration, connections };
}

/** `[######......] 2/5 tenant write`: the phases done of all, and the one running. */
export function progressBar(done: number, total: number, label: string, width = 24): string {
  const filled = total <= 0 ? width : Math.min(width, Math.round((width * done) / total));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label}`;
}

const round = (value: number, digits = 4) => Number(value.toPrecision(digits));
/** Bytes as KiB with one decimal (a MiB figure when given KiB). */
const formatKiB = (bytes: number) => (bytes / 1024).toFixed(1);

/** The server child and the IPC questions asked of it. */
class Server {
  private nextId = 0;
  private readonly waiting = new Map<number, (micros: number) => void>();
  private jobsWaiter: ((message: CalibrationChildMessage & { type: 'jobs-done' }) => void) | undefined;
  private publishWaiter: ((message: CalibrationChildMessage & { type: 'publish-done' }) => void) | undefined;
  private readonly memoryWaiting = new Map<
    number,
    (memory: { rssBytes: number; heldBytes: number }) => void
  >();
  private failure: ((error: Error) => void)[] = [];
  readonly ready: Promise<{ url: string; headers: Readonly<Record<string, string>> }>;

  constructor(readonly child: ChildProcess) {
    this.ready = new Promise((resolve, reject) => {
      this.failure.push(reject);
      child.on('message', (message: unknown) => {
        if (!isCalibrationChildMessage(message)) return;
        if (message.type === 'ready') resolve({ url: message.url, headers: message.headers });
        else if (message.type === 'cpu') this.waiting.get(message.id)?.(message.micros);
        else if (message.type === 'jobs-done') this.jobsWaiter?.(message);
        else if (message.type === 'publish-done') this.publishWaiter?.(message);
        else if (message.type === 'memory') this.memoryWaiting.get(message.id)?.(message);
        else this.fail(new Error(`the calibration server failed: ${message.message}`));
      });
    });
    child.once('exit', (code, signal) =>
      this.fail(new Error(`the calibration server exited (${signal ?? `code ${code}`})`)),
    );
  }

  private fail(error: Error) {
    for (const reject of this.failure.splice(0)) reject(error);
  }

  private ask<T>(
    message: CalibrationParentMessage,
    register: (resolve: (value: T) => void) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.failure.push(reject);
      register(resolve);
      this.child.send(message);
    });
  }

  /** CPU microseconds the server has used so far. */
  cpuMicros(): Promise<number> {
    const id = this.nextId++;
    return this.ask<number>({ type: 'cpu', id }, (resolve) =>
      this.waiting.set(id, (micros) => {
        this.waiting.delete(id);
        resolve(micros);
      }),
    );
  }

  /** The server's memory now, after garbage collections: resident, and held by the program. */
  memory(): Promise<{ rssBytes: number; heldBytes: number }> {
    const id = this.nextId++;
    return this.ask<{ rssBytes: number; heldBytes: number }>({ type: 'memory', id }, (resolve) =>
      this.memoryWaiting.set(id, (memory) => {
        this.memoryWaiting.delete(id);
        resolve(memory);
      }),
    );
  }

  publish(seconds: number, concurrency: number) {
    return this.ask<CalibrationChildMessage & { type: 'publish-done' }>(
      { type: 'publish', seconds, concurrency },
      (resolve) => {
        this.publishWaiter = resolve;
      },
    );
  }

  jobs(seconds: number, batch: number) {
    return this.ask<CalibrationChildMessage & { type: 'jobs-done' }>(
      { type: 'jobs', seconds, batch },
      (resolve) => {
        this.jobsWaiter = resolve;
      },
    );
  }
}

interface Measured {
  readonly operations: number;
  readonly cpuMicros: number;
  /** CPU of the Postgres backends serving the throwaway database, when they run on this machine. */
  readonly databaseCpuMicros?: number | undefined;
  readonly seconds: number;
  readonly p99Ms: number | undefined;
}

/** A request of a phase: JSON (`body`) or raw bytes (`bytes`, with their content type). */
interface PhaseRequest {
  readonly method: 'GET' | 'POST' | 'PATCH';
  readonly path: string;
  readonly body?: unknown;
  readonly bytes?: { readonly data: Buffer; readonly contentType: string };
  readonly headers?: Record<string, string>;
}

/**
 * Reads the Postgres backends' CPU around a phase: `around(work)` runs it and adds
 * `databaseCpuMicros` when the backends' CPU could be read (Postgres on this machine).
 */
function databaseCpuAround(reader: DatabaseCpu | undefined) {
  return async <T extends Measured>(work: () => Promise<T>): Promise<T> => {
    const before = await reader?.read();
    const result = await work();
    const after = await reader?.read();
    if (reader === undefined || before === undefined || after === undefined || !reader.readable())
      return result;
    return { ...result, databaseCpuMicros: (after - before) * 1000 };
  };
}

/**
 * Runs `connections` loops of `request` on keep-alive connections for `seconds`, with the server's
 * CPU read before and after. A non-2xx answer stops the run: the figure would not be of the
 * operation named.
 */
async function drive(
  server: Server,
  pool: Pool,
  connections: number,
  seconds: number,
  request: (index: number) => PhaseRequest,
  onTick: (elapsed: number) => void,
  maxOperations = Number.POSITIVE_INFINITY,
): Promise<Measured> {
  const latencies: number[] = [];
  const cpuBefore = await server.cpuMicros();
  const startedAt = performance.now();
  const deadline = startedAt + seconds * 1000;
  const ticker = setInterval(() => onTick((performance.now() - startedAt) / 1000), 250);
  let counter = 0;
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (performance.now() < deadline && counter < maxOperations) {
          const next = request(counter++);
          const sent = performance.now();
          const response = await pool.request({
            method: next.method,
            path: next.path,
            headers: {
              ...next.headers,
              ...(next.body === undefined ? {} : { 'content-type': 'application/json' }),
              ...(next.bytes === undefined ? {} : { 'content-type': next.bytes.contentType }),
            },
            ...(next.body === undefined ? {} : { body: JSON.stringify(next.body) }),
            ...(next.bytes === undefined ? {} : { body: next.bytes.data }),
          });
          const text = await response.body.text();
          if (response.statusCode >= 300)
            throw new Error(
              `${next.method} ${next.path} answered ${response.statusCode}: ${text.slice(0, 300)}`,
            );
          latencies.push(performance.now() - sent);
        }
      }),
    );
  } finally {
    clearInterval(ticker);
  }
  const elapsed = (performance.now() - startedAt) / 1000;
  const cpuAfter = await server.cpuMicros();
  latencies.sort((a, b) => a - b);
  return {
    operations: latencies.length,
    cpuMicros: cpuAfter - cpuBefore,
    seconds: elapsed,
    p99Ms: latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))],
  };
}

function capacity(
  benchmark: string,
  operation: string,
  measured: Measured,
  unit?: 'MB',
): Capacity & Record<string, unknown> {
  const cpuMs = measured.cpuMicros / 1000 / Math.max(1, measured.operations);
  return {
    benchmark,
    operation,
    ...(unit === undefined ? {} : { unit }),
    cpuMsPerOperation: round(cpuMs),
    operationsPerVcpuSecond: round(1000 / cpuMs),
    measuredPerSecond: round(measured.operations / measured.seconds),
    ...(measured.databaseCpuMicros === undefined
      ? {}
      : {
          databaseCpuMsPerOperation: round(
            Math.max(0, measured.databaseCpuMicros) / 1000 / Math.max(1, measured.operations),
          ),
        }),
    ...(measured.p99Ms === undefined ? {} : { p99Ms: round(measured.p99Ms) }),
    measuredAt: new Date().toISOString(),
    loadAverage: round(os.loadavg()[0] ?? 0, 3),
  };
}

/** The bytes of each upload of the file upload phase: text, so the type sniffed is text/plain. */
const uploadBody = () => Buffer.alloc(CALIBRATION_UPLOAD_BYTES, 'socle calibration upload\n');

/** A fresh Postgres database on DATABASE_URL's server, dropped by `drop()`. */
async function throwawayDatabase(databaseUrl: string) {
  const name = `socle_calibrate_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        await client.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/** The child's entry point beside this file: `.js` when built, `.ts` under tsx (tests from source). */
function childEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), `calibrate-child${path.extname(here)}`);
}

const PHASES = [
  'start the server',
  'tenant read',
  'tenant write',
  'sign-in',
  'jobs',
  'file upload',
  'realtime',
] as const;

/** Sockets of the realtime phase: 25 per connection of the load, at least 100, at most 2000. */
export const realtimeSockets = (connections: number) => Math.min(2000, Math.max(100, connections * 25));

/**
 * Opens `count` WebSockets to the server's realtime gateway (the Pusher protocol, what a browser's
 * pusher-js does), each joined to the calibration channel; counts the events they receive.
 */
async function openSockets(url: string, count: number) {
  const address = `${url.replace(/^http/, 'ws')}/app/${CALIBRATION_REALTIME_KEY}?protocol=7&client=socle-calibrate&version=1`;
  const sockets: WebSocket[] = [];
  let deliveries = 0;
  const close = () => {
    for (const socket of sockets) socket.terminate();
  };
  try {
    // In groups, so the gateway is not asked for hundreds of handshakes at once.
    for (let start = 0; start < count; start += 50) {
      const group = Array.from({ length: Math.min(50, count - start) }, async () => {
        const socket = new WebSocket(address);
        sockets.push(socket);
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.on('message', (raw) => {
            const frame = JSON.parse(String(raw)) as { event?: string };
            if (frame.event === CALIBRATION_EVENT) deliveries += 1;
            else if (frame.event === 'pusher:connection_established')
              socket.send(
                JSON.stringify({ event: 'pusher:subscribe', data: { channel: CALIBRATION_CHANNEL } }),
              );
            else if (frame.event === 'pusher_internal:subscription_succeeded') resolve();
            else if (frame.event === 'pusher:error') reject(new Error(`realtime: ${String(raw)}`));
          });
        });
      });
      await Promise.all(group);
    }
  } catch (error) {
    close();
    throw error;
  }
  return { deliveries: () => deliveries, close };
}

export async function runCalibration(options: CalibrateOptions): Promise<number> {
  const err = process.stderr;
  const tty = err.isTTY === true;
  // On a terminal the bar redraws in place; in a log, one line per phase.
  const show = (done: number, label: string, options: { tick?: boolean; final?: boolean } = {}) => {
    const line = progressBar(done, PHASES.length, label);
    if (tty) err.write(`\r${line.padEnd(72)}${options.final ? '\n' : ''}`);
    else if (options.tick !== true) err.write(`${line}\n`);
  };
  const cpus = os.cpus();
  const loadAverageAtStart = os.loadavg();
  if ((loadAverageAtStart[0] ?? 0) > cpus.length)
    err.write(
      `warning: the load average (${loadAverageAtStart[0]?.toFixed(2)}) is above this machine's ${cpus.length} cores: ` +
        'other work inflates CPU per operation; calibrate on a quiet machine for figures to plan from.\n',
    );
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const blobUrl = process.env.BLOB_URL || undefined;
  const dialect = databaseUrl === undefined ? 'pglite' : 'postgres';
  const store = blobUrl === undefined ? 'local store' : `${new URL(blobUrl).protocol.replace(':', '')} store`;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'socle-calibrate-'));
  let database: Awaited<ReturnType<typeof throwawayDatabase>> | undefined;
  let child: ChildProcess | undefined;
  let pool: Pool | undefined;
  let databaseCpu: DatabaseCpu | undefined;
  const startedAt = new Date();
  // Ctrl-C or SIGTERM stops the server, which fails the phase under way; the cleanup below then
  // removes the temporary directory and drops the throwaway database before exiting (1).
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = signal;
    child?.kill('SIGTERM');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    show(0, PHASES[0]);
    if (databaseUrl !== undefined) database = await throwawayDatabase(databaseUrl);
    if (interrupted !== undefined) throw new Error('interrupted');
    const settings: CalibrationChildSettings = {
      dataDir,
      databaseUrl: database?.url,
      users: options.connections,
      blobUrl,
    };
    child = fork(childEntry(), [], {
      // --expose-gc: the child collects garbage before each memory reading of the realtime phase.
      execArgv: [...process.execArgv, '--expose-gc'],
      env: { ...process.env, SOCLE_CALIBRATION_CHILD: JSON.stringify(settings) },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const server = new Server(child);
    const { url, headers } = await server.ready;
    const activePool = new Pool(url, { connections: options.connections, pipelining: 1 });
    pool = activePool;
    // Postgres's own CPU per operation: its backends' CPU time, readable when it runs here.
    if (database !== undefined) databaseCpu = await openDatabaseCpu(database.url);
    const withDatabaseCpu = databaseCpuAround(databaseCpu);
    /** A measured request phase: `done` phases before it, its requests, at most `maxOperations`. */
    const measurePhase = (done: number, request: (index: number) => PhaseRequest, maxOperations?: number) =>
      withDatabaseCpu(() =>
        drive(server, activePool, options.connections, options.duration, request, phase(done), maxOperations),
      );
    const phase = (done: number) => (elapsed: number) =>
      show(done, `${PHASES[done]} ${Math.min(elapsed, options.duration).toFixed(1)}/${options.duration} s`, {
        tick: true,
      });
    const itemId = (index: number) => ((Math.imul(index + 1, 2654435761) >>> 0) % CALIBRATION_ITEMS) + 1;

    show(1, PHASES[1]);
    const readRequest = (index: number) => ({
      method: 'GET' as const,
      path: `/calibration/items/${itemId(index)}`,
      headers: { ...headers },
    });
    // Unmeasured warm-up (a fifth of a phase): the first requests pay for compiling the code.
    await drive(server, activePool, options.connections, options.duration / 5, readRequest, () => undefined);
    const read = await measurePhase(1, readRequest);
    show(2, PHASES[2]);
    const write = await measurePhase(2, (index) => ({
      method: 'PATCH',
      path: `/calibration/items/${itemId(index)}`,
      headers: { ...headers },
      body: { priceCents: index % 100_000 },
    }));
    show(3, PHASES[3]);
    const signIn = await measurePhase(3, (index) => ({
      method: 'POST',
      path: '/auth/sign-in',
      body: { email: calibrationEmail(index % options.connections), password: CALIBRATION_PASSWORD },
    }));
    show(4, PHASES[4]);
    const jobs = await withDatabaseCpu(async (): Promise<Measured> => {
      const done = await server.jobs(options.duration, 500);
      return {
        operations: done.jobs,
        cpuMicros: done.cpuMicros,
        seconds: done.elapsedMs / 1000,
        p99Ms: undefined,
      };
    });
    show(5, PHASES[5]);
    // Uploads of 1 MiB through the files module (streamed, type sniffed, hashed, stored, recorded),
    // at most CALIBRATION_MAX_UPLOADS of them; counted in MB (10^6 bytes), as storage is billed.
    const upload = uploadBody();
    const uploads = await measurePhase(
      5,
      () => ({
        method: 'POST',
        path: `/files/${CALIBRATION_BUCKET}`,
        headers: { ...headers },
        bytes: { data: upload, contentType: 'text/plain' },
      }),
      CALIBRATION_MAX_UPLOADS,
    );
    const uploadedMegabytes: Measured = {
      ...uploads,
      operations: (uploads.operations * CALIBRATION_UPLOAD_BYTES) / 1e6,
      p99Ms: undefined,
    };
    show(6, PHASES[6]);
    // Memory per connection: the server's resident memory before and after the sockets joined.
    const socketCount = realtimeSockets(options.connections);
    const before = await server.memory();
    const sockets = await openSockets(url, socketCount);
    let realtime: Measured;
    let perConnection: number;
    try {
      perConnection = Math.max(0, ((await server.memory()).heldBytes - before.heldBytes) / socketCount);
      // Deliveries: the server publishes to the channel every socket joined, for the phase's time.
      const published = await server.publish(options.duration, 4);
      const expected = published.messages * socketCount;
      // The last messages may still be on their way: waited for, up to two seconds.
      const until = Date.now() + 2000;
      while (sockets.deliveries() < expected && Date.now() < until)
        await new Promise((resolve) => setTimeout(resolve, 20));
      realtime = {
        operations: sockets.deliveries(),
        cpuMicros: published.cpuMicros,
        seconds: published.elapsedMs / 1000,
        p99Ms: undefined,
      };
    } finally {
      sockets.close();
    }
    show(7, 'done', { final: true });

    const source = (what: string) => `socle bench --calibrate ${what} (${dialect})`;
    const capacities = {
      tenantRead: capacity(
        source('tenant read'),
        'signed-in GET of one tenant row (token, membership, RLS)',
        read,
      ),
      write: capacity(
        source('tenant write'),
        'signed-in PATCH of one tenant row (token, membership, body validation, UPDATE … RETURNING under RLS)',
        write,
      ),
      signIn: capacity(source('sign-in'), 'POST /auth/sign-in (argon2id hash check, tokens issued)', signIn),
      job: capacity(
        source('jobs'),
        'one no-op job enqueued in a batch and processed (worker overhead, not the job’s own work)',
        jobs,
      ),
      fileUpload: capacity(
        source(`file upload, ${store}`),
        `one MB (10^6 bytes) uploaded through the files module in ${formatKiB(CALIBRATION_UPLOAD_BYTES / 1024)} MiB files (streamed, type sniffed, sha256, stored, recorded under RLS)`,
        uploadedMegabytes,
        'MB',
      ),
      realtimeDelivery: capacity(
        source(`realtime deliveries, ${socketCount} subscribers`),
        'one message delivered to one subscribed WebSocket',
        realtime,
      ),
    };
    const memory = {
      realtimeConnection: {
        benchmark: source(`realtime, ${socketCount} sockets`),
        bytes: Math.round(perConnection),
        what: 'server memory (JS heap and buffers, after garbage collection) per idle WebSocket connection joined to one channel',
      },
      processBase: {
        benchmark: source(`realtime, ${socketCount} sockets`),
        bytes: Math.round(before.rssBytes),
        what: 'server RSS before the sockets (after the other phases, garbage collected)',
      },
    };
    const loadAtStart = loadAverageAtStart.map((value) => round(value, 3));
    const profile: CalibrationProfile & Record<string, unknown> = {
      profile: 'socle-calibration/1',
      measuredAt: startedAt.toISOString(),
      machine: {
        ...(cpus[0]?.model === undefined ? {} : { cpuModel: cpus[0].model }),
        cpus: cpus.length,
        memoryGiB: round(os.totalmem() / 2 ** 30, 3),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
        loadAverageAtStart: loadAtStart,
      } as CalibrationProfile['machine'],
      runs: [
        {
          startedAt: startedAt.toISOString(),
          command: 'socle bench --calibrate',
          socle: SOCLE_VERSION,
          node: process.version,
          dialect,
          blobStore: store,
          databaseCpu:
            database === undefined
              ? 'embedded PGlite: its work is in the server process'
              : databaseCpu?.readable() === true
                ? 'Postgres backends of the throwaway database, read from /proc on this machine'
                : 'not measured: the Postgres backends are not visible from this machine',
          ...(database === undefined ? {} : { throwawayDatabase: database.name }),
          durationSeconds: options.duration,
          connections: options.connections,
          loadAverageAtStart: loadAtStart,
          measured: Object.keys(capacities),
          operations: Object.fromEntries(
            Object.entries({ read, write, signIn, jobs, uploads, realtime }).map(([key, value]) => [
              key,
              value.operations,
            ]),
          ),
        },
      ],
      note:
        `CPU per operation of the Socle server process, measured by socle bench --calibrate (socle ${SOCLE_VERSION}) ` +
        'on the machine above. A cloud vCPU is one hardware thread: treat operationsPerVcpuSecond as per vCPU. ' +
        'A busy machine (load average above its core count) inflates CPU per operation and measuredPerSecond ' +
        'more: calibrate on a quiet machine and plan from CPU per operation.',
      capacities,
      memory,
    };
    await mkdir(path.dirname(path.resolve(options.output)), { recursive: true });
    // Written beside, then renamed: an interrupted write never leaves half a profile.
    const partial = `${options.output}.${process.pid}.partial`;
    await writeFile(partial, `${JSON.stringify(profile, null, 2)}\n`);
    await rename(partial, options.output);
    const rows = Object.entries(capacities).map(([key, value]) => {
      const per = value.unit ?? 'op';
      const database =
        value.databaseCpuMsPerOperation === undefined
          ? ''
          : `  Postgres ${value.databaseCpuMsPerOperation} ms CPU/${per}`;
      return `  ${key.padEnd(16)} ${String(value.cpuMsPerOperation).padStart(9)} ms CPU/${per}  ${String(value.operationsPerVcpuSecond).padStart(9)} ${per === 'op' ? '' : `${per} `}/vCPU-s  ${String(value.measuredPerSecond).padStart(9)} ${per === 'op' ? '' : `${per} `}/s measured${database}`;
    });
    rows.push(
      `  ${'memory'.padEnd(16)} ${formatKiB(memory.realtimeConnection.bytes)} KiB per realtime connection, ${formatKiB(memory.processBase.bytes / 1024)} MiB process`,
    );
    process.stdout.write(
      `Calibration (${dialect}, load average ${loadAtStart[0]} at start, ${cpus.length} cores):\n${rows.join('\n')}\n` +
        `Wrote ${options.output}: plan with it by "socle plan <workload.yaml> --calibration ${options.output}"\n`,
    );
    return EXIT.ok;
  } catch (error) {
    if (tty) err.write('\n');
    err.write(
      interrupted === undefined
        ? `socle bench --calibrate: ${(error as Error).message}\n`
        : `socle bench --calibrate: stopped by ${interrupted}, nothing written\n`,
    );
    return EXIT.failure;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await pool?.close().catch(() => undefined);
    await databaseCpu?.close().catch(() => undefined);
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await database
      ?.drop()
      .catch((error: unknown) =>
        err.write(
          `socle bench --calibrate: could not drop the database ${database?.name}: ${String(error)}\n`,
        ),
      );
    await rm(dataDir, { recursive: true, force: true });
  }
}
