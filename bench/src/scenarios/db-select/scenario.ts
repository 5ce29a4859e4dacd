import type { Scenario } from '../../scenario.js';
import { randomItemId } from './items.js';

/**
 * `GET /items/:id` selecting one row by primary key out of 10k: Socle (module, TypeBox schemas,
 * Kysely, its request pipeline) against bare Fastify with `pg` and a named prepared statement.
 */
export const dbSelect: Scenario = {
  name: 'db-select',
  description:
    'GET /items/:id, a primary-key SELECT: Socle module + Kysely vs bare Fastify + the driver by hand (pg named prepared statement; PGlite query)',
  dialects: ['postgres', 'pglite'],
  goal: 0.8,
  socleServer: new URL('./socle-server.js', import.meta.url),
  baselineServer: new URL('./baseline-server.js', import.meta.url),
  nextRequest: () => ({ method: 'GET', path: `/items/${randomItemId()}` }),
  probe: { method: 'GET', path: '/items/42' },
};
