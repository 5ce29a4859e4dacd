/**
 * Child process: one node of the `fleet` scenario. The `tenant-select` server (identity, tenancy,
 * mail, the tenant bench module and its seed) plus a route reading the same row through
 * `db.replica`, with `DATABASE_REPLICA_URLS` when the harness gives replicas. Several run at once
 * on one database: the harness starts them one after the other (the first migrates and seeds, the
 * others find both done).
 */
import { createIdentityModule, createSocle, createTenancyModule } from 'socle';
import { runServerChild } from '../../server-child.js';
import { benchMailModule, benchSocleConfig } from '../shared/socle-setup.js';
import { createTenantBenchModule } from '../tenant-select/bench-module.js';
import { serveTenantItems } from '../tenant-select/serve-tenant-items.js';
import { createFleetReadModule } from './replica-read-module.js';

runServerChild(async (settings) => {
  if (settings.dialect !== 'postgres') throw new Error('fleet runs on Postgres only');
  const socle = await createSocle({
    config: benchSocleConfig(settings, {
      databaseReplicaUrls: settings.replicaUrls ?? [],
      // HAProxy adds X-Forwarded-For, as in deploy/haproxy.
      trustProxy: 1,
    }),
    modules: [
      createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
      createTenancyModule(),
      benchMailModule(),
      createTenantBenchModule(),
      createFleetReadModule(),
    ],
  });
  return serveTenantItems(socle);
});
