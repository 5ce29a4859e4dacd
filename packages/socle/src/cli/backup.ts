import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LOCAL_BLOB_TEMPORARY_DIRECTORY, localBlobDirectory } from '../kernel/blobs/index.js';
import type { Config } from '../kernel/config/index.js';
import { applicationRoleStatement, type Database, openDatabase, redactUrl } from '../kernel/db/index.js';
import type { Logger } from '../kernel/log/index.js';
import { createSecretBox, decodeSecretKey, openSecretBox, SECRET_KEY_FILE } from '../kernel/secrets/index.js';
import { SOCLE_VERSION } from '../kernel/version.js';

/**
 * `socle backup` and `socle restore`: one directory holds a whole installation at one moment.
 *
 * - Postgres: `pg_dump --format=custom` (a consistent snapshot while the nodes keep serving) and
 *   `pg_restore --single-transaction` (all or nothing). Point-in-time recovery is Postgres's own
 *   base backup + WAL archive recipe (docs/operations.md#backups), not this command.
 * - Embedded: PGlite's data directory as a gzipped tar, taken by the process that holds it,
 *   between two transactions; while `socle start` runs, the server takes it (control socket).
 * - Local blobs (files' bytes, `DATA_DIR/blobs` or `BLOB_URL=file://`) are copied beside the
 *   database, after it: every object the database lists was complete before the dump began (the
 *   blob store renames a fully written file into place before its row commits), so it is in the
 *   copy unless it was deleted meanwhile. An S3 bucket is not copied: its own versioning or
 *   replication backs it up (the manifest says so).
 *
 * Written by hand around the engines' own tools: there is no maintained Node library for this, and
 * the tools are the ones every Postgres operator already trusts.
 */

export const BACKUP_FORMAT = 'socle-backup/1';
export const BACKUP_MANIFEST_FILE = 'manifest.json';

export interface BackupManifest {
  readonly format: typeof BACKUP_FORMAT;
  readonly socleVersion: string;
  readonly createdAt: string;
  readonly dialect: 'postgres' | 'pglite';
  /** The database, as `pg_dump --format=custom` (postgres) or a gzipped tar of PGlite's directory. */
  readonly database: { readonly file: string; readonly bytes: number; readonly sha256: string };
  readonly blobs:
    | { readonly included: true; readonly directory: string; readonly files: number; readonly bytes: number }
    | { readonly included: false; readonly reason: string };
  /**
   * The key that sealed the stored secrets (TOTP seeds, signing keys, provider credentials): its
   * id, and whether the backup holds it (embedded mode's generated `DATA_DIR/secret-key`). Without
   * that key the restored server cannot open them, so restore checks it before changing anything.
   */
  readonly secretKey: { readonly id: string; readonly included: boolean };
  readonly durationMs: number;
}

/** A refusal the user can fix (exit 2 for usage, 1 for a failure at run time), said in one sentence. */
export class BackupError extends Error {
  constructor(
    message: string,
    readonly usage = false,
  ) {
    super(message);
  }
}

type BackupConfig = Pick<
  Config,
  'databaseUrl' | 'dataDir' | 'baseDir' | 'blobUrl' | 'databaseAppRole' | 'secretKey' | 'previousSecretKeys'
> &
  Parameters<typeof openDatabase>[0]['config'];

/** What the embedded key file of `config` is, when the installation uses one (no SECRET_KEY). */
function embeddedKeyFile(config: BackupConfig): string | undefined {
  if (config.databaseUrl !== undefined || config.secretKey !== undefined) return undefined;
  return path.join(dataDirOf(config), SECRET_KEY_FILE);
}

/** Ids of the keys this configuration opens secrets with: the current one, then previous ones. */
function configuredKeyIds(config: BackupConfig): string[] {
  const ids = config.previousSecretKeys.map((text) => createSecretBox(decodeSecretKey(text) as Buffer).keyId);
  if (config.secretKey !== undefined)
    return [createSecretBox(decodeSecretKey(config.secretKey) as Buffer).keyId, ...ids];
  const file = embeddedKeyFile(config);
  const key =
    file !== undefined && existsSync(file) ? decodeSecretKey(readFileSync(file, 'utf8')) : undefined;
  return key === undefined ? ids : [createSecretBox(key).keyId, ...ids];
}

const dataDirOf = (config: BackupConfig) => path.resolve(config.baseDir, config.dataDir);

/** The default directory of a backup: `socle-backup-<UTC time>` in the working directory. */
export function defaultBackupDirectory(now: Date): string {
  return path.resolve(
    `socle-backup-${now
      .toISOString()
      .replaceAll(':', '-')
      .replace(/\.\d+Z$/, 'Z')}`,
  );
}

