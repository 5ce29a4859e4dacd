import { defineModule, requireOrg, SocleError } from 'socle';
import { Item, ItemParams, toItem } from '../db-select/items.js';
import { CREATE_TENANT_ITEMS_SQL, PriceChange, TENANT_SCHEMA, type TenantItemTable } from './tenant-items.js';

/** The tables of the tenant bench module, as Kysely sees them. */
export interface TenantBenchTables {
  'bench_tenant.items': TenantItemTable;
}

const benchErrors = {
  itemNotFound: (id: number) =>
    new SocleError('bench_tenant.item_not_found', `Item ${id} does not exist`, {
      status: 404,
      details: { id },
    }),
};

/**
 * What an app author writes for a tenant-scoped read: a tenant table with a forced RLS policy,
 * and a route that requires the current organization and runs a prepared primary-key select with
 * no tenant filter of its own. Run outside a transaction, the statement carries `app.tenant_id`
 * and `app.user_id` of the request scope (see docs/tenancy.md).
 */
export function createTenantBenchModule() {
  return defineModule<TenantBenchTables>({
    name: TENANT_SCHEMA,
    dependsOn: ['tenancy'],
    migrations: [{ name: '0001_create_items.sql', sql: CREATE_TENANT_ITEMS_SQL }],
    routes(app, { db }) {
      const findItem = db.prepare((kysely, params: { id: number }) =>
        kysely
          .selectFrom('bench_tenant.items')
          .select(['id', 'name', 'price_cents as priceCents', 'created_at as createdAt'])
          .where('id', '=', params.id),
      );
      app.get(
        '/tenant-items/:id',
        { schema: { params: ItemParams, response: { 200: Item } } },
        async (request) => {
          requireOrg(request);
          const { id } = request.params;
          // One statement, no transaction: it carries the request's tenant in its own implicit
          // transaction, in the statement's one round trip.
          const row = await findItem.executeTakeFirst({ id });
          if (row === undefined) throw benchErrors.itemNotFound(id);
          return toItem(row);
        },
      );
      // The write of `tenant-write`: one UPDATE … RETURNING confined to the tenant by RLS.
      const setPrice = db.prepare((kysely, params: { id: number; priceCents: number }) =>
        kysely
          .updateTable('bench_tenant.items')
          .set({ price_cents: params.priceCents })
          .where('id', '=', params.id)
          .returning(['id', 'name', 'price_cents as priceCents', 'created_at as createdAt']),
      );
      app.patch(
        '/tenant-items/:id',
        { schema: { params: ItemParams, body: PriceChange, response: { 200: Item } } },
        async (request) => {
          requireOrg(request);
          const { id } = request.params;
          const row = await setPrice.executeTakeFirst({ id, priceCents: request.body.priceCents });
          if (row === undefined) throw benchErrors.itemNotFound(id);
          return toItem(row);
        },
      );
    },
  });
}
