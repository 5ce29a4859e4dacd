import { readFileSync } from 'node:fs';
import type { Currency } from './quantity.js';

/**
 * The data `socle plan` reads: the price table and the calibration profile shipped in
 * `plan-data/` (the profile is written by `npm run bench -- --calibrate`; a user passes their own,
 * written by `socle bench --calibrate`, with `--calibration`). Checked on load: a hand-edited file that lost a field fails here, by name.
 */

/**
 * How far a price entry was checked: `official` (read on the provider's own page, docs or API),
 * `secondary` (a third-party page quoting it, with its date) or `unverified` (not found: the
 * figure is the author's). Every entry says when (`checkedAt`) and where (`checkedFrom`).
 */
export const CHECK_STATUSES = ['official', 'secondary', 'unverified'] as const;
export type CheckStatus = (typeof CHECK_STATUSES)[number];

export interface PriceCheck {
  readonly checkedAt: string;
  readonly checkedFrom: readonly string[];
  readonly status: CheckStatus;
  readonly checkNote?: string;
}

export interface Instance {
  readonly type: string;
  readonly vcpu: number;
  readonly ramGiB: number;
  readonly hourly?: number;
  readonly monthly?: number;
  /** Not found when the entry was checked, though other figures of the entry were. */
  readonly unverified?: boolean;
}

export interface ComputeProvider extends PriceCheck {
  readonly name: string;
  readonly currency: Currency;
  readonly recordedOn: string;
  readonly source: string;
  readonly instances: readonly Instance[];
  readonly blockStorageGBMonth: number;
  readonly loadBalancerMonthly: number;
  readonly egressGB: number;
}

export interface ObjectStore extends PriceCheck {
  readonly name: string;
  readonly currency: Currency;
  readonly storageGBMonth: number;
  readonly coldGBMonth?: number;
  readonly coldClass?: string;
  readonly egressGB: number;
  readonly baseMonthly?: number;
  readonly includedGB?: number;
  readonly includedEgressGB?: number;
  readonly freeEgressTimesStorage?: number;
  readonly source: string;
  readonly recordedOn: string;
}

/** A service billed per GB sent (a CDN, a TURN relay), with a free allowance per month. */
export interface PerGbService extends PriceCheck {
  readonly name: string;
  readonly currency: Currency;
  readonly perGB: number;
  readonly freeGB?: number;
  readonly baseMonthly?: number;
  readonly source: string;
  readonly recordedOn: string;
}

export interface MeetingService extends PriceCheck {
  readonly name: string;
  readonly currency: Currency;
  /** A licensed host a month (annual billing); one host runs one meeting at a time. */
  readonly perHostMonthly: number;
  readonly source: string;
  readonly recordedOn: string;
}

/** A platform priced by plan (Vercel, Supabase): a seed row naming it is checked against it. */
export interface Platform extends PriceCheck {
  readonly name: string;
  readonly currency: Currency;
  /** Monthly price of each plan, per `unit`. */
  readonly plans: Readonly<Record<string, number>>;
  readonly unit: string;
  readonly source: string;
  readonly recordedOn: string;
}

export interface PriceTable {
  readonly table: 'socle-prices/1';
  readonly recordedOn: string;
  readonly checkedOn?: string;
  readonly note: string;
  readonly compute: Readonly<Record<string, ComputeProvider>>;
  readonly objectStorage: Readonly<Record<string, ObjectStore>>;
  readonly cdn: Readonly<Record<string, PerGbService>>;
  readonly turn: Readonly<Record<string, PerGbService>>;
  readonly meetings: Readonly<Record<string, MeetingService>>;
  readonly platforms: Readonly<Record<string, Platform>>;
  readonly ai: Readonly<
    Record<
      string,
      PriceCheck & {
        readonly currency: Currency;
        readonly perAudioMinute?: number;
        readonly perMillionInputTokens?: number;
        readonly perMillionOutputTokens?: number;
        readonly source: string;
        readonly recordedOn: string;
      }
    >
  >;
  readonly payments: Readonly<
    Record<
      string,
      PriceCheck & {
        readonly currency: Currency;
        readonly percent: number;
        readonly fixed: number;
        readonly source: string;
      }
    >
  >;
  readonly facts: Readonly<Record<string, { readonly value: number; readonly source: string }>>;
}

/**
 * One measured capacity of a calibration profile: Socle's CPU per operation (per MB for a
 * transfer: `unit: 'MB'`) and, where the calibration could read them, the Postgres backends' CPU
 * per operation. `socle bench --calibrate` and `npm run bench -- --calibrate` both write it.
 */