/**
 * Writes a backup of the installation `config` describes into `output` (created; must not exist or
 * be empty). `embedded`: the open embedded database, when this process holds it (the server, or
 * the CLI when no server runs); undefined on Postgres.
 */
export async function writeBackup(
  config: BackupConfig,
  output: string,
  embedded: Database | undefined,
  options: { readonly withoutSecretKey?: boolean } = {},
): Promise<BackupManifest> {
  const started = performance.now();
  const keyId = openSecretBox({
    secretKey: config.secretKey,
    previousSecretKeys: config.previousSecretKeys,
    mode: config.databaseUrl === undefined ? 'embedded' : 'postgres',
    dataDir: dataDirOf(config),
  }).keyId;
  await prepareEmptyDirectory(output);
  const createdAt = new Date().toISOString();
  let database: BackupManifest['database'];
  if (config.databaseUrl !== undefined) {
    const file = 'database.dump';
    await runPostgresTool('pg_dump', config.databaseUrl, [
      '--format=custom',
      '--compress=6',
      '--no-password',
      `--file=${path.join(output, file)}`,
    ]);
    database = { file, ...(await digestOf(path.join(output, file))) };
  } else {
    if (embedded?.snapshot === undefined)
      throw new Error('writeBackup: the embedded database is not open here');
    const file = 'database.tar.gz';
    const archive = await embedded.snapshot();
    await writeFile(path.join(output, file), archive, { flag: 'wx' });
    database = {
      file,
      bytes: archive.byteLength,
      sha256: createHash('sha256').update(archive).digest('hex'),
    };
  }
  const blobs = await copyBlobs(config, output);
  // Embedded mode's generated key is part of the installation, as DATA_DIR is: kept with the
  // backup (owner-only) unless asked not to. SECRET_KEY from the environment never is.
  const keyFile = embeddedKeyFile(config);
  const includeKey = keyFile !== undefined && options.withoutSecretKey !== true;
  if (includeKey) {
    await copyFile(keyFile, path.join(output, SECRET_KEY_FILE));
    await chmod(path.join(output, SECRET_KEY_FILE), 0o600);
  }
  const manifest: BackupManifest = {
    format: BACKUP_FORMAT,
    socleVersion: SOCLE_VERSION,
    createdAt,
    dialect: config.databaseUrl === undefined ? 'pglite' : 'postgres',
    database,
    blobs,
    secretKey: { id: keyId, included: includeKey },
    durationMs: Math.round(performance.now() - started),
  };
  await writeFile(path.join(output, BACKUP_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`, {
    flag: 'wx',
  });
  return manifest;
}

/** What `socle restore` did. */
export interface RestoreReport {
  readonly manifest: BackupManifest;
  readonly target: string;
  /** Where the data that was there before went (`--force` on an embedded installation). */
  readonly movedAside: readonly string[];
  readonly durationMs: number;
}

/**
 * Restores the backup in `input` into the installation `config` describes: a Postgres database
 * (DATABASE_URL) that holds no Socle data yet, or an embedded DATA_DIR whose server is stopped.
 * `force` (embedded only): move the current data, blobs and key aside
 * (`<name>.before-restore-<time>`), never delete them. A Postgres database that holds Socle is
 * refused: restore into a new one.
 */
export async function restoreBackup(
  config: BackupConfig,
  input: string,
  options: { readonly force: boolean; readonly log: Logger },
): Promise<RestoreReport> {
  const started = performance.now();
  const manifest = await readManifest(input);
  const databaseFile = path.join(input, manifest.database.file);
  const digest = await digestOf(databaseFile);
  if (digest.sha256 !== manifest.database.sha256 || digest.bytes !== manifest.database.bytes)
    throw new BackupError(
      `${databaseFile} does not match the manifest (sha256 or size differs): the backup is damaged; nothing was restored.`,
    );
  const wanted = config.databaseUrl === undefined ? 'pglite' : 'postgres';
  if (manifest.dialect !== wanted)
    throw new BackupError(
      manifest.dialect === 'postgres'
        ? 'This is a Postgres backup: restore it with DATABASE_URL set to the database to fill.'
        : 'This is an embedded (PGlite) backup: restore it without DATABASE_URL, into a DATA_DIR.',
      true,
    );
  const movedAside: string[] = [];
  const suffix = `before-restore-${new Date().toISOString().replaceAll(':', '-')}`;
  const keyFile = embeddedKeyFile(config);
  const knownKeys = configuredKeyIds(config);
  const installKey = manifest.secretKey.included && keyFile !== undefined;
  if (installKey) {
    if (existsSync(keyFile) && knownKeys[0] !== manifest.secretKey.id && !options.force)
      throw new BackupError(
        `${keyFile} is another key than the one the backup's secrets were sealed with (${manifest.secretKey.id}): restore into an empty DATA_DIR, or pass --force to move it aside.`,
        true,
      );
  } else if (!knownKeys.includes(manifest.secretKey.id))
    throw new BackupError(
      `The backup's stored secrets were sealed with the key of id ${manifest.secretKey.id}, which this configuration does not have: set SECRET_KEY to it (or list it in SECRET_KEYS_PREVIOUS)${manifest.secretKey.included ? `, or restore without SECRET_KEY to use the key the backup holds` : ''}. Nothing was restored.`,
      true,
    );
  const blobDirectory = localBlobDirectory({ blobUrl: config.blobUrl, dataDir: dataDirOf(config) });
  if (manifest.blobs.included && blobDirectory !== undefined && hasEntries(blobDirectory, true)) {
    if (!options.force)
      throw new BackupError(
        `${blobDirectory} already holds files: restore into an empty installation, or pass --force to move them aside.`,
        true,
      );
  }
  let target: string;
  if (config.databaseUrl !== undefined) {
    target = redactUrl(config.databaseUrl);
    await restorePostgres(config, databaseFile, options.force, options.log);
  } else {
    const dataDirectory = path.join(dataDirOf(config), 'data');
    target = dataDirectory;
    if (hasEntries(dataDirectory, false)) {
      if (!options.force)
        throw new BackupError(
          `${dataDirectory} already holds a database: restore into an empty DATA_DIR, or pass --force to move it aside.`,
          true,
        );
      const aside = `${dataDirectory}.${suffix}`;
      await rename(dataDirectory, aside);
      movedAside.push(aside);
    }
    const db = await openDatabase({ config, log: options.log, loadDataDir: await readFile(databaseFile) });
    await db.close();
  }
  if (installKey && knownKeys[0] !== manifest.secretKey.id) {
    if (existsSync(keyFile)) {
      await rename(keyFile, `${keyFile}.${suffix}`);
      movedAside.push(`${keyFile}.${suffix}`);
    }
    await mkdir(path.dirname(keyFile), { recursive: true });
    await copyFile(path.join(input, SECRET_KEY_FILE), keyFile);
    await chmod(keyFile, 0o600);
  }
  if (manifest.blobs.included && blobDirectory !== undefined) {
    if (hasEntries(blobDirectory, true)) {
      const aside = `${blobDirectory}.${suffix}`;
      await rename(blobDirectory, aside);
      movedAside.push(aside);
    }
    await mkdir(path.dirname(blobDirectory), { recursive: true });
    await cp(path.join(input, manifest.blobs.directory), blobDirectory, { recursive: true, force: false });
  }
  return { manifest, target, movedAside, durationMs: Math.round(performance.now() - started) };
}

