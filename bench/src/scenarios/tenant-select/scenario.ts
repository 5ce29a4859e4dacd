import type { Scenario } from '../../scenario.js';
import { randomItemId } from '../db-select/items.js';

/**
 * `GET /tenant-items/:id` as a signed-in member of an organization: Socle verifies the access
 * token, resolves `X-Org-Id` (membership, cached) and runs a prepared primary-key select that carries
 * `app.tenant_id` in its own implicit transaction (one round trip), so row-level security confines
 * it to the tenant. The
 * baseline does the same select with the tenant in its `where`, without authentication.
 */
export const tenantSelect: Scenario = {
  name: 'tenant-select',
  description:
    'GET /tenant-items/:id as an org member: Socle JWT auth + X-Org-Id + tenant-scoped statement (one round trip) + RLS + db.prepare vs bare Fastify + pg selecting by (tenant_id, id), no auth',
  dialects: ['postgres'],
  goal: 0.7,
  socleServer: new URL('./socle-server.js', import.meta.url),
  baselineServer: new URL('./baseline-server.js', import.meta.url),
  nextRequest: () => ({ method: 'GET', path: `/tenant-items/${randomItemId()}` }),
  probe: { method: 'GET', path: '/tenant-items/42' },
};
