import type { Socle } from 'socle';
import type { StartedServer } from '../../server-child.js';
import { ensureBenchOrg, signInBenchUser } from '../shared/socle-setup.js';
import {
  ANALYZE_TENANT_ITEMS_SQL,
  BENCH_ORG_SLUG,
  OTHER_TENANT_ID,
  SEED_TENANT_ITEMS_SQL,
} from './tenant-items.js';

/**
 * Makes a created Socle (with the tenant bench module) ready for a tenant-scoped load: signs the
 * bench user in, makes sure the bench organization exists, seeds the tenant table, listens, and
 * hands the harness the headers every request carries (access token, organization). Closes Socle
 * if any step fails.
 */
export async function serveTenantItems(socle: Socle): Promise<StartedServer> {
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
      close: async () => void (await socle.close()),
    };
  } catch (error) {
    await socle.close();
    throw error;
  }
}