export interface Capacity {
  readonly benchmark: string;
  readonly operation: string;
  /**
   * What one operation is when it is not a request or a job: `MB` for file transfers (10^6
   * bytes), `room-second` for one second of one realtime room (StrategyBuzzer's rooms: then
   * `operationsPerVcpuSecond` is the rooms one fully busy vCPU holds).
   */
  readonly unit?: CapacityUnit;
  readonly cpuMsPerOperation: number;
  readonly operationsPerVcpuSecond: number;
  readonly measuredPerSecond: number;
  /** CPU milliseconds of the Postgres backends per operation (measured only with Postgres on the same machine). */
  readonly databaseCpuMsPerOperation?: number;
  readonly p99Ms?: number;
  readonly measuredAt?: string;
  readonly loadAverage?: number;
  /**
   * The load the figure was measured under, for figures that hold only at that load (a reference
   * app's scenario): `playersPerRoom`, `buzzesPerRoomSecond`, `writeShare`, … (numbers only).
   */
  readonly measuredUnder?: Readonly<Record<string, number>>;
}

export const CAPACITY_UNITS = ['MB', 'room-second'] as const;
export type CapacityUnit = (typeof CAPACITY_UNITS)[number];

export interface CalibrationProfile {
  readonly profile: 'socle-calibration/1';
  readonly measuredAt: string;
  readonly commit?: string;
  readonly machine: {
    readonly cpuModel?: string;
    readonly cpus: number;
    readonly loadAverageAtStart?: readonly number[];
  };
  readonly note: string;
  readonly capacities: Readonly<Record<string, Capacity>>;
  readonly memory: Readonly<
    Record<string, { readonly benchmark: string; readonly bytes: number; readonly what: string }>
  >;
}

/** The capacities the planner needs: a profile missing one cannot plan. */
export const REQUIRED_CAPACITIES = ['tenantRead', 'signIn', 'job'] as const;

export class PlanDataError extends Error {}

const dataUrl = (file: string) => new URL(`../../plan-data/${file}`, import.meta.url);

function readJson(path: string | URL, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new PlanDataError(`cannot read the ${what} ${String(path)}: ${(error as Error).message}`);
  }
}

export function loadPrices(path: string | URL = dataUrl('prices.json')): PriceTable {
  const table = readJson(path, 'price table') as PriceTable;
  if (table?.table !== 'socle-prices/1' || typeof table.compute !== 'object')
    throw new PlanDataError(`${String(path)} is not a socle-prices/1 table`);
  for (const [key, provider] of Object.entries(table.compute))
    if (
      !Array.isArray(provider.instances) ||
      typeof provider.source !== 'string' ||
      typeof provider.recordedOn !== 'string'
    )
      throw new PlanDataError(`${String(path)}: compute.${key} needs instances, source and recordedOn`);
  const problems: string[] = [];
  for (const group of PRICE_GROUPS) {
    const entries = table[group];
    if (typeof entries !== 'object' || entries === null) {
      problems.push(`${group}: missing`);
      continue;
    }
    for (const [key, entry] of Object.entries(entries as Record<string, Partial<PriceCheck>>)) {
      const problem = checkProblem(entry);
      if (problem !== undefined) problems.push(`${group}.${key}: ${problem}`);
    }
  }
  if (problems.length > 0)
    throw new PlanDataError(
      `${String(path)}: every price entry says when and where it was checked:\n  ${problems.join('\n  ')}`,
    );
  return table;
}

/** The groups of the price table whose entries are prices (and so carry their check). */
export const PRICE_GROUPS = [
  'compute',
  'objectStorage',
  'cdn',
  'turn',
  'meetings',
  'platforms',
  'ai',
  'payments',
] as const;

function checkProblem(entry: Partial<PriceCheck>): string | undefined {
  if (typeof entry.checkedAt !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(entry.checkedAt))
    return 'checkedAt must be a date (YYYY-MM-DD)';
  if (!Array.isArray(entry.checkedFrom) || !entry.checkedFrom.every((item) => typeof item === 'string'))
    return 'checkedFrom must list the pages read (empty when none was found)';
  if (!CHECK_STATUSES.includes(entry.status as CheckStatus))
    return `status must be one of ${CHECK_STATUSES.join(', ')}`;
  if (entry.status !== 'unverified' && entry.checkedFrom.length === 0)
    return `status ${entry.status} needs the page it was read on in checkedFrom`;
  return undefined;
}

/** Whether a figure of this entry was not found when checked (the entry's, or the instance's). */
export const isUnverified = (entry: PriceCheck, instance?: Instance): boolean =>
  entry.status === 'unverified' || instance?.unverified === true;

