import { describe } from 'vitest';
import { type TestDatabaseTarget, testDatabaseTargets } from '../../src/testing/index.js';

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
