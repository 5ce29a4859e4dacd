import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadCalibration, loadPrices } from '../../src/plan/data.js';
import { type Plan, plan } from '../../src/plan/plan.js';
import { parseWorkload } from '../../src/plan/workload.js';

// Each seed's workload (plans/*.yaml) planned with the shipped price table. The figures the seeds
// get wrong are computed here from the seed's own inputs, independently of the planner.

const calibration = loadCalibration(new URL('./fixture-calibration.json', import.meta.url));
const prices = loadPrices();
const planOf = (file: string): Plan =>
  plan(
    parseWorkload(readFileSync(new URL(`../../../../plans/${file}`, import.meta.url), 'utf8')),
    prices,
    calibration,
  );
const errors = (result: Plan, phase = 0) =>
  (result.phases[phase]?.checks ?? [])
    .filter((check) => check.severity === 'error')
    .map((check) => check.message);
const claim = (result: Plan, phase: number, text: string) => {
  const found = result.phases[phase]?.claims.find((entry) => entry.text.includes(text));
  if (found === undefined) throw new Error(`no claim "${text}"`);
  return found;
};
const table = (result: Plan, phase: number, title: string) => {
  const found = result.phases[phase]?.seedTables.find((entry) => entry.title.includes(title));
  if (found === undefined) throw new Error(`no table "${title}"`);
  return found;
};
const HOURS_PER_MONTH = 730;

describe('seed 000 (StrategyBuzzer, GCP)', () => {
  const result = planOf('000-strategybuzzer.yaml');

  it('flags the e2-standard-2 priced below its list price', () => {
    const listed = 0.067 * HOURS_PER_MONTH; // 48.91 USD
    expect(listed).toBeGreaterThan(35 * 1.15);
    expect(
      errors(result, 0).some((message) => message.includes('e2-standard-2') && message.includes('48.9')),
    ).toBe(true);
  });

  it('reproduces the start-up table total, and flags the world phase whose rows do not add up', () => {
    expect(table(result, 0, 'démarrage').ok).toBe(true);
    const rows = { lo: 800 + 100 + 150 + 100 + 40 + 40, hi: 1200 + 100 + 150 + 100 + 40 + 40 };
    const mondiale = table(result, 2, 'mondiale');
    expect(mondiale.computedTotal).toEqual(rows);
    expect(mondiale.ok).toBe(false);
  });

  it('sizes the world phase from measured CPU: more API nodes than at start', () => {
    expect(result.phases[2]?.api.nodes.hi).toBeGreaterThan(result.phases[0]?.api.nodes.hi ?? 0);
  });
});

describe('seed 001 (CRM IA multi-cabinets)', () => {
  const result = planOf('001-crm-ia-cabinets.yaml');

  it('4,000 recordings × 10 min is about 667 h of Whisper a month, not 4,000 h', () => {
    const hours = (4000 * 10) / 60;
    const whisper = claim(result, 0, 'Whisper API');
    expect(whisper.ok).toBe(false);
    expect(whisper.stated.lo).toBe(4000);
    expect(whisper.computed.lo).toBeCloseTo(hours, 6);
    // The cost the seed quotes is right: 40,000 min × 0.006 USD.
    const cost = result.phases[0]?.thirdParty.find((line) => line.component.includes('whisper'));
    expect(cost?.monthly.lo).toBeCloseTo(4000 * 10 * 0.006, 6);
  });

  it('a year of audio (10 MB) and documents (2 MB) is 1.44 TB, not 1.6 + 1.2 TB', () => {
    const gigabytes = ((4000 * 10 + 40000 * 2) * 12) / 1000;
    expect(claim(result, 0, '1.6 TB').computed.lo).toBeCloseTo(gigabytes, 6);
    expect(claim(result, 0, '1.6 TB').ok).toBe(false);
    expect(claim(result, 0, '1.4 TB').ok).toBe(true);
  });

  it('reproduces the AWS, OVH and budget totals, and flags the object storage and the USD→EUR sum', () => {
    expect(table(result, 0, 'AWS').computedTotal.lo).toBeCloseTo(3570, 6);
    expect(table(result, 0, 'OVH').ok).toBe(true);
    expect(table(result, 0, 'Budget').ok).toBe(true);
    expect(table(result, 0, 'Object storage').computedTotal.hi).toBeCloseTo(0.92 + 1.84, 6);
    expect(table(result, 0, 'Object storage').ok).toBe(false);
    expect(
      result.phases[0]?.checks.some(
        (check) => check.kind === 'currency' && check.message.includes('Whisper ROI'),
      ),
    ).toBe(true);
  });

  it('the 43 h of downtime a year for 99.5 % is right', () => {
    expect(claim(result, 0, 'SLA').computed.lo).toBeCloseTo(0.005 * 8760, 6);
    expect(claim(result, 0, 'SLA').ok).toBe(true);
  });
});

