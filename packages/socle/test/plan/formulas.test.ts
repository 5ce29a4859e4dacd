import { describe, expect, it } from 'vitest';
import {
  type Capacity,
  type ComputeProvider,
  monthlyPrice,
  type ObjectStore,
  type PerGbService,
} from '../../src/plan/data.js';
import {
  cheapestInstance,
  concurrentJobs,
  databaseIops,
  endsMatch,
  measured,
  meetingHosts,
  objectStoreMonthly,
  peakRate,
  perGbMonthly,
  shardsNeeded,
  storedAfter,
  turnRelayGB,
  users,
  vcpuFor,
} from '../../src/plan/plan.js';
import {
  exact,
  formatRange,
  parseCount,
  parseDuration,
  parseMoney,
  parsePercent,
  parseRate,
  parseSize,
  QuantityError,
} from '../../src/plan/quantity.js';
import { type Phase, parseBitrate } from '../../src/plan/workload.js';

describe('quantities', () => {
  it('reads durations, sizes, rates, percentages and money with their units', () => {
    expect(parseDuration('10 min')).toEqual({ lo: 600, hi: 600 });
    expect(parseDuration('60-120 s')).toEqual({ lo: 60, hi: 120 });
    expect(parseSize('8–15 MB')).toEqual({ lo: 0.008, hi: 0.015 });
    expect(parseSize('2 TB').lo).toBe(2000);
    expect(parseRate('4000/month').lo * 2_628_000).toBeCloseTo(4000, 9);
    expect(parseRate('200 GB/month', { size: true }).lo * 2_628_000).toBeCloseTo(200, 9);
    expect(parsePercent('99.9 %').lo).toBeCloseTo(0.999, 12);
    expect(parseMoney('30-35 USD/month', 'month')).toEqual({ lo: 30, hi: 35, currency: 'USD' });
    expect(parseMoney('960 EUR/year', 'month').lo).toBeCloseTo(80, 9);
    expect(parseCount('10000-50000')).toEqual({ lo: 10000, hi: 50000 });
  });

  it('refuses a figure without its unit or period', () => {
    expect(() => parseRate('4000')).toThrow(QuantityError);
    expect(() => parseDuration('10')).toThrow(/duration/);
    expect(() => parseMoney('85 USD', 'month')).toThrow(/per what period/);
    expect(() => parseMoney('85 XYZ')).toThrow(/USD, EUR/);
    expect(() => parseCount('15-8')).toThrow(/goes down/);
  });

  it('prints ranges', () => {
    expect(formatRange({ lo: 1230, hi: 1630 }, 'USD')).toBe('1,230–1,630 USD');
    expect(formatRange(exact(0.0016))).toBe('0.0016');
  });
});

