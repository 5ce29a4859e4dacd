/** Socle serving `GET /items/:id` from the bench module, on Postgres or PGlite, in a child process. */
import { createSocle } from 'socle';
import { runServerChild } from '../../server-child.js';
import { benchSocleConfig } from '../shared/socle-setup.js';
import { createBenchModule } from './bench-module.js';

export function serveSocle(query: 'prepared' | 'builder'): void {
  runServerChild(async (settings) => {
    const config = benchSocleConfig(settings);
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
