import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname } from 'node:path';
import type { ScenarioResult } from './harness.js';
import type { CustomResult } from './scenario.js';

/**
 * `npm run bench -- --calibrate`: turns the measured figures of one run into the calibration
 * profile `socle plan` reads (`packages/socle/plan-data/calibration.json` by default). Each
 * capacity is CPU time per operation of Socle's own process (not the baseline's), so a planner
 * divides by it to get operations per vCPU-second, and it names the benchmark it came from.
 */

/** One measured capacity: CPU per operation, and what the run reached on this machine. */
export interface CalibratedCapacity {
  /** The bench scenario and dialect it came from, e.g. `tenant-select (postgres)`. */
  readonly benchmark: string;
  readonly operation: string;
  /**
   * `MB` when an operation is a megabyte moved (10^6 bytes: file transfers), `room-second` when
   * it is one second of one StrategyBuzzer room; absent for requests and jobs.
   */
  readonly unit?: 'MB' | 'room-second';
  /** CPU milliseconds (user + system) Socle's process spent per operation. */
  readonly cpuMsPerOperation: number;
  /** 1000 / cpuMsPerOperation: operations one fully busy core sustains per second. */
  readonly operationsPerVcpuSecond: number;
  /** Operations per second the run reached (bounded by the load, the machine and its load). */
  readonly measuredPerSecond: number;
  /** CPU milliseconds of the Postgres backends per operation (Postgres on this machine only). */
  readonly databaseCpuMsPerOperation?: number;
  readonly p99Ms?: number;
  /** When this figure was measured, and the machine's load average then (1 min). */
  readonly measuredAt: string;
  readonly loadAverage: number;
  /** The load a reference app's figure holds at (players per room, buzzes per second, write share…). */
  readonly measuredUnder?: Readonly<Record<string, number>>;
}

export interface CalibrationProfile {
  readonly profile: 'socle-calibration/1';
  readonly measuredAt: string;
  readonly commit: string | undefined;
  readonly machine: {
    readonly cpuModel: string | undefined;
    readonly cpus: number;
    readonly memoryGiB: number;
    readonly node: string;
    readonly platform: string;
    readonly loadAverageAtStart: readonly number[];
  };
  /** The bench runs the profile's figures come from, oldest first (their settings, what each measured). */
  readonly runs: readonly Readonly<Record<string, unknown>>[];
  readonly note: string;
  readonly capacities: Readonly<Record<string, CalibratedCapacity>>;
  /** Memory figures (bytes): per idle realtime connection, and the server's RSS without them. */
  readonly memory: Readonly<
    Record<string, { readonly benchmark: string; readonly bytes: number; readonly what: string }>
  >;
}

/** Which request scenario gives which capacity. */
const REQUEST_CAPACITIES: Readonly<Record<string, { key: string; operation: string }>> = {
  'db-select': { key: 'plainRead', operation: 'GET one row by primary key, no auth' },
  'tenant-select': {
    key: 'tenantRead',
    operation: 'signed-in GET of one tenant row (token, membership, RLS)',
  },
  'sign-in': { key: 'signIn', operation: 'POST /auth/sign-in (argon2id hash check, tokens issued)' },
  'tenant-write': {
    key: 'write',
    operation:
      'signed-in PATCH of one tenant row (token, membership, body validation, UPDATE … RETURNING under RLS)',
  },
};

const round = (value: number, digits = 4) => Number(value.toPrecision(digits));

function capacity(
  benchmark: string,
  operation: string,
  cpuMs: number,
  measuredPerSecond: number,
  extra: {
    p99Ms?: number | undefined;
    databaseCpuMs?: number | undefined;
    unit?: 'MB' | 'room-second';
    measuredUnder?: Readonly<Record<string, number>>;
  } = {},
): CalibratedCapacity {
  return {
    benchmark,
    operation,
    ...(extra.unit === undefined ? {} : { unit: extra.unit }),
    cpuMsPerOperation: round(cpuMs),
    operationsPerVcpuSecond: round(1000 / cpuMs),
    measuredPerSecond: round(measuredPerSecond),
    ...(extra.databaseCpuMs === undefined ? {} : { databaseCpuMsPerOperation: round(extra.databaseCpuMs) }),
    ...(extra.p99Ms === undefined ? {} : { p99Ms: round(extra.p99Ms) }),
    measuredAt: new Date().toISOString(),
    loadAverage: round(os.loadavg()[0] ?? 0, 3),
    ...(extra.measuredUnder === undefined
      ? {}
      : {
          measuredUnder: Object.fromEntries(
            Object.entries(extra.measuredUnder).map(([name, value]) => [name, round(value)]),
          ),
        }),
  };
}

