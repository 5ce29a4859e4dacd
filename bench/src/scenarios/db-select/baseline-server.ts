/**
 * Child process: the hand-written baseline for `GET /items/:id` — bare Fastify 5 with the same
 * schemas, and the driver used directly (a `pg` Pool with a named prepared statement, or PGlite).
 * Started by the harness; not meant to be run by hand.
 */
import { PGlite } from '@electric-sql/pglite';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import pg from 'pg';
import { runServerChild } from '../../server-child.js';
import type { ServerSettings } from '../../server-protocol.js';
import {
  BENCH_SCHEMA,
  CREATE_ITEMS_SQL,
  Item,
  ItemParams,
  type ItemRow,
  SELECT_ITEM_SQL,
  toItem,
} from './items.js';

/** Runs the select on the chosen database; `close` releases it. */
interface ItemReader {
  findItem(id: number): Promise<ItemRow | undefined>;
  close(): Promise<void>;
}

function openPostgresReader(url: string, poolMax: number): ItemReader {
  const pool = new pg.Pool({ connectionString: url, max: poolMax });
  pool.on('error', (error) => console.error('idle pg client failed:', error));
  return {
    async findItem(id) {
      // Named: Postgres parses and plans it once per connection.
      const result = await pool.query<ItemRow>({ name: 'item_by_id', text: SELECT_ITEM_SQL, values: [id] });
      return result.rows[0];
    },
    close: () => pool.end(),
  };
}

async function openPgliteReader(): Promise<ItemReader> {
  // Its own in-memory database, seeded with the same migration the Socle module applies.
  const pglite = await PGlite.create();
  await pglite.exec(`create schema ${BENCH_SCHEMA}; set search_path to ${BENCH_SCHEMA}; ${CREATE_ITEMS_SQL}`);
  return {
    async findItem(id) {
      const result = await pglite.query<ItemRow>(SELECT_ITEM_SQL, [id]);
      return result.rows[0];
    },
    close: () => pglite.close(),
  };
}

async function startBaseline(settings: ServerSettings) {
  if (settings.dialect === 'postgres' && settings.databaseUrl === undefined) {
    throw new Error('The postgres dialect needs a database URL');
  }
  const reader =
    settings.databaseUrl !== undefined
      ? openPostgresReader(settings.databaseUrl, settings.poolMax)
      : await openPgliteReader();
  const app = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/items/:id',
    { schema: { params: ItemParams, response: { 200: Item } } },
    async (request, reply) => {
      const { id } = request.params;
      const row = await reader.findItem(id);
      if (row === undefined) {
        reply.callNotFound();
        return reply;
      }
      return toItem(row);
    },
  );
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    async close() {
      await app.close();
      await reader.close();
    },
  };
}

runServerChild(startBaseline);
