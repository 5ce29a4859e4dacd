/**
 * Child process: the hand-written baseline for `GET /tenant-items/:id` (and `PATCH` for
 * `tenant-write`) — bare Fastify 5 with the
 * same schemas and a `pg` Pool with a named prepared statement selecting by `tenant_id` and `id`.
 * No authentication, no transaction, no row-level security (it connects as the owner): the
 * organization comes from the `X-Org-Id` header as is. Started by the harness after the Socle
 * server, whose start created the organization and the rows.
 */
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import pg from 'pg';
import { runServerChild } from '../../server-child.js';
import { Item, ItemParams, type ItemRow, toItem } from '../db-select/items.js';
import {
  BENCH_ORG_SLUG,
  PriceChange,
  SELECT_TENANT_ITEM_SQL,
  UPDATE_TENANT_ITEM_SQL,
} from './tenant-items.js';

const Failure = Type.Object({ message: Type.String() });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

runServerChild(async (settings) => {
  if (settings.databaseUrl === undefined) throw new Error('tenant-select runs on Postgres only');
  const pool = new pg.Pool({ connectionString: settings.databaseUrl, max: settings.poolMax });
  pool.on('error', (error) => console.error('idle pg client failed:', error));
  const org = await pool.query<{ id: string }>('select id from tenancy.organizations where slug = $1', [
    BENCH_ORG_SLUG,
  ]);
  const orgId = org.rows[0]?.id;
  if (orgId === undefined)
    throw new Error(`organization ${BENCH_ORG_SLUG} not found: the Socle server seeds it`);

  const app = Fastify({ logger: false }).withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    '/tenant-items/:id',
    { schema: { params: ItemParams, response: { 200: Item, 400: Failure } } },
    async (request, reply) => {
      const tenantId = request.headers['x-org-id'];
      if (typeof tenantId !== 'string' || !UUID.test(tenantId)) {
        return reply.code(400).send({ message: 'X-Org-Id must be a UUID' });
      }
      const result = await pool.query<ItemRow>({
        name: 'tenant_item_by_id',
        text: SELECT_TENANT_ITEM_SQL,
        values: [tenantId, request.params.id],
      });
      const row = result.rows[0];
      if (row === undefined) {
        reply.callNotFound();
        return reply;
      }
      return toItem(row);
    },
  );
  app.patch(
    '/tenant-items/:id',
    { schema: { params: ItemParams, body: PriceChange, response: { 200: Item, 400: Failure } } },
    async (request, reply) => {
      const tenantId = request.headers['x-org-id'];
      if (typeof tenantId !== 'string' || !UUID.test(tenantId)) {
        return reply.code(400).send({ message: 'X-Org-Id must be a UUID' });
      }
      const result = await pool.query<ItemRow>({
        name: 'tenant_item_set_price',
        text: UPDATE_TENANT_ITEM_SQL,
        values: [tenantId, request.params.id, request.body.priceCents],
      });
      const row = result.rows[0];
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
    requestHeaders: { 'x-org-id': orgId },
    async close() {
      await app.close();
      await pool.end();
    },
  };
});
