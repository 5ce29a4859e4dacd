/** Test helpers for Socle modules and apps: fresh databases per dialect, a Socle per test. */
export {
  createTestPgliteDatabase,
  createTestPostgresDatabase,
  postgresRequirement,
  preparePgliteTemplate,
  type TestDatabase,
  type TestDatabaseTarget,
  testDatabaseTargets,
  testPostgresAdminUrl,
} from './test-databases.js';
export { createTestSocle, type TestSocle, type TestSocleOptions } from './test-socle.js';