export function loadCalibration(path: string | URL = dataUrl('calibration.json')): CalibrationProfile {
  const profile = readJson(path, 'calibration profile') as CalibrationProfile;
  if (profile?.profile !== 'socle-calibration/1')
    throw new PlanDataError(
      `${String(path)} is not a socle-calibration/1 profile (write one with socle bench --calibrate)`,
    );
  const missing = REQUIRED_CAPACITIES.filter(
    (key) =>
      !(
        typeof profile.capacities?.[key]?.cpuMsPerOperation === 'number' &&
        profile.capacities[key].cpuMsPerOperation > 0
      ),
  );
  if (missing.length > 0)
    throw new PlanDataError(
      `${String(path)} lacks the capacities ${missing.join(', ')}: write one with socle bench --calibrate (or, in Socle's repository, npm run bench -- --calibrate with the tenant-select, sign-in and jobs scenarios)`,
    );
  const problems = calibrationProblems(profile);
  if (problems.length > 0)
    throw new PlanDataError(
      `${String(path)} is not a valid calibration profile:\n  ${problems.join('\n  ')}`,
    );
  return profile;
}

/** The fields a capacity may have, and whether `strict` requires them. */
const CAPACITY_FIELDS: Readonly<Record<string, { type: 'string' | 'number' | 'object'; required: boolean }>> =
  {
    benchmark: { type: 'string', required: true },
    operation: { type: 'string', required: true },
    unit: { type: 'string', required: false },
    cpuMsPerOperation: { type: 'number', required: true },
    operationsPerVcpuSecond: { type: 'number', required: true },
    measuredPerSecond: { type: 'number', required: true },
    databaseCpuMsPerOperation: { type: 'number', required: false },
    p99Ms: { type: 'number', required: false },
    measuredAt: { type: 'string', required: true },
    loadAverage: { type: 'number', required: true },
    measuredUnder: { type: 'object', required: false },
  };

/**
 * What is wrong with a calibration profile's capacities and memory figures, each named by its
 * path. The planner reads profiles from two writers (`socle bench --calibrate` and the
 * repository's `npm run bench -- --calibrate`); this is the one schema both must meet. `strict`
 * (what a profile written today meets) also requires when and at what load each figure was
 * measured, and refuses fields the planner does not know; without it, older profiles that lack
 * those pass.
 */
export function calibrationProblems(
  profile: CalibrationProfile,
  options: { strict?: boolean } = {},
): string[] {
  const problems: string[] = [];
  if (typeof profile.measuredAt !== 'string' || Number.isNaN(Date.parse(profile.measuredAt)))
    problems.push('measuredAt: expected a date');
  if (typeof profile.machine?.cpus !== 'number' || profile.machine.cpus < 1)
    problems.push('machine.cpus: expected the number of cores');
  if (typeof profile.capacities !== 'object' || profile.capacities === null)
    return [...problems, 'capacities: missing'];
  for (const [key, capacity] of Object.entries(
    profile.capacities as unknown as Record<string, Record<string, unknown>>,
  )) {
    for (const [field, rule] of Object.entries(CAPACITY_FIELDS)) {
      const value = capacity[field];
      if (value === undefined) {
        if (rule.required && (options.strict === true || !['measuredAt', 'loadAverage'].includes(field)))
          problems.push(`capacities.${key}.${field}: missing`);
      } else if (
        typeof value !== rule.type ||
        value === null ||
        (rule.type === 'number' && !Number.isFinite(value)) ||
        (rule.type === 'object' && Array.isArray(value))
      )
        problems.push(
          `capacities.${key}.${field}: expected ${rule.type === 'object' ? 'a mapping' : `a ${rule.type}`}`,
        );
    }
    if (capacity.unit !== undefined && !CAPACITY_UNITS.includes(capacity.unit as CapacityUnit))
      problems.push(`capacities.${key}.unit: expected ${CAPACITY_UNITS.join(' or ')}`);
    const under = capacity.measuredUnder;
    if (typeof under === 'object' && under !== null && !Array.isArray(under))
      for (const [name, figure] of Object.entries(under))
        if (typeof figure !== 'number' || !Number.isFinite(figure))
          problems.push(`capacities.${key}.measuredUnder.${name}: expected a number`);
    if (typeof capacity.cpuMsPerOperation === 'number' && !(capacity.cpuMsPerOperation > 0))
      problems.push(`capacities.${key}.cpuMsPerOperation: expected above 0`);
    if (typeof capacity.measuredAt === 'string' && Number.isNaN(Date.parse(capacity.measuredAt)))
      problems.push(`capacities.${key}.measuredAt: expected a date`);
    if (options.strict === true)
      for (const field of Object.keys(capacity))
        if (!(field in CAPACITY_FIELDS)) problems.push(`capacities.${key}.${field}: not a capacity field`);
  }
  for (const [key, figure] of Object.entries(profile.memory ?? {}))
    if (typeof figure?.bytes !== 'number' || typeof figure.benchmark !== 'string')
      problems.push(`memory.${key}: expected bytes and the benchmark it came from`);
  return problems;
}

/** Monthly price of an instance (730 h). */
export const monthlyPrice = (instance: Instance): number => instance.monthly ?? (instance.hourly ?? 0) * 730;
