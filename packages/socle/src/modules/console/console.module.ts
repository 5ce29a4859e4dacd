import { defineModule, type ModuleDefinition } from '../../kernel/index.js';

/** Where the console is served. */
export const CONSOLE_PATH = '/console/';

/**
 * The operator console: a single-page web client (packages/socle/console, Preact built by esbuild
 * into dist/console-web by `npm run build`) served at /console/. It is a pure client of the HTTP
 * API (sign-in, organizations, jobs, audit, realtime apps, privacy, health): it owns no table, no
 * route and no rule, so every action it takes is an API call, checked and audited like any other.
 *
 * Opt-in (`SOCLE_MODULES=socle/console`): it adds a UI to the public port, which an operator
 * should choose; and instances that do not load it need no front-end build.
 */
export function createConsoleModule(): ModuleDefinition {
  return defineModule({
    name: 'console',
    // The same path from src/modules/console (tests) and dist/modules/console (the built package).
    web: {
      root: new URL('../../../dist/console-web/', import.meta.url),
      path: CONSOLE_PATH,
      singlePage: true,
    },
  });
}
