import { createRequire } from 'node:module';

/** The version of the `socle` package (its package.json), readable without loading the rest. */
export const SOCLE_VERSION: string = (
  createRequire(import.meta.url)('../../package.json') as { version: string }
).version;