describe('seed 002 (Jatsmanor)', () => {
  const result = planOf('002-jatsmanor.yaml');

  it('the cost per user "per month" is per year', () => {
    const perMonth = 960 / 12 / 50000;
    const vps = claim(result, 0, 'VPS Simple');
    expect(vps.ok).toBe(false);
    expect(vps.computed.lo).toBeCloseTo(perMonth, 9);
    expect(vps.note).toContain('per year');
    for (const phase of [1, 2]) expect(result.phases[phase]?.claims[0]?.note).toContain('per year');
  });

  it('flags t3.medium instances priced at twice their list price', () => {
    expect(errors(result, 1).some((message) => message.includes('t3.medium'))).toBe(true);
  });
});

describe('seed 003 (Renzo Immobilier)', () => {
  const result = planOf('003-renzo-immobilier.yaml');

  it('50,000 images a month of 8-15 MB is 400-750 GB a month, not 500 GB the first year', () => {
    const perMonth = { lo: (50000 * (5 + 3)) / 1000, hi: (50000 * (10 + 5)) / 1000 };
    const added = claim(result, 1, '42 GB');
    expect(added.computed.lo).toBeCloseTo(perMonth.lo, 6);
    expect(added.computed.hi).toBeCloseTo(perMonth.hi, 6);
    const year = claim(result, 1, 'la première année');
    expect(year.ok).toBe(false);
    expect(result.phases[1]?.storage.byMonth.at(-1)?.totalGB.hi).toBeCloseTo(perMonth.hi * 12, 6);
  });

  it('flags the MVP total and the single database for 99.9 %', () => {
    const rows = { lo: 5 + 20 + 12 / 12, hi: 5 + 50 + 12 / 12 };
    expect(table(result, 0, 'MVP').computedTotal.lo).toBeCloseTo(rows.lo, 6);
    expect(table(result, 0, 'MVP').computedTotal.hi).toBeCloseTo(rows.hi, 6);
    expect(table(result, 0, 'MVP').ok).toBe(false);
    expect(result.phases[0]?.checks.some((check) => check.message.includes('no replica'))).toBe(true);
  });
});

describe('seed 004 (CryptoCare)', () => {
  const result = planOf('004-cryptocare.yaml');

  it('on-chain payment confirmation in < 5 s cannot be met: a block takes about 10 minutes', () => {
    const target = errors(result, 0).find((message) => message.includes('on-chain'));
    expect(target).toContain('600 s');
    // Lightning from phase 2 on: no such check.
    expect(errors(result, 2).some((message) => message.includes('on-chain'))).toBe(false);
  });

  it('names the mix of concurrent and daily users, and the queue no worker consumes', () => {
    expect(
      result.phases[0]?.checks.some((check) => check.kind === 'units' && check.message.includes('DAU')),
    ).toBe(true);
    expect(errors(result, 1).some((message) => message.includes('no worker consumes'))).toBe(true);
  });

  it('its cost per user is right', () => {
    expect(claim(result, 0, '0.50 CHF').ok).toBe(true);
    expect(claim(result, 3, '0.16').computed.lo).toBeCloseTo(8000 / 50000, 9);
  });
});

describe('shipped data', () => {
  it('the shipped calibration profile (npm run bench -- --calibrate) names its machine and every benchmark', () => {
    const shipped = loadCalibration();
    expect(shipped.machine.cpus).toBeGreaterThan(0);
    for (const capacity of Object.values(shipped.capacities)) {
      expect(capacity.benchmark).toMatch(/\((postgres|pglite)/);
      expect(Math.abs(capacity.operationsPerVcpuSecond * capacity.cpuMsPerOperation - 1000)).toBeLessThan(1);
    }
  });

  it('every price entry names its source and the day it was recorded', () => {
    for (const group of [prices.compute, prices.objectStorage, prices.ai])
      for (const entry of Object.values(group)) {
        expect(entry.source).toMatch(/^https:\/\//);
        expect(entry.recordedOn).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      }
  });
});
