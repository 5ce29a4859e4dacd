import { afterAll, beforeAll, describe } from 'vitest';
import type { Config } from '../../src/index.js';
import {
  createTestSocle,
  type TestDatabase,
  type TestDatabaseTarget,
  type TestSocle,
  type TestSocleOptions,
  testDatabaseTargets,
} from '../../src/testing/index.js';

/** Every dialect; throws when Postgres is required (CI) but unreachable. */
export const databaseTargets = await testDatabaseTargets();

/**
 * Declares the suite once per dialect (PGlite and Postgres). A dialect that is unavailable
 * outside CI is skipped with its reason in the suite name, so the skip is visible.
 */
export function describeEachDatabase(name: string, body: (target: TestDatabaseTarget) => void): void {
  for (const target of databaseTargets) {
    const title = target.available
      ? `${name} [${target.dialect}]`
      : `${name} [${target.dialect}: ${target.reason}]`;
    describe.skipIf(!target.available)(title, () => body(target));
  }
}

/** The Postgres target, for suites that need several sessions (locks, races, outages). */
export const postgresTarget = databaseTargets.find(
  (target) => target.dialect === 'postgres',
) as TestDatabaseTarget;

/**
 * Starts nodes on one database that the suite creates (beforeAll) and drops (afterAll): nodes come
 * and go with the configuration each is given (say, SECRET_KEY before and after a rotation) while
 * the data stays. Call it in the suite's body.
 */
export function nodesOnSharedDatabase(
  target: TestDatabaseTarget,
  /** Called for each node: modules hold a node's state, so each node needs its own. */
  options: () => Omit<TestSocleOptions, 'database' | 'config'>,
): (config: Partial<Config>) => Promise<TestSocle> {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await target.create();
  });
  afterAll(() => database?.drop());
  return (config) => createTestSocle(target, { ...options(), database, config });
}
