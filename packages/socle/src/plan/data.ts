import { readFileSync } from 'node:fs';
import type { Currency } from './quantity.js';

/**
 * The data `socle plan` reads: the price table and the calibration profile shipped in
 * `plan-data/` (the profile is written by `npm run bench -- --calibrate`; a user passes their own
 * with `--calibration`). Checked on load: a hand-edited file that lost a field fails here, by name.
 */

export interface Instance {
  readonly type: string;
  readonly vcpu: number;
  readonly ramGiB: number;
  readonly hourly?: number;
  readonly monthly?: number;
}

export interface ComputeProvider {
  readonly name: string;
  readonly currency: Currency;
  readonly recordedOn: string;
  readonly source: string;
  readonly instances: readonly Instance[];
  readonly blockStorageGBMonth: number;
  readonly loadBalancerMonthly: number;
  readonly egressGB: number;
}

export interface ObjectStore {
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

export interface PriceTable {
  readonly table: 'socle-prices/1';
  readonly recordedOn: string;
  readonly note: string;
  readonly compute: Readonly<Record<string, ComputeProvider>>;
  readonly objectStorage: Readonly<Record<string, ObjectStore>>;
  readonly ai: Readonly<
    Record<
      string,
      {
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
      {
        readonly currency: Currency;
        readonly percent: number;
        readonly fixed: number;
        readonly source: string;
      }
    >
  >;
  readonly facts: Readonly<Record<string, { readonly value: number; readonly source: string }>>;
}

export interface Capacity {
  readonly benchmark: string;
  readonly operation: string;
  readonly cpuMsPerOperation: number;
  readonly operationsPerVcpuSecond: number;
  readonly measuredPerSecond: number;
}

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
  return table;
}

export function loadCalibration(path: string | URL = dataUrl('calibration.json')): CalibrationProfile {
  const profile = readJson(path, 'calibration profile') as CalibrationProfile;
  if (profile?.profile !== 'socle-calibration/1')
    throw new PlanDataError(
      `${String(path)} is not a socle-calibration/1 profile (write one with npm run bench -- --calibrate)`,
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
      `${String(path)} lacks the capacities ${missing.join(', ')}: run npm run bench -- --calibrate with the tenant-select, sign-in and jobs scenarios`,
    );
  return profile;
}

/** Monthly price of an instance (730 h). */
export const monthlyPrice = (instance: Instance): number => instance.monthly ?? (instance.hourly ?? 0) * 730;
