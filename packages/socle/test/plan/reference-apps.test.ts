import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCalibration, writeCalibration } from '../../../../bench/src/calibration.js';
import type { ScenarioResult } from '../../../../bench/src/harness.js';
import {
  type CalibrationProfile,
  type Capacity,
  calibrationProblems,
  loadCalibration,
  loadPrices,
} from '../../src/plan/data.js';
import { plan } from '../../src/plan/plan.js';
import { parseWorkload, WorkloadError } from '../../src/plan/workload.js';

// The reference apps' scenarios in the calibration: StrategyBuzzer's rooms and CryptoCare's mixed
// requests become capacities, and a workload whose load is "like" one of them is sized from it.
// Expected figures are worked out here from the inputs, not read from the planner's output.

const fixture = loadCalibration(new URL('./fixture-calibration.json', import.meta.url));
const prices = loadPrices();
const { strategybuzzerRoom: _room, cryptocareRequest: _mix, ...baseCapacities } = fixture.capacities;
/** The fixture without the reference apps' figures (as the shipped profile is until they are measured). */
const withoutApps: CalibrationProfile = { ...fixture, capacities: baseCapacities };

const capacity = (fields: Partial<Capacity> & { cpuMsPerOperation: number }): Capacity => ({
  benchmark: 'fixture',
  operation: 'fixture',
  operationsPerVcpuSecond: 1000 / fields.cpuMsPerOperation,
  measuredPerSecond: 0,
  ...fields,
});
/** Rooms of 8 at 10 ms of CPU per room-second; mixed requests at 2 ms, 15 % of them writes. */
const withApps: CalibrationProfile = {
  ...withoutApps,
  capacities: {
    ...baseCapacities,
    strategybuzzerRoom: capacity({
      benchmark: 'strategybuzzer (fixture)',
      unit: 'room-second',
      cpuMsPerOperation: 10,
      measuredUnder: { playersPerRoom: 8, buzzesPerRoomSecond: 2.5, chatMessagesPerRoomSecond: 0 },
    }),
    cryptocareRequest: capacity({
      benchmark: 'cryptocare (fixture)',
      cpuMsPerOperation: 2,
      measuredUnder: { users: 1000, writeShare: 0.15 },
    }),
  },
};

const workloadText = (extra: string) => `
name: apps
currency: USD
targets: { cpuUtilization: 50 %, nodeVcpu: 2 vCPU }
phases:
  - name: one
    duration: 1 month
    users: { daily: 10000, concurrentShareOfDaily: 10 % }
    peakFactor: 3
    requestsPerUser: { signIn: 1/day }
${extra}`;
const rooms = parseWorkload(workloadText('    rooms: { like: strategybuzzer, playersPerRoom: 8 }'));
const mixed = parseWorkload(workloadText('    requestMix: { like: cryptocare, perUser: 40/day }'));
const neither = parseWorkload(workloadText(''));
const signInVcpu = (((10_000 * 1 * 3) / 86_400) * 50) / 1000 / 0.5;

