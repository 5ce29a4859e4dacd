import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { redactUrl } from '../kernel/db/index.js';

/** Where a test database lives. Every database test runs once per dialect. */
export interface TestDatabaseTarget {
  readonly dialect: 'pglite' | 'postgres';
  /** False when the dialect's server is not reachable and not required (never in CI). */
  readonly available: boolean;
  readonly reason: string | undefined;
  /** A fresh, empty database: in-memory PGlite, or a new Postgres database dropped afterwards. */
  create(): Promise<TestDatabase>;
}

export interface TestDatabase {
  readonly dialect: 'pglite' | 'postgres';
  /** The Postgres database name, or the PGlite data directory. */
  readonly name: string;
  /** Connection URL of the new Postgres database; undefined for PGlite. */
  readonly url: string | undefined;
  /** PGlite: the DATA_DIR of a fresh embedded database (PGlite files in `<dataDir>/data`). */
  readonly dataDir: string | undefined;
  drop(): Promise<void>;
}

/** The installed PGlite version (its package.json is not exported, so it is read from disk). */
function pgliteVersion(): string {
  let directory = path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  while (!existsSync(path.join(directory, 'package.json'))) directory = path.dirname(directory);
  return (JSON.parse(readFileSync(path.join(directory, 'package.json'), 'utf8')) as { version: string })
    .version;
}

/**
 * Initializes one empty PGlite data directory per PGlite version and caches it in the temp
 * directory. initdb in WASM takes ~4 s; copying the result and opening it takes ~0.4 s, so every
 * test gets a fresh embedded database from a copy. Safe to call from parallel processes.
 */
export async function preparePgliteTemplate(cacheDir = tmpdir()): Promise<string> {
  const template = path.join(cacheDir, `socle-pglite-template-${pgliteVersion()}`);
  if (existsSync(path.join(template, 'PG_VERSION'))) return template;
  const building = mkdtempSync(path.join(cacheDir, 'socle-pglite-building-'));
  const pglite = await PGlite.create({ dataDir: building });
  await pglite.close();
  try {
    renameSync(building, template);
  } catch {
    rmSync(building, { recursive: true, force: true }); // another process won the race
  }
  return template;
}

/** A fresh embedded database directory, copied from the template when one is prepared. */
export async function createTestPgliteDatabase(): Promise<TestDatabase> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'socle-test-'));
  const template = process.env.SOCLE_TEST_PGLITE_TEMPLATE ?? (await preparePgliteTemplate());
  cpSync(template, path.join(dataDir, 'data'), { recursive: true });
  return {
    dialect: 'pglite',
    name: dataDir,
    url: undefined,
    dataDir,
    drop: async () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

/**
 * The admin URL tests use to create their own databases
 * (`SOCLE_TEST_POSTGRES_URL`, default postgres://postgres@127.0.0.1:5432/postgres).
 */
export function testPostgresAdminUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.SOCLE_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

/**
 * Whether Postgres tests must run: `SOCLE_TEST_POSTGRES=required` (or `CI` set) fails loudly when
 * the server is missing; `auto` (default elsewhere) skips them with a visible reason; `off` skips.
 */
export function postgresRequirement(env: NodeJS.ProcessEnv = process.env): 'required' | 'auto' | 'off' {
  const value = env.SOCLE_TEST_POSTGRES ?? (env.CI ? 'required' : 'auto');
  if (value !== 'required' && value !== 'auto' && value !== 'off') {
    throw new Error(`SOCLE_TEST_POSTGRES must be required, auto or off, got "${value}"`);
  }
  return value;
}

async function probe(url: string): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return undefined;
  } catch (error) {
    return (error as Error).message || String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

async function runAdmin(adminUrl: string, statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/**
 * Creates an empty Postgres database named `<prefix>_<time>_<random>` through `adminUrl`;
 * `drop()` removes it, forcing out any session left, and may be called more than once.
 */
export async function createTestPostgresDatabase(
  adminUrl = testPostgresAdminUrl(),
  prefix = 'socle_test',
): Promise<TestDatabase> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  try {
    await runAdmin(adminUrl, `create database ${name}`);
  } catch (error) {
    throw new Error(
      `Cannot create database ${name} through ${redactUrl(adminUrl)}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  let dropping: Promise<void> | undefined;
  return {
    dialect: 'postgres',
    name,
    url: withDatabase(adminUrl, name),
    dataDir: undefined,
    drop() {
      dropping ??= runAdmin(adminUrl, `drop database if exists ${name} with (force)`);
      return dropping;
    },
  };
}

let postgresProbe: Promise<string | undefined> | undefined;

/** The dialects every database test runs on. */
export async function testDatabaseTargets(
  env: NodeJS.ProcessEnv = process.env,
): Promise<TestDatabaseTarget[]> {
  const requirement = postgresRequirement(env);
  const adminUrl = testPostgresAdminUrl(env);
  let failure: string | undefined = 'SOCLE_TEST_POSTGRES=off';
  if (requirement !== 'off') {
    postgresProbe ??= probe(adminUrl);
    failure = await postgresProbe;
    if (failure !== undefined && requirement === 'required') {
      throw new Error(
        `Postgres is required for these tests (SOCLE_TEST_POSTGRES=required or CI set) but ${adminUrl} is unreachable: ${failure}`,
      );
    }
  }
  return [
    {
      dialect: 'pglite',
      available: true,
      reason: undefined,
      create: createTestPgliteDatabase,
    },
    {
      dialect: 'postgres',
      available: failure === undefined,
      reason: failure === undefined ? undefined : `Postgres tests skipped: ${failure}`,
      create: () => createTestPostgresDatabase(adminUrl),
    },
  ];
}
