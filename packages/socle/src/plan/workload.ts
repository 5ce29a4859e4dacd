import { parse as parseYaml, YAMLParseError } from 'yaml';
import {
  CURRENCIES,
  type Currency,
  type FieldProblem,
  type Money,
  parseCount,
  parseDuration,
  parseMoney,
  parsePercent,
  parseRate,
  parseSize,
  QuantityError,
  type Range,
} from './quantity.js';

/**
 * A workload file: a product by growth phase, in founders' units. Every quantity carries its unit
 * (`4000/month`, `10 min`, `8-15 MB`); {@link parseWorkload} checks every field and reports every
 * problem with its path, never the first one only.
 */

export interface JobLoad {
  readonly name: string;
  readonly queue: string;
  /** Jobs per second (average). */
  readonly rate: Range;
  /** Seconds each job runs. */
  readonly duration: Range;
  /** Whether the duration is CPU on the worker (true) or mostly waiting on a third party (false). */
  readonly cpuBound: boolean;
}

export interface FileLoad {
  readonly name: string;
  /** Files per second. */
  readonly rate: Range;
  /** GB per file. */
  readonly size: Range;
  /** Seconds kept; undefined: forever. */
  readonly retention: Range | undefined;
  /** Seconds after which a file moves to the store's cold class. */
  readonly coldAfter: Range | undefined;
}

export interface AiLoad {
  readonly model: string;
  /** Audio seconds per second of wall time. */
  readonly audio: Range | undefined;
  /** Calls per second. */
  readonly calls: Range | undefined;
  readonly inputTokensPerCall: Range | undefined;
  readonly outputTokensPerCall: Range | undefined;
  /** The provider's limit on calls, per second. */
  readonly rateLimit: Range | undefined;
}

/** Video meetings hosted on a provider's licensed hosts (Zoom): one host, one meeting at a time. */
export interface MeetingLoad {
  readonly provider: string;
  /** Meetings per second. */
  readonly rate: Range;
  /** Seconds each meeting lasts. */
  readonly duration: Range;
}

/** Voice chat over WebRTC: some concurrent users in a call, some of them relayed by TURN. */
export interface VoiceLoad {
  /** Share of the concurrent users in a voice call. */
  readonly share: Range;
  /** Bytes per second of one participant's audio stream. */
  readonly bitrate: Range;
  /** Share of those participants whose media goes through a TURN relay (no direct path). */
  readonly relayed: Range;
}

/** The reference apps whose benchmarks give a whole app's load a capacity (see `REFERENCE_APPS`). */
export const ROOM_PROFILES = ['strategybuzzer'] as const;
export const REQUEST_PROFILES = ['cryptocare'] as const;
export type RoomProfile = (typeof ROOM_PROFILES)[number];
export type RequestProfile = (typeof REQUEST_PROFILES)[number];

/**
 * Realtime rooms like a reference app's (StrategyBuzzer's game rooms): sized from that app's
 * measured CPU per room-second, not from requests and deliveries.
 */
export interface RoomLoad {
  readonly like: RoomProfile;
  /** Rooms at once at peak, as stated; undefined when derived from the players. */
  readonly concurrent: Range | undefined;
  /** Players per room; with it, rooms at peak = concurrent users × share ÷ players per room. */
  readonly playersPerRoom: Range | undefined;
  /** Share of the concurrent users in a room (default 100 %). */
  readonly share: Range;
}

/** Requests like a reference app's measured mix (CryptoCare's), per daily user. */
export interface RequestMixLoad {
  readonly like: RequestProfile;
  /** Requests of the mix per daily user per second. */
  readonly perUser: Range;
}

export interface PaymentLoad {
  readonly provider: string;
  /** Payments per second. */
  readonly rate: Range;
  readonly average: Money;
  readonly method: 'card' | 'bitcoin-onchain' | 'lightning';
  /** Seconds the product promises between paying and confirmation. */
  readonly confirmationTarget: Range | undefined;
}