describe('formulas', () => {
  it('peak rate = daily users × per-user rate × peak factor', () => {
    expect(peakRate(exact(86400), exact(1 / 86400), exact(3))).toEqual(exact(3));
  });

  it('vCPU = rate × CPU per operation ÷ utilization', () => {
    // 1,200 reads/s at 0.5 ms is 0.6 busy vCPU; kept at 60 %, 1 vCPU.
    expect(vcpuFor(exact(1200), 0.5, 0.6).lo).toBeCloseTo(1, 12);
  });

  it('jobs in flight = arrivals per second × seconds each (Little)', () => {
    expect(concurrentJobs(exact(0.5), { lo: 60, hi: 120 })).toEqual({ lo: 30, hi: 60 });
  });

  it('stored data stops growing at its retention', () => {
    expect(storedAfter(exact(40), 12, undefined).lo).toBe(480);
    expect(storedAfter(exact(40), 36, 24).lo).toBe(960);
  });

  it('derives the missing one of daily and concurrent users through the stated share', () => {
    const phase = {
      users: { daily: exact(1000), concurrent: undefined, concurrentShare: exact(0.1) },
    } as unknown as Phase;
    expect(users(phase).concurrent).toEqual(exact(100));
  });

  it('picks the cheapest instance large enough', () => {
    const provider = {
      instances: [
        { type: 'big', vcpu: 8, ramGiB: 32, monthly: 100 },
        { type: 'small', vcpu: 2, ramGiB: 4, monthly: 10 },
        { type: 'mid', vcpu: 4, ramGiB: 8, hourly: 0.05 },
      ],
    } as unknown as ComputeProvider;
    expect(cheapestInstance(provider, 3, 4)?.type).toBe('mid');
    expect(monthlyPrice({ type: 'mid', vcpu: 4, ramGiB: 8, hourly: 0.05 })).toBeCloseTo(36.5, 9);
    expect(cheapestInstance(provider, 16, 4)).toBeUndefined();
  });

  it('prices object storage with allowances and free egress', () => {
    const spaces = {
      baseMonthly: 5,
      includedGB: 250,
      includedEgressGB: 1000,
      storageGBMonth: 0.02,
      egressGB: 0.01,
    } as ObjectStore;
    expect(objectStoreMonthly(spaces, 500, 0, 1000)).toBeCloseTo(10, 9);
    const b2 = { storageGBMonth: 0.006, egressGB: 0.01, freeEgressTimesStorage: 3 } as ObjectStore;
    expect(objectStoreMonthly(b2, 500, 0, 1000)).toBeCloseTo(3, 9);
    const s3 = { storageGBMonth: 0.023, coldGBMonth: 0.0036, egressGB: 0.09 } as ObjectStore;
    expect(objectStoreMonthly(s3, 100, 100, 0)).toBeCloseTo(2.66, 9);
  });

  it('a table total matches when each end is within the tolerance', () => {
    expect(endsMatch({ lo: 220, hi: 260 }, { lo: 232, hi: 257 }, 0.1)).toBe(true);
    expect(endsMatch({ lo: 1400, hi: 1700 }, { lo: 1230, hi: 1630 }, 0.1)).toBe(false);
  });

  it('TURN relay GB = average concurrent users in a call × share relayed × 2 directions × bitrate × a month', () => {
    // 4,000 concurrent at peak, peak factor 4 → 1,000 on average; 20 % in a call, 20 % of them
    // relayed → 40 relayed streams of 32 kbit/s (4,000 B/s), both ways: 320,000 B/s, over 730 h.
    const gigabytes = (1000 * 0.2 * 0.2 * 2 * 4000 * 730 * 3600) / 1e9;
    const relay = turnRelayGB(exact(4000), exact(4), {
      share: exact(0.2),
      bitrate: exact(4000),
      relayed: exact(0.2),
    });
    expect(relay.lo).toBeCloseTo(gigabytes, 9);
    expect(gigabytes).toBeCloseTo(840.96, 6);
    expect(parseBitrate('32 kbit/s')).toEqual(exact(4000));
    expect(parseBitrate('1.5 Mbit/s').lo).toBe(187500);
    expect(() => parseBitrate('32 kB')).toThrow(/bitrate like/);
  });

  it('meeting hosts = meetings at once at peak (arrivals × peak factor × duration), rounded up', () => {
    // 4,000 a month, 30-60 min, peak 3: 4000/2,628,000 s × 3 × 1,800-3,600 s = 8.2-16.4 at once.
    const { concurrent, hosts } = meetingHosts(exact(4000 / 2_628_000), { lo: 1800, hi: 3600 }, exact(3));
    expect(concurrent.lo).toBeCloseTo((4000 * 3 * 1800) / 2_628_000, 9);
    expect(hosts).toEqual({ lo: 9, hi: 17 });
    expect(meetingHosts(exact(0), exact(60), exact(1)).hosts).toEqual(exact(1));
  });

  it('a per-GB service bills what is beyond its free allowance, plus its base fee', () => {
    const turn = { perGB: 0.05, freeGB: 1000 } as PerGbService;
    expect(perGbMonthly(turn, 840)).toBe(0);
    expect(perGbMonthly(turn, 3000)).toBeCloseTo(100, 9);
    expect(perGbMonthly({ perGB: 0, baseMonthly: 20 } as PerGbService, 5000)).toBe(20);
  });

  it('Postgres IOPS = writes × IOPS per write + reads × cache misses; shards = the larger need, at least 1', () => {
    // 1,000 writes/s × 3 + 20,000 reads/s × 5 % = 4,000 IOPS: two servers of 3,000.
    const iops = databaseIops(exact(1000), exact(20000), 3, 0.05);
    expect(iops.lo).toBeCloseTo(4000, 9);
    expect(shardsNeeded(iops, exact(500), 3000, 2000)).toEqual(exact(2));
    // Storage can be the reason too: 5 TB on servers of 2 TB.
    expect(shardsNeeded(exact(10), exact(5000), 3000, 2000)).toEqual(exact(3));
    expect(shardsNeeded(exact(0), exact(0), 3000, 2000)).toEqual(exact(1));
  });

  it('a calibration figure without a usable CPU time is not used (newer profiles hold other figures)', () => {
    const capacity = { benchmark: 'x', operation: 'y', cpuMsPerOperation: 0.8 } as Capacity;
    expect(measured(capacity)).toBe(capacity);
    expect(measured({ benchmark: 'files', megabytesPerSecond: 80 } as unknown as Capacity)).toBeUndefined();
    expect(measured(undefined)).toBeUndefined();
  });
});