async function restorePostgres(
  config: BackupConfig,
  dumpFile: string,
  force: boolean,
  log: Logger,
): Promise<void> {
  const url = config.databaseUrl as string;
  const db = await openDatabase({ config, log, outage: false, poolMax: 1 });
  try {
    const holdsSocle = await db.withConnection(async (connection) => {
      const { rows } = await connection.query<{ present: boolean }>(
        `select exists (select 1 from pg_namespace where nspname = 'socle') as present`,
      );
      return rows[0]?.present === true;
    }, 'owner');
    // Never dropped here: a restore goes into a new database, and the old one stays for forensics
    // until the operator drops it (pg_restore --clean also trips on partitioned tables).
    if (holdsSocle)
      throw new BackupError(
        `${redactUrl(url)} already holds a Socle installation: create a new, empty database (createdb), restore into it, then point DATABASE_URL at it.${force ? ' --force applies to embedded installations only.' : ''}`,
        true,
      );
    // The dump grants privileges to the application role; roles belong to the cluster, not to the
    // dump, so a restore into another cluster creates it first.
    await db.withConnection(
      (connection) => connection.execute(applicationRoleStatement(config.databaseAppRole)),
      'owner',
    );
  } finally {
    await db.close();
  }
  await runPostgresTool('pg_restore', url, [
    '--single-transaction',
    '--exit-on-error',
    '--no-owner',
    '--no-password',
    dumpFile,
  ]);
}