/** One row of a seed's cost table; with `provider` and `instances`, its price is checked too. */
export interface SeedRow {
  readonly item: string;
  readonly cost: Money;
  readonly provider?: string;
  readonly instances?: { readonly count: Range; readonly type: string };
}

/** What the seed document said for this phase, to check and to show beside Socle's plan. */
export interface SeedTable {
  readonly title: string;
  readonly rows: readonly SeedRow[];
  readonly total: Money;
}

export type ClaimMetric =
  | 'aiAudioHoursPerMonth'
  | 'storageAddedPerMonthGB'
  | 'storageAfterPhaseGB'
  | 'jobsPerDay'
  | 'downtimeHoursPerYear'
  | 'costPerUserPerMonth';

export interface Claim {
  readonly text: string;
  readonly metric: ClaimMetric;
  /** The stated figure, in the metric's unit (see CLAIM_UNITS). */
  readonly stated: Range;
  /** For costPerUserPerMonth: the cost and the users it is divided by. */
  readonly cost?: Money;
  readonly users?: Range;
}

export const CLAIM_UNITS: Readonly<Record<ClaimMetric, string>> = {
  aiAudioHoursPerMonth: 'h/month',
  storageAddedPerMonthGB: 'GB/month',
  storageAfterPhaseGB: 'GB',
  jobsPerDay: 'jobs/day',
  downtimeHoursPerYear: 'h/year',
  costPerUserPerMonth: 'per user per month (in the cost currency)',
};

export interface Phase {
  readonly name: string;
  /** Seconds the phase lasts. */
  readonly duration: Range;
  readonly users: {
    readonly daily: Range | undefined;
    readonly concurrent: Range | undefined;
    /** Concurrent users as a fraction of daily users (peak). */
    readonly concurrentShare: Range | undefined;
  };
  /** Peak-hour load over the day's average load. */
  readonly peakFactor: Range;
  /** Requests per user per second, by kind. */
  readonly requests: { readonly read: Range; readonly write: Range; readonly signIn: Range };
  readonly realtime:
    | { readonly connectionsPerConcurrentUser: Range; readonly messagesPerConnection: Range }
    | undefined;
  /** Realtime rooms like a reference app's, on top of the requests and deliveries above. */
  readonly rooms: RoomLoad | undefined;
  /** Requests like a reference app's measured mix, on top of `requests`. */
  readonly requestMix: RequestMixLoad | undefined;
  readonly voice: VoiceLoad | undefined;
  readonly meetings: readonly MeetingLoad[];
  /** Share of the egress served from a CDN's cache (the rest leaves the origin). */
  readonly cdnShare: Range | undefined;
  readonly jobs: readonly JobLoad[];
  /** Queues some worker consumes; undefined: every queue is consumed. */
  readonly workerQueues: readonly string[] | undefined;
  readonly files: readonly FileLoad[];
  /** GB per second served to clients (pages, downloads). */
  readonly egress: Range;
  readonly database: {
    readonly size: Range;
    readonly growth: Range;
    readonly replicas: number | undefined;
    /** Shards the workload's document plans (checked against the shards needed). */
    readonly shards: number | undefined;
  };
  readonly ai: readonly AiLoad[];
  readonly payments: readonly PaymentLoad[];
  readonly availability: Range | undefined;
  readonly rpo: Range | undefined;
  readonly rto: Range | undefined;
  readonly regions: number;
  readonly seedTables: readonly SeedTable[];
  readonly claims: readonly Claim[];
}

