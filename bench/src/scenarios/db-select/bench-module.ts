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
 * that validates the id, selects the row and serializes it with its schema. `prepared` is the
 * hot-path form (`db.prepare`: compiled once); `builder` builds and compiles the Kysely query on
 * every request, as most routes do.
 */
export function createBenchModule(query: 'prepared' | 'builder') {
  return defineModule<BenchTables>({
    name: BENCH_SCHEMA,
    migrations: [{ name: '0001_create_items.sql', sql: CREATE_ITEMS_SQL }],
    routes(app, { db }) {
      const findItem = db.prepare((kysely, params: { id: number }) =>
        kysely
          .selectFrom('bench.items')
          .select(['id', 'name', 'price_cents as priceCents', 'created_at as createdAt'])
          .where('id', '=', params.id),
      );
      const select = (id: number) =>
        query === 'prepared'
          ? findItem.executeTakeFirst({ id })
          : db.kysely
              .selectFrom('bench.items')
              .select(['id', 'name', 'price_cents as priceCents', 'created_at as createdAt'])
              .where('id', '=', id)
              .executeTakeFirst();
      app.get('/items/:id', { schema: { params: ItemParams, response: { 200: Item } } }, async (request) => {
        const row = await select(request.params.id);
        if (row === undefined) throw benchErrors.itemNotFound(request.params.id);
        return toItem(row);
      });
    },
  });
}
