import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CHECK_STATUSES,
  loadCalibration,
  loadPrices,
  PRICE_GROUPS,
  type PriceCheck,
} from '../../src/plan/data.js';
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

  it('sizes its game rooms from the StrategyBuzzer figure: every player online in a room of 8', () => {
    // World: 500,000-1,000,000 daily players, 10 % at once → 6,250-12,500 rooms of 8, at the
    // fixture's 5 ms of CPU per room-second and 60 % utilization.
    const rooms = { lo: (500_000 * 0.1) / 8, hi: (1_000_000 * 0.1) / 8 };
    const load = result.phases[2]?.referenceLoads[0];
    expect(load?.rate).toEqual(rooms);
    expect(load?.vcpu?.hi).toBeCloseTo((rooms.hi * 5) / 1000 / 0.6, 9);
    // 12,500 rooms alone take 104 vCPU: 53 nodes of 2 vCPU, where the seed budgets one autoscaled group.
    expect(load?.nodes?.hi).toBe(Math.ceil((rooms.hi * 5) / 1000 / 0.6 / 2));
    expect(result.phases[2]?.api.nodes.hi).toBeGreaterThanOrEqual(load?.nodes?.hi ?? Number.NaN);
    expect(
      result.phases[2]?.capacitySources.some((line) => line.includes('from strategybuzzer (fixture)')),
    ).toBe(true);
  });

  it('costs the voice chat relayed by TURN: a few GB at start, a managed relay far above the seed’s $40 worldwide', () => {
    // Start: 100-2,000 players a day, 10 % at once at the peak, peak factor 4 → 2.5-50 on average;
    // 20 % in a call, 20 % of those relayed, 32 kbit/s (4,000 B/s) both ways, 730 h.
    const relayed = (daily: number) => (((daily * 0.1) / 4) * 0.2 * 0.2 * 2 * 4000 * 730 * 3600) / 1e9;
    expect(result.phases[0]?.turn?.relayGB.hi).toBeCloseTo(relayed(2000), 6);
    expect(result.phases[0]?.turn?.relayGB.lo).toBeCloseTo(relayed(100), 6);
    const managed = (phase: number) =>
      result.phases[phase]?.turn?.services.find((service) => service.provider === 'cloudflare');
    expect(managed(0)?.total.hi).toBe(0); // within the 1,000 GB free
    // World: 1,000,000 a day → 21,024 GB relayed; (21,024 - 1,000) × $0.05.
    expect(managed(2)?.total.hi).toBeCloseTo((relayed(1_000_000) - 1000) * 0.05, 6);
    expect(managed(2)?.total.hi).toBeGreaterThan(40 * 20);
    // Self-hosted coTURN is priced in each compute provider: a node and the relayed egress.
    const gcp = result.phases[0]?.providers.find((provider) => provider.provider === 'gcp');
    expect(gcp?.lines.find((line) => line.component === 'TURN relay egress')?.monthly.hi).toBeCloseTo(
      relayed(2000) * 0.12,
      6,
    );
  });

  it('serves 95 % of the egress from a CDN: 190 of 200 GB at start, 10 GB from the origin', () => {
    expect(result.phases[0]?.cdn?.egressGB).toEqual({ lo: 190, hi: 190 });
    expect(result.phases[0]?.egressGBPerMonth.hi).toBeCloseTo(10, 9);
    const cloudfront = result.phases[2]?.cdn?.services.find((service) => service.provider === 'cloudfront');
    // World: 5 TB × 95 % = 4,750 GB, the first 1,000 GB free, $0.085/GB beyond.
    expect(cloudfront?.total.hi).toBeCloseTo((5000 * 0.95 - 1000) * 0.085, 6);
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

  it('its two database shards are not needed: a few IOPS and 29 GB fit one server', () => {
    // Peak: 400 brokers × (60 writes × 3 IOPS + 300 reads × 5 % misses) a day × peak factor 3.
    const iops = ((400 * (60 * 3 + 300 * 0.05)) / 86400) * 3;
    const postgres = result.phases[0]?.postgres;
    expect(postgres?.iops.hi).toBeCloseTo(iops, 9);
    expect(postgres?.storageGB.hi).toBeCloseTo(5 + 2 * 12, 9);
    expect(postgres?.shardsNeeded).toEqual({ lo: 1, hi: 1 });
    expect(
      result.phases[0]?.checks.some(
        (check) => check.kind === 'sizing' && check.message.includes('2 shards planned where 1 is enough'),
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

  it('a Zoom meeting per consultation needs 9-17 licensed hosts at start and 411-822 in phase 3', () => {
    // 4,000 a month × peak factor 3 × 30-60 min, over a 730 h month: meetings at once at peak.
    const atOnce = (perMonth: number, minutes: number) => (perMonth * 3 * minutes * 60) / (730 * 3600);
    const hosts = (phase: number) => result.phases[phase]?.meetings[0]?.hosts;
    expect(hosts(0)).toEqual({ lo: Math.ceil(atOnce(4000, 30)), hi: Math.ceil(atOnce(4000, 60)) });
    expect(hosts(0)).toEqual({ lo: 9, hi: 17 });
    expect(hosts(3)).toEqual({ lo: Math.ceil(atOnce(200000, 30)), hi: Math.ceil(atOnce(200000, 60)) });
    const zoom = result.phases[3]?.thirdParty.find((line) => line.component === 'meetings zoom-pro');
    expect(zoom?.monthly.hi).toBeCloseTo(Math.ceil(atOnce(200000, 60)) * 13.33, 6);
  });

  it("sizes its API from the CryptoCare figure: 45 requests of the bench's mix per user a day", () => {
    // Phase 3: 50,000 daily users × 45 a day × peak factor 3, at the fixture's 1 ms each and 60 %
    // utilization, plus 1 sign-in a day at 50 ms.
    const perSecond = (50_000 * 45 * 3) / 86_400;
    const mixVcpu = (perSecond * 1) / 1000 / 0.6;
    const signInVcpu = ((50_000 * 1 * 3) / 86_400) * (50 / 1000 / 0.6);
    const phase = result.phases[3];
    expect(phase?.referenceLoads[0]?.rate.hi).toBeCloseTo(perSecond, 9);
    expect(phase?.api.vcpu.hi).toBeCloseTo(mixVcpu + signInVcpu, 9);
    expect(phase?.capacitySources.some((line) => line.includes('from cryptocare (fixture)'))).toBe(true);
    // Its writes (the fixture's 15 %) count in the IOPS at 3 each; its reads' misses at 5 %.
    expect(phase?.postgres.iops.hi).toBeCloseTo(perSecond * 0.15 * 3 + perSecond * 0.85 * 0.05, 9);
  });

  it('its cost per user is right', () => {
    expect(claim(result, 0, '0.50 CHF').ok).toBe(true);
    expect(claim(result, 3, '0.16').computed.lo).toBeCloseTo(8000 / 50000, 9);
  });
});

describe('a newer calibration profile', () => {
  it('costs writes with the measured write figure, and ignores figures it does not read', () => {
    const newer = {
      ...calibration,
      capacities: {
        ...calibration.capacities,
        write: {
          benchmark: 'tenant-write (postgres)',
          operation: 'write',
          cpuMsPerOperation: 2,
          operationsPerVcpuSecond: 500,
          measuredPerSecond: 0,
        },
        // A throughput figure a later bench may add: no CPU time per operation.
        filesUpload: { benchmark: 'files-upload (postgres)', megabytesPerSecond: 80 },
      },
    } as unknown as typeof calibration;
    const text = readFileSync(new URL('../../../../plans/001-crm-ia-cabinets.yaml', import.meta.url), 'utf8');
    const phase = plan(parseWorkload(text), prices, newer).phases[0];
    // 400 brokers × (300 reads × 0.5 ms + 60 writes × 2 ms + 1 sign-in × 50 ms) a day, × 3 at peak,
    // ÷ 60 % utilization.
    const vcpu = (((400 * (300 * 0.5 + 60 * 2 + 1 * 50)) / 86400) * 3) / 1000 / 0.6;
    expect(phase?.api.vcpu.hi).toBeCloseTo(vcpu, 12);
    expect(phase?.capacitySources).toContain('writes: 2 ms CPU each, from tenant-write (postgres)');
  });
});

describe('shipped data', () => {
  it('the shipped calibration profile (npm run bench -- --calibrate) names its machine and every benchmark', () => {
    const shipped = loadCalibration();
    expect(shipped.machine.cpus).toBeGreaterThan(0);
    for (const capacity of Object.values(shipped.capacities)) {
      expect(capacity.benchmark).toMatch(/\((postgres|pglite)/);
      // Other figures (file throughput, say) carry no CPU time per operation.
      if (typeof capacity.cpuMsPerOperation === 'number')
        expect(Math.abs(capacity.operationsPerVcpuSecond * capacity.cpuMsPerOperation - 1000)).toBeLessThan(
          1,
        );
    }
  });

  it('every price entry names its source, the day it was recorded, and how far it was checked', () => {
    for (const group of PRICE_GROUPS)
      for (const [key, entry] of Object.entries(prices[group] as Record<string, PriceCheck>)) {
        const { source, recordedOn } = entry as PriceCheck & { source: string; recordedOn?: string };
        expect(source, `${group}.${key}`).toMatch(/^https:\/\//);
        if (recordedOn !== undefined) expect(recordedOn).toMatch(/^\d{4}-\d{2}-\d{2}$/);
        expect(entry.checkedAt, `${group}.${key}`).toMatch(/^\d{4}-\d{2}-\d{2}$/);
        expect(CHECK_STATUSES, `${group}.${key}`).toContain(entry.status);
        if (entry.status !== 'unverified')
          expect(entry.checkedFrom.length, `${group}.${key}`).toBeGreaterThan(0);
      }
  });

  it('a price table whose entry lost its check is refused, naming the entry', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'socle-prices-'));
    try {
      const broken = JSON.parse(JSON.stringify(prices)) as { ai: Record<string, Record<string, unknown>> };
      // JSON leaves an undefined field out: the entry loses its checkedAt.
      broken.ai['openai/whisper-1'] = { ...broken.ai['openai/whisper-1'], checkedAt: undefined };
      const file = join(directory, 'prices.json');
      await writeFile(file, JSON.stringify(broken));
      expect(() => loadPrices(file)).toThrow(/ai\.openai\/whisper-1: checkedAt must be a date/);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('a total using a price not found when checked says so', () => {
    const result = planOf('000-strategybuzzer.yaml');
    // OVHcloud's prices were not found: its totals are marked unverified. DigitalOcean's droplets
    // were found on a third party's copy of its price table.
    expect(result.phases[0]?.providers.find((cost) => cost.provider === 'ovh')?.priceStatus).toBe(
      'unverified',
    );
    expect(result.phases[0]?.providers.find((cost) => cost.provider === 'digitalocean')?.priceStatus).toBe(
      'secondary',
    );
    expect(result.phases[0]?.cdn?.services.find((cost) => cost.provider === 'cloudfront')?.priceStatus).toBe(
      'official',
    );
  });
});