export interface Workload {
  readonly name: string;
  readonly source: string | undefined;
  readonly currency: Currency;
  /** Explicit conversion rates: 1 unit of the key currency in the report currency. */
  readonly rates: Readonly<Partial<Record<Currency, number>>>;
  readonly targets: {
    /** CPU utilization a node is planned at (the rest is headroom). */
    readonly cpuUtilization: number;
    readonly memoryUtilization: number;
    /** vCPU and RAM of one API or worker node. */
    readonly nodeVcpu: number;
    readonly nodeRamGiB: number;
    /** Jobs one worker process runs at once. */
    readonly workerConcurrency: number;
    /** Database server size: Postgres CPU is not calibrated yet, so the workload states it. */
    readonly databaseVcpu: number;
    readonly databaseRamGiB: number;
    /** Disk writes (IOPS) one committed write costs: heap page, index page, WAL flush. */
    readonly databaseIopsPerWrite: number;
    /** Share of reads that miss Postgres's cache and read the disk once. */
    readonly databaseReadMissShare: number;
    /** IOPS, GB and connections one Postgres server is planned to hold; beyond, shards. */
    readonly databaseMaxIops: number;
    readonly databaseMaxStorageGB: number;
    readonly databaseMaxConnections: number;
  };
  readonly phases: readonly Phase[];
}

export class WorkloadError extends Error {
  constructor(readonly problems: readonly FieldProblem[]) {
    super(
      `Invalid workload:\n${problems.map((problem) => `  ${problem.path}: ${problem.message}`).join('\n')}`,
    );
  }
}

type Raw = Record<string, unknown>;
const isObject = (value: unknown): value is Raw =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads fields of one object, collecting problems instead of throwing at the first. */
class Reader {
  constructor(
    private readonly problems: FieldProblem[],
    private readonly path: string,
    private readonly raw: Raw,
    allowed: readonly string[],
  ) {
    for (const key of Object.keys(raw))
      if (!allowed.includes(key))
        problems.push({ path: this.at(key), message: `unknown field (known: ${allowed.join(', ')})` });
  }

  at(key: string): string {
    return this.path === '' ? key : `${this.path}.${key}`;
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  /** The field parsed by `parse`, or undefined (and a problem when required or invalid). */
  field<T>(key: string, parse: (raw: unknown) => T, required: boolean): T | undefined {
    const raw = this.raw[key];
    if (raw === undefined || raw === null) {
      if (required) this.problems.push({ path: this.at(key), message: 'required' });
      return undefined;
    }
    try {
      return parse(raw);
    } catch (error) {
      if (!(error instanceof QuantityError)) throw error;
      this.problems.push({ path: this.at(key), message: error.message });
      return undefined;
    }
  }

  string(key: string, required: boolean): string | undefined {
    return this.field(
      key,
      (raw) => {
        if (typeof raw !== 'string' || raw.trim() === '') throw new QuantityError('expected text');
        return raw;
      },
      required,
    );
  }

  object(key: string, required: boolean): Raw | undefined {
    return this.field(
      key,
      (raw) => {
        if (!isObject(raw)) throw new QuantityError('expected a mapping (key: value lines)');
        return raw;
      },
      required,
    );
  }

  list(key: string): Raw[] {
    const raw = this.raw[key];
    if (raw === undefined || raw === null) return [];
    if (!Array.isArray(raw) || !raw.every(isObject)) {
      this.problems.push({ path: this.at(key), message: 'expected a list of mappings' });
      return [];
    }
    return raw;
  }

  child(key: string, raw: Raw, allowed: readonly string[]): Reader {
    return new Reader(this.problems, this.at(key), raw, allowed);
  }
}

const ZERO: Range = { lo: 0, hi: 0 };

function oneOf<T extends string>(values: readonly T[]) {
  return (raw: unknown): T => {
    if (typeof raw !== 'string' || !values.includes(raw as T))
      throw new QuantityError(`expected one of ${values.join(', ')}, got ${JSON.stringify(raw)}`);
    return raw as T;
  };
}

const positiveNumber = (raw: unknown): number => {
  if (typeof raw !== 'number' || !Number.isFinite(raw) || raw <= 0)
    throw new QuantityError(`expected a positive number, got ${JSON.stringify(raw)}`);
  return raw;
};
const wholeNumber = (raw: unknown): number => {
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 0)
    throw new QuantityError(`expected a whole number, got ${JSON.stringify(raw)}`);
  return raw;
};
const cpuOrRam =
  (unit: 'vCPU' | 'GiB') =>
  (raw: unknown): number => {
    const match =
      typeof raw === 'string' ? new RegExp(`^\\s*(\\d+(?:\\.\\d+)?)\\s*${unit}\\s*$`).exec(raw) : null;
    if (match === null)
      throw new QuantityError(`expected a figure in ${unit} like "2 ${unit}", got ${JSON.stringify(raw)}`);
    return Number(match[1]);
  };