describe('reference apps in the plan', () => {
  it('StrategyBuzzer-like rooms: rooms at peak × CPU per room-second, naming the figure', () => {
    const phase = plan(rooms, prices, withApps).phases[0];
    // 10,000 daily users, 10 % at once → 1,000 players, rooms of 8 → 125 rooms at peak.
    const roomCount = (10_000 * 0.1) / 8;
    const roomVcpu = (roomCount * 10) / 1000 / 0.5;
    expect(phase?.api.vcpu.hi).toBeCloseTo(signInVcpu + roomVcpu, 9);
    expect(phase?.api.nodes.hi).toBe(Math.ceil((signInVcpu + roomVcpu) / 2));
    const line = phase?.referenceLoads.find((entry) => entry.like === 'strategybuzzer');
    expect(line?.rate).toEqual({ lo: roomCount, hi: roomCount });
    expect(line?.vcpu?.hi).toBeCloseTo(roomVcpu, 9);
    expect(line?.benchmark).toBe('strategybuzzer (fixture)');
    const source = phase?.capacitySources.find((entry) => entry.startsWith('StrategyBuzzer-like rooms'));
    expect(source).toContain('from strategybuzzer (fixture)');
    expect(source).toContain('100 rooms per vCPU');
    expect(source).toContain('8 players');
    // Without the rooms the same users need fewer nodes.
    const plain = plan(neither, prices, withApps).phases[0];
    expect(plain?.api.nodes.hi).toBe(Math.ceil(signInVcpu / 2));
    expect(phase?.api.nodes.hi).toBeGreaterThan(plain?.api.nodes.hi ?? 0);
  });

  it('a stated count of rooms is used as it is, and a room size the bench did not measure is warned about', () => {
    const stated = parseWorkload(workloadText('    rooms: { like: strategybuzzer, concurrent: 400 }'));
    const phase = plan(stated, prices, withApps).phases[0];
    expect(phase?.api.vcpu.hi).toBeCloseTo(signInVcpu + (400 * 10) / 1000 / 0.5, 9);
    expect(phase?.api.nodes.hi).toBe(Math.ceil((signInVcpu + 8) / 2));
    const four = parseWorkload(
      workloadText('    rooms: { like: strategybuzzer, playersPerRoom: 4, shareOfConcurrentUsers: 50 % }'),
    );
    const small = plan(four, prices, withApps).phases[0];
    // 1,000 players at once, half of them in rooms of 4 → 125 rooms.
    expect(small?.referenceLoads[0]?.rate.hi).toBeCloseTo((1000 * 0.5) / 4, 9);
    expect(
      small?.checks.some((check) => check.severity === 'warning' && check.message.includes('rooms of 8')),
    ).toBe(true);
  });

  it('CryptoCare-like requests: peak requests × CPU per request; their writes count in the IOPS', () => {
    const phase = plan(mixed, prices, withApps).phases[0];
    const perSecond = (10_000 * 40 * 3) / 86_400;
    const mixVcpu = (perSecond * 2) / 1000 / 0.5;
    expect(phase?.api.vcpu.hi).toBeCloseTo(signInVcpu + mixVcpu, 9);
    const line = phase?.referenceLoads.find((entry) => entry.like === 'cryptocare');
    expect(line?.rate.hi).toBeCloseTo(perSecond, 9);
    // IOPS: 15 % writes × 3 IOPS, 85 % reads × 5 % misses (the default targets).
    expect(phase?.postgres.iops.hi).toBeCloseTo(perSecond * 0.15 * 3 + perSecond * 0.85 * 0.05, 9);
    expect(phase?.capacitySources.some((entry) => entry.includes('from cryptocare (fixture)'))).toBe(true);
  });

  it('a profile without the figure says so, by name, and counts nothing in its place', () => {
    for (const [workload, key, scenario] of [
      [rooms, 'strategybuzzerRoom', 'strategybuzzer'],
      [mixed, 'cryptocareRequest', 'cryptocare'],
    ] as const) {
      const phase = plan(workload, prices, withoutApps).phases[0];
      const check = phase?.checks.find((entry) => entry.message.includes(key));
      expect(check?.severity).toBe('warning');
      expect(check?.message).toContain(`npm run bench -- --scenario ${scenario} --calibrate`);
      expect(check?.message).toContain('not counted');
      expect(phase?.api.vcpu.hi).toBeCloseTo(signInVcpu, 9);
      expect(phase?.referenceLoads[0]?.vcpu).toBeUndefined();
    }
  });

  it('rejects a reference load it cannot read, naming the field', () => {
    const problemsOf = (extra: string) => {
      try {
        parseWorkload(workloadText(extra));
      } catch (error) {
        if (error instanceof WorkloadError)
          return Object.fromEntries(error.problems.map((problem) => [problem.path, problem.message]));
        throw error;
      }
      throw new Error('expected a WorkloadError');
    };
    expect(problemsOf('    rooms: { like: colyseus, concurrent: 10 }')['phases[0].rooms.like']).toMatch(
      /one of strategybuzzer/,
    );
    expect(problemsOf('    rooms: { like: strategybuzzer }')['phases[0].rooms.concurrent']).toMatch(
      /concurrent.* or playersPerRoom/,
    );
    expect(
      problemsOf('    rooms: { like: strategybuzzer, concurrent: 10, playersPerRoom: 8 }')[
        'phases[0].rooms.playersPerRoom'
      ],
    ).toMatch(/not both/);
    expect(
      problemsOf('    requestMix: { like: cryptocare, perUser: 40 }')['phases[0].requestMix.perUser'],
    ).toMatch(/a rate like/);
    expect(problemsOf('    requestMix: { like: cryptocare }')['phases[0].requestMix.perUser']).toBe(
      'required',
    );
    expect(
      problemsOf('    requestMix: { like: strategybuzzer, perUser: 4/day }')['phases[0].requestMix.like'],
    ).toMatch(/one of cryptocare/);
  });
});

