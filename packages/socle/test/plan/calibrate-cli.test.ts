import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCalibration } from '../../../../bench/src/calibration.js';
import type { ScenarioResult } from '../../../../bench/src/harness.js';
import { calibrationProblems, loadCalibration } from '../../src/plan/data.js';
import { formatNumber } from '../../src/plan/quantity.js';
import { testPostgresAdminUrl } from '../../src/testing/index.js';
import { describeEachDatabase } from '../support/each-database.js';
import { startS3Server, TEST_S3_CREDENTIALS } from '../support/s3-server.js';

/**
 * `socle bench --calibrate` as a user of the installed package runs it: the built CLI (`npm test`
 * builds first), by Node itself, on embedded PGlite. Bounded (one second per phase, four
 * connections); no figure is asserted, only that each is measured and reaches the planner.
 */
const BUILT_CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
if (!existsSync(BUILT_CLI))
  throw new Error(`The calibration test runs the built CLI: run npm run build (${BUILT_CLI})`);
const seed = fileURLToPath(new URL('../../../../plans/001-crm-ia-cabinets.yaml', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function socle(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    // Without DATABASE_URL: the calibration must run on embedded PGlite whatever the caller's shell holds.
    const { DATABASE_URL: _ignored, ...inherited } = process.env;
    execFile(
      process.execPath,
      [BUILT_CLI, ...args],
      { cwd, env: { ...inherited, ...env }, timeout: 240_000, maxBuffer: 10 * 2 ** 20 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describeEachDatabase('socle bench --calibrate', (target) => {
  const dialect = target.dialect;
  // Postgres: the server DATABASE_URL names, where the command makes (and drops) its own database.
  const env: { DATABASE_URL?: string } =
    dialect === 'postgres' ? { DATABASE_URL: testPostgresAdminUrl() } : {};
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'socle-calibrate-test-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('writes a profile the planner reads, and socle plan names its figures', async () => {
    const output = join(directory, 'profile.json');
    const run = await socle(
      ['bench', '--calibrate', '--duration', '1', '--connections', '4', '--output', output],
      directory,
      env,
    );
    expect(run.code, run.stderr).toBe(0);
    // The progress bar went to stderr, and ended complete.
    expect(run.stderr).toContain('[########################] 7/7 done');
    expect(run.stdout).toContain(`Wrote ${output}`);

    // The planner's own reader accepts it (it checks the required capacities are positive).
    const profile = loadCalibration(output);
    expect(profile.profile).toBe('socle-calibration/1');
    expect(profile.machine.cpus).toBeGreaterThan(0);
    const expected = {
      tenantRead: `socle bench --calibrate tenant read (${dialect})`,
      write: `socle bench --calibrate tenant write (${dialect})`,
      signIn: `socle bench --calibrate sign-in (${dialect})`,
      job: `socle bench --calibrate jobs (${dialect})`,
      fileUpload: `socle bench --calibrate file upload, local store (${dialect})`,
      // Four connections: 100 sockets joined to one channel.
      realtimeDelivery: `socle bench --calibrate realtime deliveries, 100 subscribers (${dialect})`,
    };
    for (const [key, benchmark] of Object.entries(expected)) {
      const capacity = profile.capacities[key] as unknown as Record<string, unknown>;
      expect(capacity, key).toBeDefined();
      expect(capacity.benchmark).toBe(benchmark);
      for (const field of [
        'cpuMsPerOperation',
        'operationsPerVcpuSecond',
        'measuredPerSecond',
        'loadAverage',
      ])
        expect(typeof capacity[field], `${key}.${field}`).toBe('number');
      expect(capacity.cpuMsPerOperation as number, key).toBeGreaterThan(0);
      expect(
        (capacity.operationsPerVcpuSecond as number) * (capacity.cpuMsPerOperation as number),
        key,
      ).toBeCloseTo(1000, -1);
      expect(Number.isNaN(Date.parse(String(capacity.measuredAt))), key).toBe(false);
    }
    expect(typeof (profile.capacities.tenantRead as unknown as { p99Ms: unknown }).p99Ms).toBe('number');
    // Uploads are counted per MB moved.
    expect(profile.capacities.fileUpload?.unit).toBe('MB');
    // On Postgres (here on this machine) each capacity also has the backends' CPU per operation;
    // on PGlite the database's work is in the server's own CPU.
    for (const key of ['tenantRead', 'write', 'signIn', 'job', 'fileUpload'])
      expect(typeof profile.capacities[key]?.databaseCpuMsPerOperation, key).toBe(
        dialect === 'postgres' ? 'number' : 'undefined',
      );

    // The same schema as the repository's bench writes (npm run bench -- --calibrate): both meet
    // the planner's strict check, and each capacity they share has the same fields.
    expect(calibrationProblems(profile, { strict: true })).toEqual([]);
    const bench = buildCalibration(
      ['tenant-select', 'tenant-write', 'sign-in'].map(
        (scenario) =>
          ({
            scenario,
            dialect,
            socle: {
              requestsPerSecond: 100,
              cpuMillisecondsPerRequest: 1,
              databaseCpuMillisecondsPerRequest: dialect === 'postgres' ? 0.5 : undefined,
              latencyMs: { p50: 1, p90: 2, p99: 3, max: 4 },
            },
          }) as unknown as ScenarioResult,
      ),
      [
        {
          scenario: 'jobs',
          dialect,
          text: '',
          figures: {
            socle: {
              cpuMillisecondsPerJob: 0.05,
              processedPerSecond: 3000,
              databaseDrainCpuMillisecondsPerJob: dialect === 'postgres' ? 0.02 : null,
            },
          },
        },
        {
          scenario: 'files-upload',
          dialect,
          text: '',
          figures: {
            socle: {
              megabytesPerSecond: 200,
              cpuMillisecondsPerMegabyte: 2,
              ...(dialect === 'postgres' ? { databaseCpuMillisecondsPerMegabyte: 0.01 } : {}),
            },
          },
        },
        // The reference apps' figures, which only the bench measures: the same strict schema.
        {
          scenario: 'strategybuzzer',
          dialect,
          text: '',
          figures: {
            socle: {
              steps: [
                {
                  rooms: 32,
                  players: 256,
                  seconds: 5,
                  buzzes: 500,
                  questions: 64,
                  p99Ms: 30,
                  serverCpuShare: 0.05,
                  ...(dialect === 'postgres' ? { databaseCpuShare: 0.004 } : {}),
                },
              ],
            },
          },
        },
        {
          scenario: 'cryptocare',
          dialect,
          text: '',
          figures: {
            summary: {
              serverCpuMsPerRequest: 1.5,
              postgresCpuMsPerRequest: dialect === 'postgres' ? 0.6 : 0,
              requestsPerSecond: 900,
              mixP99Ms: 30,
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
    expect(calibrationProblems(bench as never, { strict: true })).toEqual([]);
    expect(Object.keys(bench.capacities)).toEqual(
      expect.arrayContaining(['strategybuzzerRoom', 'cryptocareRequest']),
    );
    for (const key of ['tenantRead', 'write', 'signIn', 'job', 'fileUpload'])
      expect(Object.keys(profile.capacities[key] ?? {}).sort(), key).toEqual(
        Object.keys(bench.capacities[key] ?? {}).sort(),
      );
    // Memory of the server: per realtime connection (100 sockets joined), and the process.
    const { realtimeConnection, processBase } = profile.memory;
    expect(realtimeConnection?.benchmark).toBe(`socle bench --calibrate realtime, 100 sockets (${dialect})`);
    expect(realtimeConnection?.bytes).toBeGreaterThan(0);
    // A process of Socle holds tens of MiB; a socket, far less than one.
    expect(processBase?.bytes).toBeGreaterThan(realtimeConnection?.bytes ?? 0);
    expect(realtimeConnection?.bytes).toBeLessThan(2 ** 20);
    // Nothing left in the working directory (PGlite was in a temporary one, since removed), nor
    // the throwaway Postgres database.
    expect(await readdir(directory)).toEqual(['profile.json']);
    if (dialect === 'postgres') {
      const name = (profile as unknown as { runs: { throwawayDatabase?: string }[] }).runs[0]
        ?.throwawayDatabase;
      expect(name).toMatch(/^socle_calibrate_/);
      const client = new pg.Client({ connectionString: env.DATABASE_URL });
      await client.connect();
      try {
        const found = await client.query('select 1 from pg_database where datname = $1', [name]);
        expect(found.rowCount).toBe(0);
      } finally {
        await client.end();
      }
    }

    const planned = await socle(['plan', seed, '--calibration', output], directory);
    expect(planned.code, planned.stderr).toBe(0);
    // Each figure as the planner prints its numbers, beside the benchmark it came from.
    const formatted = (key: keyof typeof expected) =>
      formatNumber(profile.capacities[key]?.cpuMsPerOperation as number);
    expect(planned.stdout).toContain(
      `reads: ${formatted('tenantRead')} ms CPU each, from ${expected.tenantRead}`,
    );
    expect(planned.stdout).toContain(`writes: ${formatted('write')} ms CPU each, from ${expected.write}`);
    expect(planned.stdout).toContain(`sign-ins: ${formatted('signIn')} ms CPU each, from ${expected.signIn}`);
    expect(planned.stdout).toContain(`from ${expected.job}`);
    expect(planned.stdout).toContain(`ms CPU per MB, from ${expected.fileUpload}`);
    expect(planned.stdout).toContain(
      `realtime deliveries: ${formatted('realtimeDelivery')} ms CPU each, from ${expected.realtimeDelivery}`,
    );
    expect(planned.stdout).toContain(`per realtime connection, from ${realtimeConnection?.benchmark}`);
  }, 300_000);

  it('Ctrl-C mid-run: exits 1, writes nothing, leaves no temporary directory or database', async () => {
    const tmp = join(directory, 'tmp');
    const output = join(directory, 'interrupted.json');
    await mkdir(tmp);
    const { DATABASE_URL: _ignored, ...inherited } = process.env;
    const child = spawn(
      process.execPath,
      [BUILT_CLI, 'bench', '--calibrate', '--duration', '30', '--connections', '2', '--output', output],
      { cwd: directory, env: { ...inherited, ...env, TMPDIR: tmp }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Interrupted in the middle of the first measured phase.
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('1/7 tenant read')) resolve();
      });
      child.once('exit', () => reject(new Error(`exited before the read phase:\n${stderr}`)));
    });
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(1);
    expect(stderr).toContain('stopped by SIGINT, nothing written');
    expect(existsSync(output)).toBe(false);
    expect(await readdir(tmp)).toEqual([]);
    if (dialect === 'postgres') {
      const client = new pg.Client({ connectionString: env.DATABASE_URL });
      await client.connect();
      try {
        // Named socle_calibrate_<ms since 1970>_<hex>: none of this run's is left.
        const left = await client.query<{ datname: string }>(
          "select datname from pg_database where datname like 'socle_calibrate_%'",
        );
        expect(left.rows).toEqual([]);
      } finally {
        await client.end();
      }
    }
  }, 120_000);
});

describe('socle bench --calibrate on an S3 store', () => {
  let directory: string;
  let s3: Awaited<ReturnType<typeof startS3Server>>;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'socle-calibrate-s3-'));
    s3 = await startS3Server('calibration-s3');
  });
  afterAll(async () => {
    await s3?.close();
    await rm(directory, { recursive: true, force: true });
  });

  // The store is the one BLOB_URL names, as for socle start: the upload figure says which it was.
  // PGlite only: the database does not change where the files go.
  it("measures uploads to BLOB_URL's store and names it", async () => {
    const output = join(directory, 'profile.json');
    const run = await socle(
      ['bench', '--calibrate', '--duration', '1', '--connections', '2', '--output', output],
      directory,
      {
        BLOB_URL: s3.blobUrl(`calibration-${Date.now()}`),
        AWS_ACCESS_KEY_ID: TEST_S3_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_S3_CREDENTIALS.secretAccessKey,
      },
    );
    expect(run.code, run.stderr).toBe(0);
    const upload = loadCalibration(output).capacities.fileUpload;
    expect(upload?.benchmark).toBe('socle bench --calibrate file upload, s3 store (pglite)');
    expect(upload?.measuredPerSecond).toBeGreaterThan(0);
  }, 300_000);
});

describe('socle bench --calibrate flags', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'socle-calibrate-flags-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('socle help bench and socle bench --help document it; socle --help lists it', async () => {
    for (const args of [
      ['help', 'bench'],
      ['bench', '--help'],
    ]) {
      const run = await socle(args, directory);
      expect(run.code, args.join(' ')).toBe(0);
      expect(run.stdout).toContain('Usage: socle bench --calibrate [--output <file>]');
    }
    const main = await socle(['--help'], directory);
    expect(main.stdout).toContain('bench --calibrate [--output <file>]');
  });

  it('exits 2 naming the bad flag', async () => {
    const cases: [string[], string][] = [
      [['bench', '--calibrate', '--duration', 'soon'], '--duration'],
      [['bench', '--calibrate', '--duration', '0'], '--duration'],
      [['bench', '--calibrate', '--connections', '0'], '--connections'],
      [['bench', '--calibrate', '--connections', '2.5'], '--connections'],
      [['bench'], 'needs --calibrate'],
      [['bench', '--calibrate', '--speed', '3'], "'--speed'"],
    ];
    for (const [args, named] of cases) {
      const run = await socle(args, directory);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toContain(named);
    }
  }, 120_000);
});