const fraction = (raw: unknown): number => {
  const range = parsePercent(raw);
  if (range.lo !== range.hi || range.lo <= 0)
    throw new QuantityError('expected one percentage above 0, like "60 %"');
  return range.lo;
};

function parsePhase(problems: FieldProblem[], path: string, raw: Raw): Phase {
  const phase = new Reader(problems, path, raw, [
    'name',
    'duration',
    'users',
    'peakFactor',
    'requestsPerUser',
    'realtime',
    'rooms',
    'requestMix',
    'voice',
    'meetings',
    'cdn',
    'jobs',
    'workerQueues',
    'files',
    'egress',
    'database',
    'ai',
    'payments',
    'availability',
    'rpo',
    'rto',
    'regions',
    'seed',
  ]);
  const usersRaw = phase.object('users', true) ?? {};
  const users = phase.child('users', usersRaw, ['daily', 'concurrent', 'concurrentShareOfDaily']);
  const daily = users.field('daily', parseCount, false);
  const concurrent = users.field('concurrent', parseCount, false);
  const concurrentShare = users.field('concurrentShareOfDaily', parsePercent, false);
  if (daily === undefined && concurrent === undefined && phase.has('users'))
    problems.push({ path: users.at('daily'), message: 'give daily or concurrent users (or both)' });
  if (daily !== undefined && concurrent !== undefined && concurrentShare === undefined)
    problems.push({
      path: users.at('concurrentShareOfDaily'),
      message:
        'required when both daily and concurrent users are given (e.g. "10 %"): the planner checks they agree',
    });
  const requestsRaw = phase.object('requestsPerUser', false) ?? {};
  const requests = phase.child('requestsPerUser', requestsRaw, ['read', 'write', 'signIn']);
  const realtimeRaw = phase.object('realtime', false);
  const realtime =
    realtimeRaw === undefined
      ? undefined
      : (() => {
          const reader = phase.child('realtime', realtimeRaw, [
            'connectionsPerConcurrentUser',
            'messagesPerConnection',
          ]);
          return {
            connectionsPerConcurrentUser:
              reader.field('connectionsPerConcurrentUser', parseCount, true) ?? ZERO,
            messagesPerConnection:
              reader.field('messagesPerConnection', (value) => parseRate(value), true) ?? ZERO,
          };
        })();
  const roomsRaw = phase.object('rooms', false);
  const rooms =
    roomsRaw === undefined
      ? undefined
      : (() => {
          const reader = phase.child('rooms', roomsRaw, [
            'like',
            'concurrent',
            'playersPerRoom',
            'shareOfConcurrentUsers',
          ]);
          const like = reader.field('like', oneOf(ROOM_PROFILES), true) ?? 'strategybuzzer';
          const count = reader.field('concurrent', parseCount, false);
          const players = reader.field('playersPerRoom', parseCount, false);
          const share = reader.field('shareOfConcurrentUsers', parsePercent, false);
          if (!reader.has('concurrent') && !reader.has('playersPerRoom'))
            problems.push({
              path: reader.at('concurrent'),
              message:
                'give the rooms at once at peak (concurrent, e.g. 200) or playersPerRoom (e.g. 8: rooms = concurrent users ÷ players per room)',
            });
          if (reader.has('concurrent') && reader.has('playersPerRoom'))
            problems.push({
              path: reader.at('playersPerRoom'),
              message: 'give concurrent rooms or playersPerRoom, not both',
            });
          if (reader.has('shareOfConcurrentUsers') && !reader.has('playersPerRoom'))
            problems.push({
              path: reader.at('shareOfConcurrentUsers'),
              message: 'only with playersPerRoom (the share of concurrent users in a room)',
            });
          if (players !== undefined && players.lo <= 0)
            problems.push({ path: reader.at('playersPerRoom'), message: 'expected at least 1 player' });
          if (
            reader.has('playersPerRoom') &&
            usersRaw.concurrent === undefined &&
            usersRaw.concurrentShareOfDaily === undefined
          )
            problems.push({
              path: reader.at('playersPerRoom'),
              message:
                'rooms from players need concurrent users: give users.concurrent or users.concurrentShareOfDaily',
            });
          return { like, concurrent: count, playersPerRoom: players, share: share ?? { lo: 1, hi: 1 } };
        })();
  const mixRaw = phase.object('requestMix', false);
  const requestMix =
    mixRaw === undefined
      ? undefined
      : (() => {
          const reader = phase.child('requestMix', mixRaw, ['like', 'perUser']);
          return {
            like: reader.field('like', oneOf(REQUEST_PROFILES), true) ?? 'cryptocare',
            perUser: reader.field('perUser', (value) => parseRate(value), true) ?? ZERO,
          };
        })();
  const voiceRaw = phase.object('voice', false);
  const voice =
    voiceRaw === undefined
      ? undefined
      : (() => {
          const reader = phase.child('voice', voiceRaw, ['share', 'bitrate', 'relayed']);
          return {
            share: reader.field('share', parsePercent, true) ?? ZERO,
            bitrate: reader.field('bitrate', parseBitrate, true) ?? ZERO,
            relayed: reader.field('relayed', parsePercent, true) ?? ZERO,
          };
        })();
  const meetings = phase.list('meetings').map((entry, index) => {
    const reader = phase.child(`meetings[${index}]`, entry, ['provider', 'count', 'duration']);
    return {
      provider: reader.string('provider', true) ?? '',
      rate: reader.field('count', (value) => parseRate(value), true) ?? ZERO,
      duration: reader.field('duration', parseDuration, true) ?? ZERO,
    };
  });
  const cdnRaw = phase.object('cdn', false);
  const cdnShare =
    cdnRaw === undefined
      ? undefined
      : (phase.child('cdn', cdnRaw, ['share']).field('share', parsePercent, true) ?? ZERO);
  const jobs = phase.list('jobs').map((job, index) => {
    const reader = phase.child(`jobs[${index}]`, job, ['name', 'queue', 'count', 'duration', 'cpuBound']);
    const name = reader.string('name', true) ?? `job ${index}`;
    return {
      name,
      queue: reader.string('queue', false) ?? 'default',
      rate: reader.field('count', (value) => parseRate(value), true) ?? ZERO,
      duration: reader.field('duration', parseDuration, true) ?? ZERO,
      cpuBound:
        reader.field(
          'cpuBound',
          (value) => {
            if (typeof value !== 'boolean') throw new QuantityError('expected true or false');
            return value;
          },
          true,
        ) ?? false,
    };
  });
  const workerQueues = phase.field(
    'workerQueues',
    (value) => {
      if (!Array.isArray(value) || !value.every((item) => typeof item === 'string'))
        throw new QuantityError('expected a list of queue names');
      return value as string[];
    },
    false,
  );
  const files = phase.list('files').map((file, index) => {
    const reader = phase.child(`files[${index}]`, file, ['name', 'count', 'size', 'retention', 'coldAfter']);
    return {
      name: reader.string('name', true) ?? `files ${index}`,
      rate: reader.field('count', (value) => parseRate(value), true) ?? ZERO,
      size: reader.field('size', parseSize, true) ?? ZERO,
      retention: reader.field('retention', parseDuration, false),
      coldAfter: reader.field('coldAfter', parseDuration, false),
    };
  });
  const databaseRaw = phase.object('database', false) ?? {};
  const database = phase.child('database', databaseRaw, ['size', 'growth', 'replicas', 'shards']);
  const ai = phase.list('ai').map((entry, index) => {
    const reader = phase.child(`ai[${index}]`, entry, [
      'model',
      'audio',
      'calls',
      'inputTokensPerCall',
      'outputTokensPerCall',
      'rateLimit',
    ]);
    const model = reader.string('model', true) ?? '';
    const audio = reader.field('audio', (value) => parseRateOfDuration(value), false);
    const calls = reader.field('calls', (value) => parseRate(value), false);
    if (audio === undefined && calls === undefined)
      problems.push({
        path: reader.at('audio'),
        message: 'give audio (e.g. "40000 min/month") or calls (e.g. "4000/month")',
      });
    return {
      model,
      audio,
      calls,
      inputTokensPerCall: reader.field('inputTokensPerCall', parseCount, false),
      outputTokensPerCall: reader.field('outputTokensPerCall', parseCount, false),
      rateLimit: reader.field('rateLimit', (value) => parseRate(value), false),
    };
  });
  const payments = phase.list('payments').map((entry, index) => {
    const reader = phase.child(`payments[${index}]`, entry, [
      'provider',
      'count',
      'average',
      'method',
      'confirmationTarget',
    ]);
    return {
      provider: reader.string('provider', true) ?? '',
      rate: reader.field('count', (value) => parseRate(value), true) ?? ZERO,
      average: reader.field('average', (value) => parseMoney(value), true) ?? {
        ...ZERO,
        currency: 'USD' as const,
      },
      method:
        reader.field('method', oneOf(['card', 'bitcoin-onchain', 'lightning'] as const), true) ?? 'card',
      confirmationTarget: reader.field('confirmationTarget', parseDuration, false),
    };
  });
  const seedRaw = phase.object('seed', false) ?? {};
  const seed = phase.child('seed', seedRaw, ['tables', 'claims']);
  const seedTables = seed.list('tables').map((table, index) => {
    const reader = seed.child(`tables[${index}]`, table, ['title', 'rows', 'total']);
    const rows = reader.list('rows').map((row, rowIndex) => {
      const rowReader = reader.child(`rows[${rowIndex}]`, row, ['item', 'cost', 'provider', 'instances']);
      const provider = rowReader.string('provider', false);
      const instances = rowReader.field('instances', parseInstances, false);
      if ((provider === undefined) !== (instances === undefined))
        problems.push({
          path: rowReader.at('instances'),
          message:
            'give provider and instances together (e.g. provider: gcp, instances: "2 × e2-standard-4")',
        });
      return {
        item: rowReader.string('item', true) ?? '',
        cost: rowReader.field('cost', (value) => parseMoney(value, 'month'), true) ?? {
          ...ZERO,
          currency: 'USD' as const,
        },
        ...(provider === undefined ? {} : { provider }),
        ...(instances === undefined ? {} : { instances }),
      };
    });
    return {
      title: reader.string('title', true) ?? '',
      rows,
      total: reader.field('total', (value) => parseMoney(value, 'month'), true) ?? {
        ...ZERO,
        currency: 'USD' as const,
      },
    };
  });
  const claims = seed.list('claims').map((claim, index) => {
    const reader = seed.child(`claims[${index}]`, claim, ['text', 'metric', 'stated', 'cost', 'users']);
    const metric =
      reader.field('metric', oneOf(Object.keys(CLAIM_UNITS_LIST) as ClaimMetric[]), true) ?? 'jobsPerDay';
    const cost =
      metric === 'costPerUserPerMonth'
        ? reader.field('cost', (value) => parseMoney(value, 'month'), true)
        : undefined;
    return {
      text: reader.string('text', true) ?? '',
      metric,
      stated: reader.field('stated', parseCount, true) ?? ZERO,
      ...(cost === undefined ? {} : { cost }),
      ...(metric === 'costPerUserPerMonth' ? { users: reader.field('users', parseCount, true) ?? ZERO } : {}),
    };
  });
  return {
    name: phase.string('name', true) ?? path,
    duration: phase.field('duration', parseDuration, true) ?? ZERO,
    users: { daily, concurrent, concurrentShare },
    peakFactor: phase.field('peakFactor', parseCount, true) ?? { lo: 1, hi: 1 },
    requests: {
      read: requests.field('read', (value) => parseRate(value), false) ?? ZERO,
      write: requests.field('write', (value) => parseRate(value), false) ?? ZERO,
      signIn: requests.field('signIn', (value) => parseRate(value), false) ?? ZERO,
    },
    realtime,
    rooms,
    requestMix,
    voice,
    meetings,
    cdnShare,
    jobs,
    workerQueues,
    files,
    egress: phase.field('egress', (value) => parseRate(value, { size: true }), false) ?? ZERO,
    database: {
      size: database.field('size', parseSize, false) ?? ZERO,
      growth: database.field('growth', (value) => parseRate(value, { size: true }), false) ?? ZERO,
      replicas: database.field('replicas', wholeNumber, false),
      shards: database.field('shards', wholeNumber, false),
    },
    ai,
    payments,
    availability: phase.field('availability', parsePercent, false),
    rpo: phase.field('rpo', parseDuration, false),
    rto: phase.field('rto', parseDuration, false),
    regions: phase.field('regions', wholeNumber, false) ?? 1,
    seedTables,
    claims,
  };
}

