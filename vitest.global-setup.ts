import { preparePgliteTemplate } from './packages/socle/src/testing/test-databases.js';

/** Builds the PGlite template once per run so each test copies it instead of running initdb. */
export default async function setup() {
  process.env.SOCLE_TEST_PGLITE_TEMPLATE = await preparePgliteTemplate();
}
