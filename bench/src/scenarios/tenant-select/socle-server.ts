/**
 * Child process: Socle with the identity, tenancy and mail modules and the tenant bench module. At start
 * it signs the bench user in, makes sure the bench organization exists, seeds the tenant table and
 * hands the harness the headers every request carries (access token, organization). Started by the
 * harness.
 */
import { createIdentityModule, createSocle, createTenancyModule } from 'socle';
import { runServerChild } from '../../server-child.js';
import { benchMailModule, benchSocleConfig } from '../shared/socle-setup.js';
import { createTenantBenchModule } from './bench-module.js';
import { serveTenantItems } from './serve-tenant-items.js';

runServerChild(async (settings) => {
  if (settings.dialect !== 'postgres') throw new Error('tenant-select runs on Postgres only');
  const socle = await createSocle({
    config: benchSocleConfig(settings),
    modules: [
      // Long enough for any run: the harness sends the same token for the whole measurement.
      createIdentityModule({ accessTokenTtlSeconds: 3600, rateLimits: false }),
      createTenancyModule(),
      benchMailModule(),
      createTenantBenchModule(),
    ],
  });
  return serveTenantItems(socle);
});