describe('npm run bench -- --calibrate with the reference apps', () => {
  const step = (rooms: number, serverCpuShare: number, databaseCpuShare?: number) => ({
    rooms,
    players: rooms * 8,
    seconds: 5,
    buzzes: rooms * 8 * 2 * 5 * 0.9,
    questions: rooms * 2 * 5 * 0.9,
    p99Ms: 20 + rooms / 10,
    serverCpuShare,
    ...(databaseCpuShare === undefined ? {} : { databaseCpuShare }),
  });

  it('records StrategyBuzzer rooms per vCPU and CryptoCare CPU per mixed request, merged into the profile', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'socle-calibration-apps-'));
    try {
      const file = join(directory, 'calibration.json');
      await writeCalibration(
        file,
        buildCalibration(
          [
            {
              scenario: 'tenant-select',
              dialect: 'postgres',
              socle: {
                requestsPerSecond: 100,
                cpuMillisecondsPerRequest: 0.4,
                latencyMs: { p50: 1, p90: 2, p99: 3, max: 4 },
              },
            } as unknown as ScenarioResult,
          ],
          [],
          {},
          [1],
          new Date(),
        ),
      );
      const profile = buildCalibration(
        [],
        [
          {
            scenario: 'strategybuzzer',
            dialect: 'postgres',
            text: '',
            figures: { socle: { steps: [step(16, 0.2, 0.03), step(32, 0.32, 0.064)] }, colyseus: {} },
          },
          {
            scenario: 'cryptocare',
            dialect: 'postgres',
            text: '',
            figures: {
              summary: {
                serverCpuMsPerRequest: 1.5,
                postgresCpuMsPerRequest: 0.6,
                requestsPerSecond: 900,
                mixP99Ms: 31,
                writeShare: 0.14,
                users: 1000,
                thinkMs: 1000,
              },
            },
          },
        ],
        {},
        [1],
        new Date(),
      );
      await writeCalibration(file, profile);
      // Read as written (loadCalibration would also ask for sign-in and job figures, not run here).
      const merged = JSON.parse(await readFile(file, 'utf8')) as CalibrationProfile;
      // The largest step: 32 rooms used 0.32 of a core → 10 ms of CPU per room-second, 100 rooms per vCPU.
      expect(merged.capacities.strategybuzzerRoom).toMatchObject({
        benchmark: 'strategybuzzer (postgres), largest step: 32 rooms',
        unit: 'room-second',
        cpuMsPerOperation: (0.32 * 1000) / 32,
        operationsPerVcpuSecond: 32 / 0.32,
        measuredPerSecond: 32,
        databaseCpuMsPerOperation: (0.064 * 1000) / 32,
        p99Ms: 20 + 3.2,
        measuredUnder: {
          playersPerRoom: 8,
          buzzesPerRoomSecond: (32 * 8 * 2 * 5 * 0.9) / 32 / 5,
          questionsPerRoomSecond: (32 * 2 * 5 * 0.9) / 32 / 5,
          chatMessagesPerRoomSecond: 0,
        },
      });
      expect(merged.capacities.strategybuzzerRoom?.operation).toMatch(/8 players/);
      expect(merged.capacities.cryptocareRequest).toMatchObject({
        benchmark: 'cryptocare (postgres)',
        cpuMsPerOperation: 1.5,
        measuredPerSecond: 900,
        databaseCpuMsPerOperation: 0.6,
        p99Ms: 31,
        measuredUnder: { users: 1000, thinkMs: 1000, writeShare: 0.14 },
      });
      // The earlier run's figure is kept beside them, and both writers' schema holds.
      expect(merged.capacities.tenantRead?.cpuMsPerOperation).toBe(0.4);
      expect(calibrationProblems(merged, { strict: true })).toEqual([]);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('the schema refuses a unit or a measuredUnder it cannot read', () => {
    const bad = {
      ...withApps,
      capacities: {
        room: { ...(withApps.capacities.strategybuzzerRoom as Capacity), unit: 'rooms' },
        mix: { ...(withApps.capacities.cryptocareRequest as Capacity), measuredUnder: { users: 'many' } },
      },
    } as unknown as CalibrationProfile;
    expect(calibrationProblems(bad)).toEqual([
      'capacities.room.unit: expected MB or room-second',
      'capacities.mix.measuredUnder.users: expected a number',
    ]);
  });
});
