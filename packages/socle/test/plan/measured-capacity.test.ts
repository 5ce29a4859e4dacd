import { describe, expect, it } from 'vitest';
import { type CalibrationProfile, type Capacity, loadCalibration, loadPrices } from '../../src/plan/data.js';
import { databaseVcpu, plan, shardsNeeded, uploadMegabytesPerSecond } from '../../src/plan/plan.js';
import { exact } from '../../src/plan/quantity.js';
import { parseWorkload } from '../../src/plan/workload.js';

// The capacities the planner takes from measurement beyond CPU per request: file upload CPU per
// MB, and the Postgres backends' CPU per operation. Expected figures are worked out here by hand
// from the workload's numbers, not read from the planner's output.

const MONTH_SECONDS = 730 * 3600;
const fixture = loadCalibration(new URL('./fixture-calibration.json', import.meta.url));
const prices = loadPrices();

const capacity = (fields: Partial<Capacity> & { cpuMsPerOperation: number }): Capacity => ({
  benchmark: 'fixture',
  operation: 'fixture',
  operationsPerVcpuSecond: 1000 / fields.cpuMsPerOperation,
  measuredPerSecond: 0,
  ...fields,
});

/** The fixture profile with an upload figure (2 ms of CPU per MB) and Postgres CPU per operation. */
const measuredProfile: CalibrationProfile = {
  ...fixture,
  capacities: {
    ...fixture.capacities,
    tenantRead: { ...(fixture.capacities.tenantRead as Capacity), databaseCpuMsPerOperation: 0.2 },
    signIn: { ...(fixture.capacities.signIn as Capacity), databaseCpuMsPerOperation: 1 },
    job: { ...(fixture.capacities.job as Capacity), databaseCpuMsPerOperation: 0.5 },
    write: capacity({
      benchmark: 'tenant-write (fixture)',
      cpuMsPerOperation: 1,
      databaseCpuMsPerOperation: 0.4,
    }),
    fileUpload: capacity({
      benchmark: 'files-upload (fixture)',
      unit: 'MB',
      cpuMsPerOperation: 2,
      databaseCpuMsPerOperation: 0.05,
    }),
  },
};

// 50,000 images a month of 8-15 MB (seed 003's own figures), 10,000 daily users at a peak of 3.
const workload = parseWorkload(`
name: uploads
currency: USD
targets: { cpuUtilization: 50 %, databaseVcpu: 2 vCPU }
phases:
  - name: one
    duration: 1 month
    users: { daily: 10000 }
    peakFactor: 3
    requestsPerUser: { read: 100/day, write: 10/day, signIn: 1/day }
    jobs:
      - { name: transform, queue: default, count: 50000/month, duration: 30 s, cpuBound: false }
    files:
      - { name: images, count: 50000/month, size: 8-15 MB }
`);

describe('file uploads in the plan', () => {
  it('MB uploaded per second: files a second × their size', () => {
    const rate = uploadMegabytesPerSecond([
      { rate: exact(50_000 / MONTH_SECONDS), size: { lo: 0.008, hi: 0.015 } },
    ]);
    expect(rate.lo).toBeCloseTo((50_000 * 8) / MONTH_SECONDS, 9);
    expect(rate.hi).toBeCloseTo((50_000 * 15) / MONTH_SECONDS, 9);
  });

  it("counts the uploads' CPU in the API nodes, from the benchmark that measured it", () => {
    const phase = plan(workload, prices, measuredProfile).phases[0];
    const peakMBps = { lo: ((50_000 * 8) / MONTH_SECONDS) * 3, hi: ((50_000 * 15) / MONTH_SECONDS) * 3 };
    const uploadVcpu = { lo: (peakMBps.lo * 2) / 1000 / 0.5, hi: (peakMBps.hi * 2) / 1000 / 0.5 };
    expect(phase?.fileUploads?.peakMegabytesPerSecond.hi).toBeCloseTo(peakMBps.hi, 9);
    expect(phase?.fileUploads?.vcpu.lo).toBeCloseTo(uploadVcpu.lo, 9);
    expect(phase?.fileUploads?.vcpu.hi).toBeCloseTo(uploadVcpu.hi, 9);
    expect(phase?.fileUploads?.nodes).toEqual({ lo: 1, hi: 1 });
    expect(phase?.fileUploads?.benchmark).toBe('files-upload (fixture)');
    // The API's vCPU: reads, writes and sign-ins at peak, plus the uploads.
    const perSecond = (perDay: number) => (10_000 * perDay * 3) / 86_400;
    const requests = (perSecond(100) * 0.5 + perSecond(10) * 1 + perSecond(1) * 50) / 1000 / 0.5;
    expect(phase?.api.vcpu.hi).toBeCloseTo(requests + uploadVcpu.hi, 9);
    expect(phase?.capacitySources.some((line) => line.includes('from files-upload (fixture)'))).toBe(true);
  });

  it('says when the profile has no upload figure, and counts none', () => {
    const phase = plan(workload, prices, fixture).phases[0];
    expect(phase?.fileUploads).toBeUndefined();
    expect(phase?.checks.map((check) => check.message)).toContain(
      'files: the calibration profile has no file upload figure; the CPU of uploads is not counted (write a new profile with socle bench --calibrate)',
    );
  });
});

