import { defineModule, requireOrg, SocleError } from 'socle';
import { Item, ItemParams, toItem } from '../db-select/items.js';
import type { TenantBenchTables } from '../tenant-select/bench-module.js';

/**
 * `GET /replica-items/:id`: the tenant read of `tenant-select` declared stale-tolerant
 * (`db.replica`): with `DATABASE_REPLICA_URLS` it goes to a replica in rotation that has replayed
 * the client's last write, else (and without replicas) to the primary.
 */
export function createFleetReadModule() {
  return defineModule<TenantBenchTables>({
    name: 'bench_fleet',
    dependsOn: ['bench_tenant'],
    routes(app, { db }) {
      app.get(
        '/replica-items/:id',
        { schema: { params: ItemParams, response: { 200: Item } } },
        async (request) => {
          requireOrg(request);
          const { id } = request.params;
          const row = await db.replica
            .selectFrom('bench_tenant.items')
            .select(['id', 'name', 'price_cents as priceCents', 'created_at as createdAt'])
            .where('id', '=', id)
            .executeTakeFirst();
          if (row === undefined)
            throw new SocleError('bench_fleet.item_not_found', `Item ${id} does not exist`, {
              status: 404,
              details: { id },
            });
          return toItem(row);
        },
      );
    },
  });
}
