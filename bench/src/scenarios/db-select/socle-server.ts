/**
 * Child process: Socle serving `GET /items/:id` from the bench module, on Postgres or PGlite.
 * Started by the harness; not meant to be run by hand.
 */
import { createSocle, loadConfig } from 'socle';
import { runServerChild } from '../../server-child.js';
import { benchModule } from './bench-module.js';

runServerChild(async (settings) => {
  const config = loadConfig({
    env: {},
    configFile: false,
    overrides: {
      port: 0,
      host: '127.0.0.1',
      logLevel: 'warn',
      logFormat: 'json',
      shutdownTimeoutMs: 2000,
      databaseUrl: settings.databaseUrl,
      databasePoolMax: settings.poolMax,
    },
  });
  const socle = await createSocle({
    config,
    modules: [benchModule],
    ...(settings.dialect === 'pglite' ? { inMemory: true } : {}),
  });
  const url = await socle.listen();
  return {
    url,
    async close() {
      await socle.close();
    },
  };
});
