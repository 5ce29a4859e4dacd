/**
 * Socle's realtime gateway with one app (bench-key/bench-secret) and a memory probe route. With
 * `sharedPort`, one of several such processes sharing that port (SO_REUSEPORT) over Redis, as
 * `socle start --processes N` runs them.
 */
import {
  createIdentityModule,
  createRealtimeModule,
  createSocle,
  createTenancyModule,
  defineModule,
} from 'socle';
import { runServerChild } from '../../server-child.js';
import { benchMailModule, benchSocleConfig } from '../shared/socle-setup.js';
import { BENCH_APP } from './bench-app.js';
import { measuredMemory } from './memory-route.js';

runServerChild(async (settings) => {
  const config = benchSocleConfig(settings, {
    moduleSettings: { realtime: { appId: BENCH_APP.id, appKey: BENCH_APP.key, appSecret: BENCH_APP.secret } },
    ...(settings.sharedPort === undefined ? {} : { port: settings.sharedPort }),
    ...(settings.redisUrl === undefined ? {} : { redisUrl: settings.redisUrl }),
  });
  const probe = defineModule({
    name: 'bench_memory',
    routes(app) {
      app.get('/bench/memory', async () => measuredMemory());
    },
  });
  const socle = await createSocle({
    config,
    modules: [
      createIdentityModule(),
      benchMailModule(),
      createTenancyModule(),
      createRealtimeModule(),
      probe,
    ],
    ...(settings.dialect === 'pglite' ? { inMemory: true } : {}),
  });
  const url = await socle.listen({ reusePort: settings.sharedPort !== undefined });
  return { url, close: async () => void (await socle.close()) };
});