const CLAIM_UNITS_LIST = CLAIM_UNITS;

/** `2 × e2-standard-4` (or `2 x …`, or `1-3 × …`). */
function parseInstances(raw: unknown): { count: Range; type: string } {
  const match =
    typeof raw === 'string' ? /^\s*([\d.]+(?:\s*[-–]\s*[\d.]+)?)\s*[×x*]\s*(\S+)\s*$/.exec(raw) : null;
  if (match === null)
    throw new QuantityError(
      `expected a count and an instance type like "2 × e2-standard-4", got ${JSON.stringify(raw)}`,
    );
  return { count: parseCount(match[1]), type: match[2] ?? '' };
}

/** A media bitrate: `32 kbit/s`, `1.5 Mbit/s` → bytes per second (decimal units). */
export function parseBitrate(raw: unknown): Range {
  const match =
    typeof raw === 'string'
      ? /^\s*(\d+(?:\.\d+)?)(?:\s*[-–]\s*(\d+(?:\.\d+)?))?\s*(kbit|Mbit|kbps|Mbps)\/?s?\s*$/i.exec(raw)
      : null;
  if (match === null)
    throw new QuantityError(
      `expected a bitrate like "32 kbit/s" or "1.5 Mbit/s", got ${JSON.stringify(raw)}`,
    );
  const unit = (match[3] ?? '').toLowerCase().startsWith('m') ? 1e6 : 1e3;
  const lo = Number(match[1]);
  const hi = match[2] === undefined ? lo : Number(match[2]);
  if (hi < lo) throw new QuantityError(`the range ${JSON.stringify(raw)} goes down`);
  return { lo: (lo * unit) / 8, hi: (hi * unit) / 8 };
}

