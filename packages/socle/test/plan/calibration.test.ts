import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCalibration, progressBar, writeCalibration } from '../../../../bench/src/calibration.js';
import type { ScenarioResult } from '../../../../bench/src/harness.js';
import { calibrationProblems, loadCalibration } from '../../src/plan/data.js';

// The bench's calibration writer and the planner's reader agree: figures of a (made-up) bench run
// become a profile socle plan accepts. No timing is measured here.

const request = (scenario: string, cpuMs: number, databaseCpuMs?: number) =>
  ({
    scenario,
    dialect: 'postgres',
    socle: {
      requestsPerSecond: 100,
      cpuMillisecondsPerRequest: cpuMs,
      databaseCpuMillisecondsPerRequest: databaseCpuMs,
      latencyMs: { p50: 1, p90: 2, p99: 3, max: 4 },
    },
  }) as unknown as ScenarioResult;

describe('npm run bench -- --calibrate', () => {
  it('writes a profile socle plan reads, and a later run of one scenario keeps the others', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'socle-calibration-'));
    try {
      const file = join(directory, 'calibration.json');
      const first = buildCalibration(
        [request('tenant-select', 0.4, 0.15), request('sign-in', 30), request('tenant-write', 0.8, 0.3)],
        [
          {
            scenario: 'jobs',
            dialect: 'postgres',
            text: '',
            figures: {
              socle: {
                cpuMillisecondsPerJob: 0.05,
                processedPerSecond: 3000,
                databaseDrainCpuMillisecondsPerJob: 0.02,
              },
            },
          },
          {
            scenario: 'files-upload',
            dialect: 'postgres',
            text: '',
            figures: {
              socle: {
                megabytesPerSecond: 210,
                cpuMillisecondsPerMegabyte: 2.5,
                databaseCpuMillisecondsPerMegabyte: 0.01,
              },
            },
          },
          {
            scenario: 'realtime-fanout',
            dialect: 'postgres',
            text: '',
            figures: {
              summary: {
                socle: {
                  idle: { connections: 1000, rssPerConnectionBytes: 8000, rssBytes: 108_000_000 },
                  fanout: [
                    {
                      subscribers: 1000,
                      throughput: [{ deliveriesPerSecond: 50000, serverCpuMicrosPerDelivery: 4 }],
                    },
                  ],
                },
              },
            },
          },
        ],
        { durationSeconds: 1 },
        [0.5, 0.5, 0.5],
        new Date('2026-12-06T00:00:00Z'),
      );
      await writeCalibration(file, first);
      const profile = loadCalibration(file);
      expect(profile.capacities.tenantRead?.operationsPerVcpuSecond).toBe(2500);
      expect(profile.capacities.write?.cpuMsPerOperation).toBe(0.8);
      expect(profile.capacities.write?.benchmark).toBe('tenant-write (postgres)');
      expect(profile.capacities.realtimeDelivery?.cpuMsPerOperation).toBe(0.004);
      expect(profile.memory.processBase?.bytes).toBe(100_000_000);
      // File upload: CPU per MB, MB per vCPU-second and MB/s, from the files-upload scenario.
      expect(profile.capacities.fileUpload).toMatchObject({
        benchmark: 'files-upload (postgres)',
        unit: 'MB',
        cpuMsPerOperation: 2.5,
        operationsPerVcpuSecond: 400,
        measuredPerSecond: 210,
        databaseCpuMsPerOperation: 0.01,
      });
      // The Postgres backends' CPU per request and per job, where the bench read it.
      expect(profile.capacities.tenantRead?.databaseCpuMsPerOperation).toBe(0.15);
      expect(profile.capacities.job?.databaseCpuMsPerOperation).toBe(0.02);
      expect(profile.capacities.signIn?.databaseCpuMsPerOperation).toBeUndefined();
      // The schema socle bench --calibrate's profiles meet too (calibrate-cli.test.ts).
      expect(calibrationProblems(profile, { strict: true })).toEqual([]);

      await writeCalibration(
        file,
        buildCalibration([request('tenant-select', 0.5)], [], {}, [1], new Date()),
      );
      const merged = JSON.parse(await readFile(file, 'utf8'));
      expect(merged.capacities.tenantRead.cpuMsPerOperation).toBe(0.5);
      expect(merged.capacities.signIn.cpuMsPerOperation).toBe(30);
      expect(merged.runs).toHaveLength(2);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('shows its progress as a bar of the scenarios done', () => {
    expect(progressBar(0, 4, 8)).toBe('[........] 0/4');
    expect(progressBar(3, 4, 8)).toBe('[######..] 3/4');
    expect(progressBar(4, 4, 8)).toBe('[########] 4/4');
    expect(progressBar(1, 0, 4)).toBe('[####] 1/0');
  });
});