/** The shape of the fields of the jobs, files and realtime-fanout figures the profile reads. */
interface JobsFigures {
  readonly socle?: {
    readonly cpuMillisecondsPerJob?: number;
    readonly processedPerSecond?: number;
    readonly databaseDrainCpuMillisecondsPerJob?: number | null;
  };
}
interface TransferFigures {
  readonly socle?: {
    readonly megabytesPerSecond?: number;
    readonly cpuMillisecondsPerMegabyte?: number;
    readonly databaseCpuMillisecondsPerMegabyte?: number;
  };
}

/** The strategybuzzer scenario's figures the profile reads: Socle's steps (rooms added step by step). */
interface StrategyBuzzerFigures {
  readonly socle?: {
    readonly steps?: readonly {
      readonly rooms: number;
      readonly players: number;
      /** Length of the measured window, and what the players did in it. */
      readonly seconds?: number;
      readonly buzzes: number;
      readonly questions?: number;
      readonly p99Ms: number;
      readonly serverCpuShare: number;
      readonly databaseCpuShare?: number;
    }[];
  };
}
/** The cryptocare scenario's medians over its rounds. */
interface CryptoCareFigures {
  readonly summary?: {
    readonly serverCpuMsPerRequest?: number;
    readonly postgresCpuMsPerRequest?: number;
    readonly requestsPerSecond?: number;
    readonly mixP99Ms?: number;
    readonly writeShare?: number;
    readonly users?: number;
    readonly thinkMs?: number;
  };
}

/**
 * StrategyBuzzer rooms from the largest step whose server CPU was read: CPU per room-second is
 * the server's core share ÷ rooms (the largest step spreads the process's fixed work over the
 * most rooms), with the rate the bench's players played at.
 */
function strategybuzzerRoom(
  benchmark: string,
  figures: StrategyBuzzerFigures,
): CalibratedCapacity | undefined {
  const step = figures.socle?.steps
    ?.filter((entry) => Number.isFinite(entry.serverCpuShare) && entry.serverCpuShare > 0 && entry.rooms > 0)
    .at(-1);
  if (step === undefined) return undefined;
  const playersPerRoom = step.players / step.rooms;
  const perRoomSecond = (count: number | undefined) =>
    count === undefined || step.seconds === undefined || step.seconds <= 0
      ? undefined
      : count / step.rooms / step.seconds;
  const buzzes = perRoomSecond(step.buzzes);
  const questions = perRoomSecond(step.questions);
  const under: Record<string, number> = { playersPerRoom };
  if (buzzes !== undefined) under.buzzesPerRoomSecond = buzzes;
  if (questions !== undefined) under.questionsPerRoomSecond = questions;
  // The bench's players buzz and answer; they send no chat message.
  under.chatMessagesPerRoomSecond = 0;
  const rate =
    buzzes === undefined
      ? ''
      : `, ${round(buzzes, 3)} buzzes/s${questions === undefined ? '' : ` (a question every ${round(1 / questions, 3)} s, each player buzzing, the first answering)`}`;
  return capacity(
    `${benchmark}, largest step: ${step.rooms} rooms`,
    `one second of one StrategyBuzzer room of ${round(playersPerRoom, 3)} players on pusher-js WebSockets${rate}, no chat; per room-second, so operations per vCPU-second are rooms per vCPU`,
    (step.serverCpuShare * 1000) / step.rooms,
    step.rooms,
    {
      unit: 'room-second',
      p99Ms: step.p99Ms,
      databaseCpuMs:
        step.databaseCpuShare === undefined ? undefined : (step.databaseCpuShare * 1000) / step.rooms,
      measuredUnder: under,
    },
  );
}

