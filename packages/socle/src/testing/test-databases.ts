import { randomBytes } from 'node:crypto';
import pg from 'pg';

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
  /** Connection URL of the new Postgres database; undefined for PGlite (in memory). */
  readonly url: string | undefined;
  drop(): Promise<void>;
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

/** Creates an empty Postgres database with a unique name; `drop()` removes it (forcing out sessions). */
export async function createTestPostgresDatabase(adminUrl = testPostgresAdminUrl()): Promise<TestDatabase> {
  const name = `socle_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  return {
    dialect: 'postgres',
    url: withDatabase(adminUrl, name),
    async drop() {
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
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
      create: async () => ({ dialect: 'pglite', url: undefined, drop: async () => undefined }),
    },
    {
      dialect: 'postgres',
      available: failure === undefined,
      reason: failure === undefined ? undefined : `Postgres tests skipped: ${failure}`,
      create: () => createTestPostgresDatabase(adminUrl),
    },
  ];
}
