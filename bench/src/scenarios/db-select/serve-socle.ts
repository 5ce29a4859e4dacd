/** Socle serving `GET /items/:id` from the bench module, on Postgres or PGlite, in a child process. */
import { createSocle, loadConfig } from 'socle';
import { runServerChild } from '../../server-child.js';
import { createBenchModule } from './bench-module.js';

export function serveSocle(query: 'prepared' | 'builder'): void {
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
      modules: [createBenchModule(query)],
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
}
