/**
 * A private Postgres primary and its streaming replica (pg_basebackup), for the fleet and
 * read-replica tests and the `fleet` bench scenario.
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where Debian installs the Postgres 15 server binaries (initdb, pg_ctl, pg_basebackup). */
export const POSTGRES_BIN = process.env.SOCLE_TEST_POSTGRES_BIN ?? '/usr/lib/postgresql/15/bin';

/** Whether this machine can build a private primary + streaming replica pair. */
export function canRunPrivateClusters(): boolean {
  return existsSync(path.join(POSTGRES_BIN, 'pg_basebackup'));
}

/** A free TCP port on 127.0.0.1 (asked of the kernel, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A Postgres primary and a streaming replica made with pg_basebackup, owned by one test. */
export interface StreamingPair {
  readonly primaryUrl: string;
  readonly replicaUrl: string;
  /** Runs SQL as the superuser on the primary or the replica (psql, one round trip). */
  sql(target: 'primary' | 'replica', text: string): Promise<string>;
  /** Stops the replica at once (`pg_ctl stop -m immediate`): a dead replica. */
  stopReplica(): Promise<void>;
  startReplica(): Promise<void>;
  /** Waits (bounded) until the replica has replayed everything the primary has written so far. */
  waitForReplay(): Promise<void>;
  /** Stops both clusters and removes their directory. */
  destroy(): Promise<void>;
}

/**
 * Builds a primary (initdb, on a free port) and a replica of it (pg_basebackup -R, another port),
 * both in a temporary directory this process owns; `destroy()` removes everything. Run as root,
 * the servers run as the `postgres` user (Postgres refuses root).
 */
export async function createStreamingPair(): Promise<StreamingPair> {
  const directory = mkdtempSync(path.join(tmpdir(), 'socle-replica-'));
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? await run('id', ['-u', 'postgres']).then(({ stdout }) => Number(stdout)) : undefined;
  const ownerGroup = asRoot
    ? await run('id', ['-g', 'postgres']).then(({ stdout }) => Number(stdout))
    : undefined;
  if (owner !== undefined && ownerGroup !== undefined) chownSync(directory, owner, ownerGroup);
  const postgresTool = (tool: string, args: readonly string[]) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', path.join(POSTGRES_BIN, tool), ...args], { cwd: directory })
      : run(path.join(POSTGRES_BIN, tool), [...args], { cwd: directory });
  const primaryDir = path.join(directory, 'primary');
  const replicaDir = path.join(directory, 'replica');
  const primaryPort = await freePort();
  const replicaPort = await freePort();
  const started: string[] = [];
  const pgCtl = (dataDir: string, action: 'start' | 'stop', mode = 'fast') =>
    action === 'start'
      ? postgresTool('pg_ctl', ['-D', dataDir, '-l', `${dataDir}.log`, '-w', '-t', '30', 'start'])
      : postgresTool('pg_ctl', ['-D', dataDir, '-m', mode, '-w', 'stop']);
  const destroy = async () => {
    for (const dataDir of started.reverse()) await pgCtl(dataDir, 'stop', 'immediate').catch(() => undefined);
    rmSync(directory, { recursive: true, force: true });
  };
  try {
    await postgresTool('initdb', [
      '-D',
      primaryDir,
      '-U',
      'postgres',
      '--auth=trust',
      '--no-sync',
      '-E',
      'UTF8',
    ]);
    await appendFile(
      path.join(primaryDir, 'postgresql.conf'),
      [
        `port = ${primaryPort}`,
        "listen_addresses = '127.0.0.1'",
        `unix_socket_directories = '${directory}'`,
        'wal_level = replica',
        'max_wal_senders = 4',
        'fsync = off',
        'max_connections = 200',
        '',
      ].join('\n'),
    );
    await pgCtl(primaryDir, 'start');
    started.push(primaryDir);
    await postgresTool('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primaryPort),
      '-U',
      'postgres',
      '-D',
      replicaDir,
      '-R',
      '-X',
      'stream',
      '--no-sync',
    ]);
    await appendFile(path.join(replicaDir, 'postgresql.conf'), `port = ${replicaPort}\nhot_standby = on\n`);
    await pgCtl(replicaDir, 'start');
    started.push(replicaDir);
  } catch (error) {
    await destroy();
    throw error;
  }
  const urlOf = (port: number) => `postgres://postgres@127.0.0.1:${port}/postgres`;
  const sql = async (target: 'primary' | 'replica', text: string) => {
    const port = target === 'primary' ? primaryPort : replicaPort;
    const { stdout } = await run(path.join(POSTGRES_BIN, 'psql'), [
      '-X',
      '-q',
      '-A',
      '-t',
      '-v',
      'ON_ERROR_STOP=1',
      '-d',
      urlOf(port),
      '-c',
      text,
    ]);
    return stdout.trim();
  };
  return {
    primaryUrl: urlOf(primaryPort),
    replicaUrl: urlOf(replicaPort),
    sql,
    async stopReplica() {
      await pgCtl(replicaDir, 'stop', 'immediate');
    },
    async startReplica() {
      await pgCtl(replicaDir, 'start');
    },
    async waitForReplay() {
      const target = await sql('primary', 'select pg_current_wal_lsn()');
      for (let attempt = 0; attempt < 300; attempt++) {
        const caughtUp = await sql('replica', `select pg_last_wal_replay_lsn() >= '${target}'::pg_lsn`).catch(
          () => 'f',
        );
        if (caughtUp === 't') return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`the replica did not replay up to ${target} within 15 s`);
    },
    destroy,
  };
}
