/**
 * Child process: one Socle node of the realtime-burst scenario (Postgres + Redis), with the
 * realtime gateway (configured app, webhooks to the harness's receiver) and the tenant bench
 * module, so the same node answers `/readyz`, a tenant-scoped GET and the burst's WebSockets.
 */
import { createIdentityModule, createRealtimeModule, createSocle, createTenancyModule } from 'socle';
import { runServerChild } from '../../server-child.js';
import { benchMailModule, benchSocleConfig } from '../shared/socle-setup.js';
import { createTenantBenchModule } from '../tenant-select/bench-module.js';
import { serveTenantItems } from '../tenant-select/serve-tenant-items.js';
import { BURST_APP } from './burst-app.js';

runServerChild(async (settings) => {
  if (settings.dialect !== 'postgres' || settings.redisUrl === undefined)
    throw new Error('realtime-burst runs on Postgres + Redis only');
  const socle = await createSocle({
    config: benchSocleConfig(settings, {
      redisUrl: settings.redisUrl,
      moduleSettings: {
        realtime: {
          appId: BURST_APP.id,
          appKey: BURST_APP.key,
          appSecret: BURST_APP.secret,
          webhookUrl: settings.webhookUrl,
          // Each burst client joins 1,000 channels on one socket (issue 11's run).
          maxChannelsPerConnection: 1000,
        },
      },
    }),
    modules: [
      createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
      createTenancyModule(),
      benchMailModule(),
      createRealtimeModule(),
      createTenantBenchModule(),
    ],
  });
  return serveTenantItems(socle);
});
