import type { Scenario } from '../../scenario.js';
import { randomItemId } from '../db-select/items.js';

/**
 * `PATCH /tenant-items/:id` as a signed-in member of an organization: the write the planner costs
 * (`socle plan` reads its CPU per request as the `write` capacity). Socle verifies the access
 * token, resolves `X-Org-Id`, validates the body and runs one prepared `UPDATE … RETURNING` that
 * carries `app.tenant_id` in its own implicit transaction, so row-level security confines it to the
 * tenant. The baseline runs the same update with the tenant in its `where`, without authentication.
 * Same servers as `tenant-select` (their modules serve both routes).
 */
export const tenantWrite: Scenario = {
  name: 'tenant-write',
  description:
    'PATCH /tenant-items/:id as an org member: Socle JWT auth + X-Org-Id + body validation + one tenant-scoped UPDATE … RETURNING (RLS) vs bare Fastify + pg updating by (tenant_id, id), no auth',
  dialects: ['postgres'],
  goal: 0.7,
  socleServer: new URL('../tenant-select/socle-server.js', import.meta.url),
  baselineServer: new URL('../tenant-select/baseline-server.js', import.meta.url),
  nextRequest: () => ({
    method: 'PATCH',
    path: `/tenant-items/${randomItemId()}`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ priceCents: Math.floor(Math.random() * 100_000) }),
  }),
  // The same price on both servers, so both answer the same body.
  probe: {
    method: 'PATCH',
    path: '/tenant-items/42',
    headers: { 'content-type': 'application/json' },
    body: '{"priceCents":4242}',
  },
};
