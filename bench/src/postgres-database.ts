import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Admin URL the harness creates its databases with, unless `BENCH_POSTGRES_URL` says otherwise. */
export const DEFAULT_POSTGRES_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database created for one run; `drop` removes it, forcing out any session left. */
export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
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

/** Creates an empty database `socle_bench_<random>` on the server of `adminUrl`. */
export async function createBenchDatabase(adminUrl: string): Promise<BenchDatabase> {
  const name = `socle_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  try {
    await runAdmin(adminUrl, `create database ${name}`);
  } catch (error) {
    throw new Error(
      `Cannot create the bench database through ${redactPassword(adminUrl)} (set BENCH_POSTGRES_URL): ${(error as Error).message}`,
      { cause: error },
    );
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropping: Promise<void> | undefined;
  return {
    name,
    url: url.toString(),
    drop() {
      dropping ??= runAdmin(adminUrl, `drop database if exists ${name} with (force)`);
      return dropping;
    },
  };
}

function redactPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