describe('Postgres CPU in the plan', () => {
  it('vCPU of Postgres: operations/s × measured CPU each ÷ utilization, over the kinds measured', () => {
    const measuredRead = capacity({ cpuMsPerOperation: 1, databaseCpuMsPerOperation: 0.2 });
    const unmeasured = capacity({ cpuMsPerOperation: 1 });
    expect(
      databaseVcpu(
        [
          { rate: { lo: 1000, hi: 2000 }, capacity: measuredRead },
          { rate: exact(500), capacity: unmeasured },
        ],
        0.5,
      ),
    ).toEqual({ lo: (1000 * 0.2) / 1000 / 0.5, hi: (2000 * 0.2) / 1000 / 0.5 });
    expect(databaseVcpu([{ rate: exact(500), capacity: unmeasured }], 0.5)).toBeUndefined();
  });

  it('shards: Postgres CPU over one server counts like IOPS and storage', () => {
    const few = exact(10);
    const small = exact(5);
    expect(shardsNeeded(few, small, 3000, 2000)).toEqual({ lo: 1, hi: 1 });
    expect(shardsNeeded(few, small, 3000, 2000, { vcpu: { lo: 3, hi: 9 }, perServer: 4 })).toEqual({
      lo: 1,
      hi: 3,
    });
  });

  it('sizes the database from the measured statements of each request kind, naming the source', () => {
    const phase = plan(workload, prices, measuredProfile).phases[0];
    const perSecond = (perDay: number) => (10_000 * perDay * 3) / 86_400;
    const jobsPerSecond = (50_000 / MONTH_SECONDS) * 3;
    const uploadMBps = ((50_000 * 15) / MONTH_SECONDS) * 3;
    const expected =
      (perSecond(100) * 0.2 +
        perSecond(10) * 0.4 +
        perSecond(1) * 1 +
        jobsPerSecond * 0.5 +
        uploadMBps * 0.05) /
      1000 /
      0.5;
    expect(phase?.postgres.cpu?.hi).toBeCloseTo(expected, 9);
    const source = phase?.capacitySources.find((line) => line.startsWith('Postgres CPU'));
    expect(source).toContain('reads 0.2 ms each, from tenant-select (fixture)');
    expect(source).toContain('uploads (per MB) 0.05 ms each, from files-upload (fixture)');
    // Without a Postgres figure the planner says so and keeps the stated server size.
    const unmeasured = plan(workload, prices, fixture).phases[0];
    expect(unmeasured?.postgres.cpu).toBeUndefined();
    expect(unmeasured?.capacitySources.find((line) => line.startsWith('Postgres CPU'))).toContain(
      'not measured for reads, writes, sign-ins, jobs, uploads (per MB)',
    );
    // A profile with some kinds only (uploads measured on Postgres, the rest not) counts none of
    // them, rather than a server sized for its uploads alone.
    const partial = plan(workload, prices, {
      ...fixture,
      capacities: { ...fixture.capacities, fileUpload: measuredProfile.capacities.fileUpload as Capacity },
    }).phases[0];
    expect(partial?.postgres.cpu).toBeUndefined();
    expect(partial?.capacitySources.find((line) => line.startsWith('Postgres CPU'))).toContain(
      'not measured for reads, writes, sign-ins, jobs (calibrate',
    );
  });

  it('more Postgres CPU than one server holds calls for shards, with the figures', () => {
    // 4 million daily users: 6.9 vCPU of Postgres at peak on 2-vCPU servers (4 shards), where the
    // IOPS alone (4,861 for 3,000 per server) would need 2.
    const heavy = parseWorkload(
      `name: heavy
currency: USD
targets: { cpuUtilization: 50 %, databaseVcpu: 2 vCPU }
phases:
  - name: one
    duration: 1 month
    users: { daily: 4000000 }
    peakFactor: 3
    requestsPerUser: { read: 100/day, write: 10/day, signIn: 1/day }
`,
    );
    const phase = plan(heavy, prices, measuredProfile).phases[0];
    const perSecond = (perDay: number) => (4_000_000 * perDay * 3) / 86_400;
    const vcpu = (perSecond(100) * 0.2 + perSecond(10) * 0.4 + perSecond(1) * 1) / 1000 / 0.5;
    expect(phase?.postgres.cpu?.hi).toBeCloseTo(vcpu, 9);
    expect(phase?.postgres.shards).toBe(Math.ceil(vcpu / 2));
    expect(Math.ceil(vcpu / 2)).toBe(4);
    expect(
      phase?.checks.some(
        (check) => check.kind === 'sizing' && check.message.includes('vCPU of Postgres CPU'),
      ),
    ).toBe(true);
  });
});
