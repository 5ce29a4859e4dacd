import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { postgresRequirement, testDatabaseTargets } from '../../src/testing/index.js';
import { freePort } from './free-port.js';

const run = promisify(execFile);

/**
 * What an outage test needs: the Postgres test target, the local Postgres binaries, and whether to
 * skip. Without binaries the suite skips visibly on a laptop; when Postgres is required (CI), it
 * runs and `startDisposablePostgres` fails instead.
 */
export async function disposablePostgresSetup() {
  const postgres = (await testDatabaseTargets()).find((target) => target.dialect === 'postgres');
  const binaries = findPostgresBinaries();
  const skip = !postgres?.available || (binaries === undefined && postgresRequirement() !== 'required');
  return { postgres, binaries, skip };
}

/** A Postgres server owned by one test: it may be stopped, restarted and thrown away. */
export interface DisposablePostgres {
  readonly port: number;
  /** Admin URL of the `postgres` database (trust authentication, user postgres). */
  readonly url: string;
  /** Starts the postmaster (again) on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** `immediate` kills every backend without a checkpoint, like a crash or a yanked cable. */
  stop(mode?: 'smart' | 'fast' | 'immediate'): Promise<void>;
  /**
   * SIGSTOPs the postmaster and every backend of this server only (never the shared one): it keeps
   * its sockets open and answers nothing, like a frozen VM or a stalled disk.
   */
  freeze(): Promise<void>;
  /** SIGCONTs what `freeze` stopped. */
  thaw(): Promise<void>;
  /** Stops the server if it runs and removes its files. Safe to call twice. */
  destroy(): Promise<void>;
  /** The temporary directory that holds everything of this server (data directory, log, socket). */
  readonly directory: string;
  readonly dataDirectory: string;
  /** Runs a Postgres binary (pg_basebackup, psql…) as the server's owner, in `directory`. */
  runTool(name: string, args: readonly string[]): Promise<string>;
}

export interface DisposablePostgresOptions {
  /** Server settings (`-c name=value`) over the test defaults (fsync off, loopback only). */
  readonly settings?: Readonly<Record<string, string>>;
  /**
   * Fills the data directory instead of `initdb` (a base backup to recover, say); `runTool` runs
   * Postgres binaries as the owner. The server starts on it afterwards.
   */
  readonly initialize?: (
    dataDirectory: string,
    runTool: (name: string, args: readonly string[]) => Promise<string>,
  ) => Promise<void>;
}

/** The postmaster's pid (first line of postmaster.pid) and the pids of its children. */
async function clusterPids(dataDirectory: string): Promise<number[]> {
  const postmaster = Number(readFileSync(path.join(dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
  if (!Number.isSafeInteger(postmaster) || postmaster <= 1) throw new Error('No postmaster pid');
  const { stdout } = await run('ps', ['-o', 'pid=', '--ppid', String(postmaster)]);
  const children = stdout
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isSafeInteger(pid) && pid > 1);
  return [postmaster, ...children];
}

/**
 * Where `initdb` and `pg_ctl` live: SOCLE_TEST_POSTGRES_BIN, else the newest
 * /usr/lib/postgresql/<major>/bin (Debian, Ubuntu), else undefined (look them up on PATH).
 */
export function findPostgresBinaries(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.SOCLE_TEST_POSTGRES_BIN) return env.SOCLE_TEST_POSTGRES_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .filter((entry) => /^\d+$/.test(entry) && existsSync(path.join(root, entry, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] === undefined ? undefined : path.join(root, majors[0], 'bin');
}

/** Postgres refuses to run as root: as root, run its tools as the `postgres` user. */
async function userIds(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([
    run('id', ['-u', 'postgres']),
    run('id', ['-g', 'postgres']),
  ]);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

/**
 * Creates a cluster with `initdb` in a new temporary directory and starts it on a free loopback
 * port. Throws (never skips) when the binaries are missing or fail: the caller decides whether
 * Postgres tests may be skipped.
 */
export async function startDisposablePostgres(
  binDirectory = findPostgresBinaries(),
  startOptions: DisposablePostgresOptions = {},
): Promise<DisposablePostgres> {
  const tool = (name: string) => (binDirectory === undefined ? name : path.join(binDirectory, name));
  const owner = await userIds();
  const directory = mkdtempSync(path.join(tmpdir(), 'socle-postgres-'));
  const dataDirectory = path.join(directory, 'data');
  const logFile = path.join(directory, 'postgres.log');
  if (owner !== undefined) chownSync(directory, owner.uid, owner.gid);
  const exec = async (name: string, args: readonly string[]) => {
    const [command, commandArgs] =
      owner === undefined
        ? [tool(name), [...args]]
        : ['runuser', ['-u', 'postgres', '--', tool(name), ...args]];
    try {
      return (await run(command, commandArgs, { cwd: directory })).stdout;
    } catch (error) {
      const { stderr = '', stdout = '' } = error as { stderr?: string; stdout?: string };
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '';
      throw new Error(
        `${name} ${args.join(' ')} failed: ${(error as Error).message}\n${stdout}${stderr}${log ? `\n--- postgres.log ---\n${log}` : ''}`,
      );
    }
  };

  let running = false;
  let frozen = false;
  let port = 0;
  try {
    if (startOptions.initialize === undefined)
      await exec('initdb', [
        '-D',
        dataDirectory,
        '-A',
        'trust',
        '-U',
        'postgres',
        '-E',
        'UTF8',
        '--no-sync',
        '--no-instructions',
      ]);
    else await startOptions.initialize(dataDirectory, exec);
    port = await freePort();
  } catch (error) {
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
  const settings = Object.entries(startOptions.settings ?? {})
    .map(([name, value]) => ` -c ${name}=${value}`)
    .join('');
  const options = `-p ${port} -k ${directory} -c listen_addresses=127.0.0.1 -c fsync=off${settings}`;

  const server: DisposablePostgres = {
    port,
    directory,
    dataDirectory,
    runTool: exec,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      await exec('pg_ctl', ['-D', dataDirectory, '-l', logFile, '-o', options, '-w', '-t', '60', 'start']);
      running = true;
    },
    async stop(mode = 'fast') {
      await exec('pg_ctl', ['-D', dataDirectory, '-m', mode, '-w', '-t', '60', 'stop']);
      running = false;
    },
    async freeze() {
      for (const pid of await clusterPids(dataDirectory)) process.kill(pid, 'SIGSTOP');
      frozen = true;
    },
    async thaw() {
      for (const pid of await clusterPids(dataDirectory)) process.kill(pid, 'SIGCONT');
      frozen = false;
    },
    async destroy() {
      if (frozen) await server.thaw().catch(() => undefined);
      if (running || existsSync(path.join(dataDirectory, 'postmaster.pid'))) {
        await server.stop('immediate').catch(() => undefined);
      }
      rmSync(directory, { recursive: true, force: true });
    },
  };
  try {
    await server.start();
  } catch (error) {
    await server.destroy();
    throw error;
  }
  return server;
}
