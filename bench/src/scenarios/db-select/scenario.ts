import type { Scenario } from '../../scenario.js';
import { randomItemId } from './items.js';

/**
 * `GET /items/:id` selecting one row by primary key out of 10k: Socle (module, TypeBox schemas,
 * `db.prepare`, its request pipeline) against bare Fastify with `pg` and a named prepared statement.
 */
export const dbSelect: Scenario = {
  name: 'db-select',
  description:
    'GET /items/:id, a primary-key SELECT: Socle module + db.prepare vs bare Fastify + the driver by hand (pg named prepared statement; PGlite query)',
  dialects: ['postgres', 'pglite'],
  goal: 0.8,
  socleServer: new URL('./socle-server.js', import.meta.url),
  baselineServer: new URL('./baseline-server.js', import.meta.url),
  nextRequest: () => ({ method: 'GET', path: `/items/${randomItemId()}` }),
  probe: { method: 'GET', path: '/items/42' },
};

/** The same route with the Kysely query built and compiled on every request (most routes' style). */
export const dbSelectBuilder: Scenario = {
  ...dbSelect,
  name: 'db-select-builder',
  description:
    'GET /items/:id, a primary-key SELECT: Socle module + Kysely query builder per request vs the same baseline',
  goal: 0.8,
  socleServer: new URL('./socle-builder-server.js', import.meta.url),
};