/** CryptoCare's mixed requests: Socle's and Postgres's CPU per request of the mix, its p99. */
function cryptocareRequest(benchmark: string, figures: CryptoCareFigures): CalibratedCapacity | undefined {
  const summary = figures.summary;
  const cpuMs = summary?.serverCpuMsPerRequest;
  if (summary === undefined || cpuMs === undefined || !(cpuMs > 0)) return undefined;
  const under: Record<string, number> = {};
  if (summary.users !== undefined) under.users = summary.users;
  if (summary.thinkMs !== undefined) under.thinkMs = summary.thinkMs;
  if (summary.writeShare !== undefined) under.writeShare = summary.writeShare;
  return capacity(
    benchmark,
    'one request of CryptoCare’s mix (virtual users pausing ~1 s between actions: 60 % search, 20 % professional page + its slots, 10 % book and pay: slots, hold with a Bitcoin invoice and QR, the processor’s webhook; 10 % a practice’s agenda)',
    cpuMs,
    summary.requestsPerSecond ?? 0,
    {
      p99Ms: summary.mixP99Ms,
      // 0 is what the scenario reports when it could not read the backends (no Postgres here).
      databaseCpuMs:
        summary.postgresCpuMsPerRequest !== undefined && summary.postgresCpuMsPerRequest > 0
          ? summary.postgresCpuMsPerRequest
          : undefined,
      measuredUnder: under,
    },
  );
}

/** Which file transfer scenario gives which capacity (per MB moved). */
const TRANSFER_CAPACITIES: Readonly<Record<string, { key: string; operation: string }>> = {
  'files-upload': {
    key: 'fileUpload',
    operation:
      'one MB (10^6 bytes) uploaded through the files module in 50 MiB files, local store (streamed, type sniffed, sha256, fsync + rename, recorded under RLS; the bench server also deletes them every second)',
  },
  'files-download': {
    key: 'fileDownload',
    operation:
      'one MB (10^6 bytes) downloaded through a signed URL in 10 MiB files, local store (signature, record under RLS, stream)',
  },
};
interface FanoutSummary {
  readonly summary?: Record<
    string,
    {
      readonly idle?: { connections: number; rssPerConnectionBytes: number; rssBytes: number };
      readonly fanout?: readonly {
        subscribers: number;
        throughput: readonly { deliveriesPerSecond: number; serverCpuMicrosPerDelivery: number }[];
      }[];
    }
  >;
}

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch {
    return undefined;
  }
}

