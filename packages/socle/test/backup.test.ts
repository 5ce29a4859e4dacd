import { execFile } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { cp } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BACKUP_MANIFEST_FILE, type BackupManifest } from '../src/cli/backup.js';
import { TEST_PASSWORD, TEST_SECRET_KEY, type TestDatabase } from '../src/testing/index.js';
import { killCliProcesses, runCli, spawnCli, waitForListening } from './support/cli-process.js';
import {
  type DisposablePostgres,
  disposablePostgresSetup,
  startDisposablePostgres,
} from './support/disposable-postgres.js';
import { postgresTarget } from './support/each-database.js';
import {
  createEmbeddedDataDirectory,
  createTempDirectory,
  removeTempDirectories,
} from './support/temp-directories.js';

const execFileAsync = promisify(execFile);

/** Each step spawns Node under tsx and opens a database: seconds each on a busy 2-core machine. */
const TIMEOUT_MS = 180_000;
const CLI_TIMEOUT_MS = 90_000;

afterEach(killCliProcesses);
afterAll(removeTempDirectories);

async function signUp(url: string, email: string): Promise<number> {
  const response = await fetch(`${url}/auth/sign-up`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: TEST_PASSWORD }),
  });
  return response.status;
}

async function signIn(url: string, email: string): Promise<number> {
  const response = await fetch(`${url}/auth/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: TEST_PASSWORD }),
  });
  return response.status;
}

/** Runs `work` against a server started with `env`, then stops it (SIGTERM, exit 0). */
async function withServer(env: Record<string, string>, cwd: string, work: (url: string) => Promise<void>) {
  const server = spawnCli(['start'], { cwd, env });
  const url = await waitForListening(server, CLI_TIMEOUT_MS);
  try {
    await work(url);
  } finally {
    server.signal('SIGTERM');
    expect((await server.waitForExit(CLI_TIMEOUT_MS)).code).toBe(0);
  }
}

const manifestOf = (directory: string) =>
  JSON.parse(readFileSync(path.join(directory, BACKUP_MANIFEST_FILE), 'utf8')) as BackupManifest;

describe('socle backup / restore, embedded', { timeout: TIMEOUT_MS }, () => {
  it('backs a running server up between transactions, with its local blobs, and restores it into a new DATA_DIR', async () => {
    const dataDir = await createEmbeddedDataDirectory();
    const env = { DATA_DIR: dataDir };
    // Blobs as the local store keeps them: objects under their keys, an unfinished upload in .tmp.
    mkdirSync(path.join(dataDir, 'blobs', 'files', 'avatars'), { recursive: true });
    writeFileSync(path.join(dataDir, 'blobs', 'files', 'avatars', 'ada.png'), 'ada bytes');
    mkdirSync(path.join(dataDir, 'blobs', '.tmp'), { recursive: true });
    writeFileSync(path.join(dataDir, 'blobs', '.tmp', 'half-written'), 'partial');
    const backupDirectory = path.join(createTempDirectory('socle-backup-'), 'nightly');

    await withServer(env, dataDir, async (url) => {
      expect(await signUp(url, 'ada@example.com')).toBe(201);
      // Taken by the server, which holds the database, while it serves.
      const backup = await runCli(
        ['backup', '--output', backupDirectory],
        { cwd: dataDir, env },
        CLI_TIMEOUT_MS,
      );
      expect(backup.stderr).toBe('');
      expect(backup.code).toBe(0);
      expect(backup.stdout).toMatch(/^Backup written to .*nightly in [\d.]+ s: pglite database/);
      // After the backup: not in it.
      expect(await signUp(url, 'bob@example.com')).toBe(201);
    });

    const manifest = manifestOf(backupDirectory);
    expect(manifest).toMatchObject({
      format: 'socle-backup/1',
      dialect: 'pglite',
      database: { file: 'database.tar.gz' },
      blobs: { included: true, directory: 'blobs', files: 1 },
    });
    expect(existsSync(path.join(backupDirectory, 'blobs', '.tmp'))).toBe(false);
    // A second backup into the same directory is refused, not mixed with the first.
    const again = await runCli(
      ['backup', '--output', backupDirectory],
      { cwd: dataDir, env },
      CLI_TIMEOUT_MS,
    );
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists and is not empty');

    const restoredDir = createTempDirectory('socle-restored-');
    const restoredEnv = { DATA_DIR: restoredDir };
    const restored = await runCli(
      ['restore', backupDirectory],
      { cwd: restoredDir, env: restoredEnv },
      CLI_TIMEOUT_MS,
    );
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(restored.stdout).toContain('Its schema is up to date.');
    expect(readFileSync(path.join(restoredDir, 'blobs', 'files', 'avatars', 'ada.png'), 'utf8')).toBe(
      'ada bytes',
    );
    await withServer(restoredEnv, restoredDir, async (url) => {
      expect(await signIn(url, 'ada@example.com')).toBe(200);
      expect(await signIn(url, 'bob@example.com')).toBe(401);
    });

    // Into a DATA_DIR that holds a database: refused; with --force the old one is moved aside.
    const refused = await runCli(
      ['restore', backupDirectory],
      { cwd: restoredDir, env: restoredEnv },
      CLI_TIMEOUT_MS,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('already holds');
    const forced = await runCli(
      ['restore', backupDirectory, '--force'],
      { cwd: restoredDir, env: restoredEnv },
      CLI_TIMEOUT_MS,
    );
    expect(forced.stderr).toBe('');
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/kept in .*data\.before-restore-/);
    expect(readdirSync(restoredDir).filter((name) => name.startsWith('data.before-restore-'))).toHaveLength(
      1,
    );

    // A damaged backup restores nothing.
    const damaged = path.join(createTempDirectory('socle-damaged-'), 'copy');
    await cp(backupDirectory, damaged, { recursive: true });
    const archive = path.join(damaged, 'database.tar.gz');
    const bytes = readFileSync(archive);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    writeFileSync(archive, bytes);
    const emptyDir = createTempDirectory('socle-empty-');
    const rejected = await runCli(
      ['restore', damaged],
      { cwd: emptyDir, env: { DATA_DIR: emptyDir } },
      CLI_TIMEOUT_MS,
    );
    expect(rejected.code).toBe(1);
    expect(rejected.stderr).toContain('the backup is damaged; nothing was restored');
    expect(existsSync(path.join(emptyDir, 'data'))).toBe(false);

    // Without its key, a backup restores only where SECRET_KEY is that key; refused before any change.
    // (The server is stopped now: this process opens the database itself.)
    const keyless = path.join(createTempDirectory('socle-keyless-'), 'backup');
    const keylessBackup = await runCli(
      ['backup', '--output', keyless, '--without-secret-key'],
      { cwd: dataDir, env },
      CLI_TIMEOUT_MS,
    );
    expect(keylessBackup.code).toBe(0);
    expect(keylessBackup.stdout).toContain('Restoring it needs the secret key of id');
    expect(existsSync(path.join(keyless, 'secret-key'))).toBe(false);
    expect(existsSync(path.join(backupDirectory, 'secret-key'))).toBe(true);
    const noKeyDir = createTempDirectory('socle-no-key-');
    const noKey = await runCli(
      ['restore', keyless],
      { cwd: noKeyDir, env: { DATA_DIR: noKeyDir } },
      CLI_TIMEOUT_MS,
    );
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toContain(`sealed with the key of id ${manifestOf(keyless).secretKey.id}`);
    expect(existsSync(path.join(noKeyDir, 'data'))).toBe(false);
    const secretKey = readFileSync(path.join(dataDir, 'secret-key'), 'utf8').trim();
    const withKey = await runCli(
      ['restore', keyless],
      { cwd: noKeyDir, env: { DATA_DIR: noKeyDir, SECRET_KEY: secretKey } },
      CLI_TIMEOUT_MS,
    );
    expect(withKey.stderr).toBe('');
    expect(withKey.code).toBe(0);
  });
});

describe.skipIf(!postgresTarget.available)(
  'socle backup / restore, Postgres',
  { timeout: TIMEOUT_MS },
  () => {
    const databases: TestDatabase[] = [];
    afterAll(() => Promise.all(databases.map((database) => database.drop())));

    it('dumps a serving database, restores it into a fresh one, never over one that holds Socle', async () => {
      const source = await postgresTarget.create();
      const target = await postgresTarget.create();
      databases.push(source, target);
      const cwd = createTempDirectory('socle-pg-backup-');
      const sourceEnv = { DATABASE_URL: source.url as string, SECRET_KEY: TEST_SECRET_KEY };
      const targetEnv = { DATABASE_URL: target.url as string, SECRET_KEY: TEST_SECRET_KEY };
      const backupDirectory = path.join(cwd, 'backup');

      await withServer(sourceEnv, cwd, async (url) => {
        expect(await signUp(url, 'ada@example.com')).toBe(201);
        const backup = await runCli(
          ['backup', '--output', backupDirectory],
          { cwd, env: sourceEnv },
          CLI_TIMEOUT_MS,
        );
        expect(backup.stderr).toBe('');
        expect(backup.code).toBe(0);
        expect(backup.stdout).toMatch(/postgres database/);
        expect(await signUp(url, 'bob@example.com')).toBe(201);
      });
      expect(manifestOf(backupDirectory)).toMatchObject({
        dialect: 'postgres',
        database: { file: 'database.dump' },
      });

      const restored = await runCli(['restore', backupDirectory], { cwd, env: targetEnv }, CLI_TIMEOUT_MS);
      expect(restored.stderr).toBe('');
      expect(restored.code).toBe(0);
      await withServer(targetEnv, cwd, async (url) => {
        expect(await signIn(url, 'ada@example.com')).toBe(200);
        expect(await signIn(url, 'bob@example.com')).toBe(401);
      });

      // A database that holds Socle is never overwritten, --force or not: the data survives.
      for (const args of [
        ['restore', backupDirectory],
        ['restore', backupDirectory, '--force'],
      ]) {
        const refused = await runCli(args, { cwd, env: sourceEnv }, CLI_TIMEOUT_MS);
        expect(refused.code).toBe(2);
        expect(refused.stderr).toContain('already holds a Socle installation: create a new, empty database');
      }
      await withServer(sourceEnv, cwd, async (url) => {
        expect(await signIn(url, 'bob@example.com')).toBe(200);
      });

      // An embedded backup is not restored into Postgres (nor the reverse): said, nothing done.
      const wrong = await runCli(
        ['restore', backupDirectory],
        { cwd, env: { DATA_DIR: cwd } },
        CLI_TIMEOUT_MS,
      );
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toContain('This is a Postgres backup');
    });
  },
);

const pointInTime = await disposablePostgresSetup();

describe.skipIf(pointInTime.skip)(
  'point-in-time recovery drill (base backup + WAL archive)',
  { timeout: TIMEOUT_MS },
  () => {
    const servers: DisposablePostgres[] = [];
    afterAll(() => Promise.all(servers.map((server) => server.destroy())));

    it('recovers a Socle database to a moment between two writes, from a base backup taken before either', async () => {
      // The archive: where archive_command puts each finished WAL segment (a bucket, in production).
      const archive = createTempDirectory('socle-wal-archive-');
      chmodSync(archive, 0o777);
      const primary = await startDisposablePostgres(pointInTime.binaries, {
        settings: {
          wal_level: 'replica',
          archive_mode: 'on',
          archive_command: `'test ! -f ${archive}/%f && cp %p ${archive}/%f'`,
        },
      });
      servers.push(primary);
      const psql = (server: DisposablePostgres, database: string, sql: string) =>
        server
          .runTool('psql', [
            '-h',
            '127.0.0.1',
            '-p',
            String(server.port),
            '-U',
            'postgres',
            '-d',
            database,
            '-Atc',
            sql,
          ])
          .then((output) => output.trim());
      await psql(primary, 'postgres', 'create database socle');
      // The base backup, before Socle ever ran: everything after it comes from the archive.
      const base = path.join(primary.directory, 'base');
      await primary.runTool('pg_basebackup', [
        '-h',
        '127.0.0.1',
        '-p',
        String(primary.port),
        '-U',
        'postgres',
        '-D',
        base,
        '-X',
        'stream',
      ]);

      const cwd = createTempDirectory('socle-pitr-');
      const primaryUrl = `postgres://postgres@127.0.0.1:${primary.port}/socle`;
      let target = '';
      await withServer({ DATABASE_URL: primaryUrl, SECRET_KEY: TEST_SECRET_KEY }, cwd, async (url) => {
        expect(await signUp(url, 'ada@example.com')).toBe(201);
        target = await psql(primary, 'socle', 'select clock_timestamp()');
        await sleep(1100);
        // The mistake to undo (a bad deploy, a wrong DELETE): written after the target time.
        expect(await signUp(url, 'bob@example.com')).toBe(201);
      });
      // Close the current segment and wait until the archiver has it.
      const segment = await psql(primary, 'postgres', 'select pg_walfile_name(pg_switch_wal())');
      for (let attempt = 0; attempt < 300; attempt++) {
        const archived = await psql(
          primary,
          'postgres',
          "select coalesce(last_archived_wal, '') from pg_stat_archiver",
        );
        if (archived >= segment) break;
        await sleep(100);
      }
      expect(existsSync(path.join(archive, segment))).toBe(true);

      const started = performance.now();
      const recovered = await startDisposablePostgres(pointInTime.binaries, {
        initialize: async (dataDirectory) => {
          await execFileAsync('cp', ['-a', base, dataDirectory]);
          writeFileSync(path.join(dataDirectory, 'recovery.signal'), '');
          appendFileSync(
            path.join(dataDirectory, 'postgresql.auto.conf'),
            `restore_command = 'cp ${archive}/%f %p'\nrecovery_target_time = '${target}'\nrecovery_target_action = 'promote'\n`,
          );
          if (process.getuid?.() === 0)
            await execFileAsync('chown', ['-R', 'postgres:postgres', dataDirectory]);
        },
      });
      servers.push(recovered);
      for (let attempt = 0; attempt < 600; attempt++) {
        if ((await psql(recovered, 'postgres', 'select pg_is_in_recovery()')) === 'f') break;
        await sleep(100);
      }
      expect(await psql(recovered, 'postgres', 'select pg_is_in_recovery()')).toBe('f');
      const recoverySeconds = (performance.now() - started) / 1000;
      // For docs/operations.md: what this recovery took here (base backup copy + WAL replay).
      console.info(`point-in-time recovery drill: recovered in ${recoverySeconds.toFixed(1)} s`);

      await withServer(
        {
          DATABASE_URL: `postgres://postgres@127.0.0.1:${recovered.port}/socle`,
          SECRET_KEY: TEST_SECRET_KEY,
        },
        cwd,
        async (url) => {
          expect(await signIn(url, 'ada@example.com')).toBe(200);
          expect(await signIn(url, 'bob@example.com')).toBe(401);
        },
      );
    });
  },
);
