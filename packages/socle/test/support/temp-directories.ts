import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTestPgliteDatabase, type TestDatabase } from '../../src/testing/index.js';

const created: string[] = [];
const embedded: TestDatabase[] = [];

/** A fresh, empty directory under the system temp dir, removed by `removeTempDirectories()`. */
export function createTempDirectory(prefix = 'socle-test-'): string {
  const directory = mkdtempSync(path.join(tmpdir(), prefix));
  created.push(directory);
  return directory;
}

/**
 * A DATA_DIR holding an initialized, empty embedded database (copied from the PGlite template:
 * opening one takes well under a second, creating one several), for tests that are not about the
 * very first start. Removed by `removeTempDirectories()`.
 */
export async function createEmbeddedDataDirectory(): Promise<string> {
  const database = await createTestPgliteDatabase();
  embedded.push(database);
  if (database.dataDir === undefined) throw new Error('createTestPgliteDatabase() returned no dataDir');
  return database.dataDir;
}

/** Removes every directory made here; call from afterAll. */
export async function removeTempDirectories(): Promise<void> {
  for (const directory of created.splice(0)) rmSync(directory, { recursive: true, force: true });
  await Promise.all(embedded.splice(0).map((database) => database.drop()));
}