/** Audio per period: `40000 min/month` → audio seconds per second. */
function parseRateOfDuration(raw: unknown): Range {
  const expected = 'audio per period like "40000 min/month"';
  if (typeof raw !== 'string' || !raw.includes('/'))
    throw new QuantityError(`expected ${expected}, got ${JSON.stringify(raw)}`);
  const slash = raw.lastIndexOf('/');
  const amount = parseDuration(raw.slice(0, slash));
  const period = parseDuration(`1 ${raw.slice(slash + 1).trim()}`);
  return { lo: amount.lo / period.lo, hi: amount.hi / period.lo };
}

/** Parses and checks a workload file's text. Throws {@link WorkloadError} naming every problem. */
export function parseWorkload(text: string): Workload {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    if (error instanceof YAMLParseError)
      throw new WorkloadError([{ path: '(file)', message: error.message }]);
    throw error;
  }
  const problems: FieldProblem[] = [];
  if (!isObject(document))
    throw new WorkloadError([{ path: '(file)', message: 'expected a mapping at the top' }]);
  const top = new Reader(problems, '', document, [
    'name',
    'source',
    'currency',
    'rates',
    'targets',
    'phases',
  ]);
  const currency = top.field('currency', oneOf(CURRENCIES), true) ?? 'USD';
  const ratesRaw = top.object('rates', false) ?? {};
  const rates: Partial<Record<Currency, number>> = {};
  const ratesReader = top.child('rates', ratesRaw, CURRENCIES);
  for (const key of Object.keys(ratesRaw)) {
    const rate = ratesReader.field(key, (value) => parseMoney(value), true);
    if (rate === undefined) continue;
    if (rate.currency !== currency || rate.lo !== rate.hi)
      problems.push({
        path: ratesReader.at(key),
        message: `expected one amount in ${currency}, e.g. "0.92 ${currency}"`,
      });
    else rates[key as Currency] = rate.lo;
  }
  const targetsRaw = top.object('targets', false) ?? {};
  const targets = top.child('targets', targetsRaw, [
    'cpuUtilization',
    'memoryUtilization',
    'nodeVcpu',
    'nodeRam',
    'workerConcurrency',
    'databaseVcpu',
    'databaseRam',
    'databaseIopsPerWrite',
    'databaseReadMissShare',
    'databaseMaxIops',
    'databaseMaxStorage',
    'databaseMaxConnections',
  ]);
  const phasesRaw = top.list('phases');
  if (phasesRaw.length === 0 && !problems.some((problem) => problem.path === 'phases'))
    problems.push({ path: 'phases', message: 'required: a list of at least one phase' });
  const workload: Workload = {
    name: top.string('name', true) ?? '',
    source: top.string('source', false),
    currency,
    rates,
    targets: {
      cpuUtilization: targets.field('cpuUtilization', fraction, false) ?? 0.6,
      memoryUtilization: targets.field('memoryUtilization', fraction, false) ?? 0.7,
      nodeVcpu: targets.field('nodeVcpu', cpuOrRam('vCPU'), false) ?? 2,
      nodeRamGiB: targets.field('nodeRam', cpuOrRam('GiB'), false) ?? 4,
      workerConcurrency: targets.field('workerConcurrency', positiveNumber, false) ?? 10,
      databaseVcpu: targets.field('databaseVcpu', cpuOrRam('vCPU'), false) ?? 2,
      databaseRamGiB: targets.field('databaseRam', cpuOrRam('GiB'), false) ?? 8,
      databaseIopsPerWrite: targets.field('databaseIopsPerWrite', positiveNumber, false) ?? 3,
      databaseReadMissShare: targets.field('databaseReadMissShare', fraction, false) ?? 0.05,
      databaseMaxIops: targets.field('databaseMaxIops', positiveNumber, false) ?? 3000,
      databaseMaxStorageGB:
        targets.field(
          'databaseMaxStorage',
          (value) => {
            const size = parseSize(value);
            if (size.lo !== size.hi || size.lo <= 0)
              throw new QuantityError('expected one size above 0, like "2 TB"');
            return size.lo;
          },
          false,
        ) ?? 2000,
      databaseMaxConnections: targets.field('databaseMaxConnections', positiveNumber, false) ?? 100,
    },
    phases: phasesRaw.map((phase, index) => parsePhase(problems, `phases[${index}]`, phase)),
  };
  if (problems.length > 0) throw new WorkloadError(problems);
  return workload;
}