async function readManifest(input: string): Promise<BackupManifest> {
  const file = path.join(input, BACKUP_MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new BackupError(`${file} is missing: ${input} is not a Socle backup directory.`, true);
  }
  let manifest: Partial<BackupManifest>;
  try {
    manifest = JSON.parse(text) as Partial<BackupManifest>;
  } catch {
    throw new BackupError(`${file} is not valid JSON: the backup is damaged.`);
  }
  if (
    manifest.format !== BACKUP_FORMAT ||
    manifest.database === undefined ||
    manifest.blobs === undefined ||
    manifest.secretKey === undefined
  )
    throw new BackupError(`${file} is not a ${BACKUP_FORMAT} manifest (format: ${String(manifest.format)}).`);
  const files = [manifest.database.file, manifest.blobs.included ? manifest.blobs.directory : undefined];
  // Names from the file stay inside the backup directory.
  for (const name of files)
    if (name !== undefined && (name.includes('/') || name.includes('\\') || name.startsWith('.')))
      throw new BackupError(`${file} names "${name}", which is not a file of the backup directory.`);
  return manifest as BackupManifest;
}

async function prepareEmptyDirectory(directory: string): Promise<void> {
  if (hasEntries(directory, false))
    throw new BackupError(
      `${directory} already exists and is not empty: choose a new --output directory.`,
      true,
    );
  await mkdir(directory, { recursive: true });
}

/** Whether `directory` exists with something in it (`ignoreTemporary`: the blob store's `.tmp`). */
function hasEntries(directory: string, ignoreTemporary: boolean): boolean {
  if (!existsSync(directory)) return false;
  return readdirSync(directory).some((name) => !(ignoreTemporary && name === LOCAL_BLOB_TEMPORARY_DIRECTORY));
}

async function copyBlobs(config: BackupConfig, output: string): Promise<BackupManifest['blobs']> {
  const source = localBlobDirectory({ blobUrl: config.blobUrl, dataDir: dataDirOf(config) });
  if (source === undefined)
    return {
      included: false,
      reason: 'BLOB_URL is an S3 bucket: back it up with the bucket’s own versioning or replication.',
    };
  const directory = 'blobs';
  const destination = path.join(output, directory);
  await mkdir(destination);
  if (existsSync(source)) {
    const temporary = path.join(source, LOCAL_BLOB_TEMPORARY_DIRECTORY);
    // Objects are immutable once renamed into place; a temporary file is an upload not yet done.
    await cp(source, destination, {
      recursive: true,
      filter: (file) => file !== temporary && !file.startsWith(`${temporary}${path.sep}`),
    });
  }
  const { files, bytes } = await sizeOf(destination);
  return { included: true, directory, files, bytes };
}

async function sizeOf(directory: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const entry of await readdir(directory, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files++;
    bytes += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return { files, bytes };
}

async function digestOf(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { bytes, sha256: hash.digest('hex') };
}

/**
 * Where a Postgres client tool is: `POSTGRES_BIN` when set, else on PATH, else the newest
 * `/usr/lib/postgresql/<major>/bin` (Debian and Ubuntu install the versioned tools there).
 */
export function findPostgresTool(tool: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const directories = [
    ...(env.POSTGRES_BIN ? [env.POSTGRES_BIN] : []),
    ...(env.PATH ?? '').split(path.delimiter).filter(Boolean),
  ];
  for (const directory of directories)
    if (existsSync(path.join(directory, tool))) return path.join(directory, tool);
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .filter((entry) => /^\d+$/.test(entry) && existsSync(path.join(root, entry, 'bin', tool)))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] === undefined ? undefined : path.join(root, majors[0], 'bin', tool);
}

/**
 * Runs pg_dump or pg_restore against `url`. The password goes in the child's environment
 * (PGPASSWORD), not its arguments, which any local user can read in the process list.
 */
async function runPostgresTool(tool: 'pg_dump' | 'pg_restore', url: string, args: readonly string[]) {
  const executable = findPostgresTool(tool);
  if (executable === undefined)
    throw new BackupError(
      `${tool} was not found (PATH, POSTGRES_BIN, /usr/lib/postgresql/*/bin): install the Postgres client tools (Debian: postgresql-client), of the server's major version or newer.`,
    );
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = '';
  const stderr: Buffer[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(executable, [...args, `--dbname=${parsed.toString()}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...(password === '' ? {} : { PGPASSWORD: password }) },
    });
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0)
    throw new BackupError(
      `${tool} failed (exit ${code}) on ${redactUrl(url)}:\n${Buffer.concat(stderr).toString('utf8').trim()}`,
    );
}