/** A text progress bar for the calibration runs: `[######..] 3/4` (scenario runs done of all). */
export function progressBar(done: number, total: number, width = 20): string {
  const filled = total <= 0 ? width : Math.min(width, Math.round((width * done) / total));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

/** Builds the profile from what one `npm run bench` invocation measured. */
export function buildCalibration(
  results: readonly ScenarioResult[],
  custom: readonly CustomResult[],
  settings: Readonly<Record<string, unknown>>,
  loadAverageAtStart: readonly number[],
  measuredAt: Date,
): CalibrationProfile {
  const capacities: Record<string, CalibratedCapacity> = {};
  const memory: Record<string, { benchmark: string; bytes: number; what: string }> = {};
  for (const result of results) {
    const target = REQUEST_CAPACITIES[result.scenario];
    const cpuMs = result.socle.cpuMillisecondsPerRequest;
    if (target === undefined || cpuMs === undefined || cpuMs <= 0) continue;
    // Postgres wins over PGlite when both ran: it is what a fleet runs.
    if (capacities[target.key] !== undefined && result.dialect !== 'postgres') continue;
    capacities[target.key] = capacity(
      `${result.scenario} (${result.dialect})`,
      target.operation,
      cpuMs,
      result.socle.requestsPerSecond,
      { p99Ms: result.socle.latencyMs.p99, databaseCpuMs: result.socle.databaseCpuMillisecondsPerRequest },
    );
  }
  for (const result of custom) {
    const benchmark = `${result.scenario} (${result.dialect})`;
    if (result.scenario === 'jobs') {
      const socle = (result.figures as JobsFigures).socle;
      if (socle?.cpuMillisecondsPerJob !== undefined && socle.cpuMillisecondsPerJob > 0)
        capacities.job = capacity(
          benchmark,
          'one no-op job enqueued in a batch and processed (worker overhead, not the job’s own work)',
          socle.cpuMillisecondsPerJob,
          socle.processedPerSecond ?? 0,
          // The bench reads the backends' CPU while the jobs are drained (not while they are enqueued).
          { databaseCpuMs: socle.databaseDrainCpuMillisecondsPerJob ?? undefined },
        );
    }
    // The reference apps' scenarios: a figure from Postgres wins over PGlite, as for requests.
    const reference =
      result.scenario === 'strategybuzzer'
        ? {
            key: 'strategybuzzerRoom',
            value: strategybuzzerRoom(benchmark, result.figures as StrategyBuzzerFigures),
          }
        : result.scenario === 'cryptocare'
          ? {
              key: 'cryptocareRequest',
              value: cryptocareRequest(benchmark, result.figures as CryptoCareFigures),
            }
          : undefined;
    if (
      reference?.value !== undefined &&
      (capacities[reference.key] === undefined || result.dialect === 'postgres')
    )
      capacities[reference.key] = reference.value;
    const transfer = TRANSFER_CAPACITIES[result.scenario];
    const figures = (result.figures as TransferFigures).socle;
    if (
      transfer !== undefined &&
      figures?.cpuMillisecondsPerMegabyte !== undefined &&
      figures.cpuMillisecondsPerMegabyte > 0 &&
      (capacities[transfer.key] === undefined || result.dialect === 'postgres')
    )
      capacities[transfer.key] = capacity(
        benchmark,
        transfer.operation,
        figures.cpuMillisecondsPerMegabyte,
        figures.megabytesPerSecond ?? 0,
        { unit: 'MB', databaseCpuMs: figures.databaseCpuMillisecondsPerMegabyte },
      );
    if (result.scenario === 'realtime-fanout') {
      const socle = (result.figures as FanoutSummary).summary?.socle;
      const idle = socle?.idle;
      if (idle !== undefined && idle.connections > 0) {
        memory.realtimeConnection = {
          benchmark,
          bytes: Math.round(idle.rssPerConnectionBytes),
          what: 'server RSS per idle WebSocket connection joined to one channel',
        };
        memory.processBase = {
          benchmark,
          bytes: Math.max(0, Math.round(idle.rssBytes - idle.connections * idle.rssPerConnectionBytes)),
          what: 'server RSS with no connection (RSS at the idle count minus the per-connection share)',
        };
      }
      const largest = socle?.fanout?.at(-1);
      const best = largest?.throughput.reduce<(typeof largest.throughput)[number] | undefined>(
        (found, phase) =>
          found === undefined || phase.deliveriesPerSecond > found.deliveriesPerSecond ? phase : found,
        undefined,
      );
      if (largest !== undefined && best !== undefined && best.serverCpuMicrosPerDelivery > 0)
        capacities.realtimeDelivery = capacity(
          `${benchmark}, ${largest.subscribers} subscribers`,
          'one message delivered to one subscribed WebSocket',
          best.serverCpuMicrosPerDelivery / 1000,
          best.deliveriesPerSecond,
        );
    }
  }
  const cpus = os.cpus();
  return {
    profile: 'socle-calibration/1',
    measuredAt: measuredAt.toISOString(),
    commit: gitCommit(),
    machine: {
      cpuModel: cpus[0]?.model,
      cpus: cpus.length,
      memoryGiB: round(os.totalmem() / 2 ** 30, 3),
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      loadAverageAtStart: loadAverageAtStart.map((value) => round(value, 3)),
    },
    runs: [
      {
        startedAt: measuredAt.toISOString(),
        node: process.version,
        loadAverageAtStart: loadAverageAtStart.map((value) => round(value, 3)),
        ...settings,
        measured: [...Object.keys(capacities), ...Object.keys(memory)],
      },
    ],
    note:
      'CPU per operation of the Socle process, measured by npm run bench on the machine above. ' +
      'A cloud vCPU is one hardware thread: treat operationsPerVcpuSecond as per vCPU. ' +
      'A busy machine (load average above its core count) inflates CPU per operation (a tenant read ' +
      'measured 14× more at load 28 than at load 2) and measuredPerSecond more: calibrate on a quiet ' +
      'machine and plan from CPU per operation.',
    capacities,
    memory,
  };
}

/**
 * Writes the profile. Capacities an earlier run of the same file measured and this run did not
 * (`--scenario` runs one) are kept, each with the date and load of its own run.
 */
export async function writeCalibration(path: string, profile: CalibrationProfile): Promise<void> {
  let previous: CalibrationProfile | undefined;
  try {
    previous = JSON.parse(await readFile(path, 'utf8')) as CalibrationProfile;
    if (previous.profile !== profile.profile) previous = undefined;
  } catch {
    previous = undefined;
  }
  const merged: CalibrationProfile = {
    ...profile,
    capacities: { ...previous?.capacities, ...profile.capacities },
    memory: { ...previous?.memory, ...profile.memory },
    runs: [...(previous?.runs ?? []), ...profile.runs],
  };
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(merged, null, 2)}\n`);
}
