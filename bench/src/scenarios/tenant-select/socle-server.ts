/**
 * Child process: Socle with the identity, tenancy and mail modules and the tenant bench module. At start
 * it signs the bench user in, makes sure the bench organization exists, seeds the tenant table and
 * hands the harness the headers every request carries (access token, organization). Started by the
 * harness.
 */
import { createIdentityModule, createSocle, createTenancyModule } from 'socle';
import { runServerChild } from '../../server-child.js';
import { benchMailModule, benchSocleConfig, ensureBenchOrg, signInBenchUser } from '../shared/socle-setup.js';
import { createTenantBenchModule } from './bench-module.js';
import {
  ANALYZE_TENANT_ITEMS_SQL,
  BENCH_ORG_SLUG,
  OTHER_TENANT_ID,
  SEED_TENANT_ITEMS_SQL,
} from './tenant-items.js';

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
  try {
    const accessToken = await signInBenchUser(socle.app);
    const orgId = await ensureBenchOrg(socle.app, accessToken, BENCH_ORG_SLUG);
    // Seeding for two tenants at once is the owner's work (RLS would confine the app role to one).
    await socle.db.withConnection(async (connection) => {
      await connection.query(SEED_TENANT_ITEMS_SQL, [orgId, OTHER_TENANT_ID]);
      await connection.execute(ANALYZE_TENANT_ITEMS_SQL);
    }, 'owner');
    const url = await socle.listen();
    return {
      url,
      requestHeaders: { authorization: `Bearer ${accessToken}`, 'x-org-id': orgId },
      async close() {
        await socle.close();
      },
    };
  } catch (error) {
    await socle.close();
    throw error;
  }
});
