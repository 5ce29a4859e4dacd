import { defineModule, SocleError } from 'socle';
import { BENCH_SCHEMA, CREATE_ITEMS_SQL, Item, ItemParams, type ItemTable, toItem } from './items.js';

/** The tables of the bench module, as Kysely sees them. */
export interface BenchTables {
  'bench.items': ItemTable;
}

const benchErrors = {
  itemNotFound: (id: number) =>
    new SocleError('bench.item_not_found', `Item ${id} does not exist`, { status: 404, details: { id } }),
};

/**
 * What an app author writes for a primary-key read: a module with its migration and one route
 * that validates the id, selects the row through Kysely and serializes it with its schema.
 */
export const benchModule = defineModule<BenchTables>({
  name: BENCH_SCHEMA,
  migrations: [{ name: '0001_create_items.sql', sql: CREATE_ITEMS_SQL }],
  routes(app, { db }) {
    app.get('/items/:id', { schema: { params: ItemParams, response: { 200: Item } } }, async (request) => {
      const row = await db.kysely
        .selectFrom('bench.items')
        .select(['id', 'name', 'price_cents as priceCents', 'created_at as createdAt'])
        .where('id', '=', request.params.id)
        .executeTakeFirst();
      if (row === undefined) throw benchErrors.itemNotFound(request.params.id);
      return toItem(row);
    });
  },
});
