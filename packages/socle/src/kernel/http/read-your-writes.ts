import type { FastifyRequest } from 'fastify';
import {
  type Database,
  EVERY_DATABASE,
  formatLsn,
  PRIMARY_DATABASE,
  parseLsn,
  type ReadConsistency,
  withReadConsistency,
} from '../db/index.js';
import { httpErrors } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { HttpServer } from './http-server.js';

/**
 * The cookie (and header) that carries the WAL position of a client's last write on each database
 * (the primary; with `SHARDS`, each shard written on): the next request of that client, on
 * whichever node, reads from a replica of a database only once it has replayed that far. A
 * browser sends the cookie back by itself; another client echoes the `socle-lsn` response header
 * as a request header. Its value is the primary's position (`0/3000148`), and a shard's as
 * `name:position`, comma-separated in the header (`0/3000148, eu1:0/5A0012C8`) and separated by
 * dots in the cookie, where commas and spaces are not allowed (`0/3000148.eu1:0/5A0012C8`).
 */
export const LSN_COOKIE = 'socle_lsn';
export const LSN_HEADER = 'socle-lsn';
/**
 * How long the cookie lives: past it, a replica still behind that write would be far beyond any
 * sensible lag threshold (and out of rotation).
 */
const LSN_COOKIE_MAX_AGE_SECONDS = 300;

const LSN_COOKIE_VALUE = /(?:^|;\s*)socle_lsn=([^;]*)/;
/** `name:` before a shard's position (the shard names `SHARDS` allows). */
const DATABASE_PREFIX = /^([a-z0-9][a-z0-9_-]{0,62}):(.*)$/;

/** The positions a `socle-lsn` value names, by database; undefined if it is not one. */
function parsePositions(value: string): Map<string, bigint> | undefined {
  const positions = new Map<string, bigint>();
  for (const entry of value.split(/[,.]/)) {
    const prefixed = DATABASE_PREFIX.exec(entry.trim());
    const database = prefixed?.[1] ?? PRIMARY_DATABASE;
    const lsn = parseLsn(prefixed?.[2] ?? entry);
    if (lsn === undefined || positions.has(database)) return undefined;
    positions.set(database, lsn);
  }
  return positions;
}

/** The `socle-lsn` value of `positions` (`pg_lsn` texts by database): the primary's first, bare. */
function formatPositions(positions: ReadonlyMap<string, string>, separator: ', ' | '.'): string {
  return [...positions]
    .sort(([a], [b]) => (a === PRIMARY_DATABASE ? -1 : b === PRIMARY_DATABASE ? 1 : a.localeCompare(b)))
    .map(([database, lsn]) => (database === PRIMARY_DATABASE ? lsn : `${database}:${lsn}`))
    .join(separator);
}

/** The positions a request must read at least: header first, then cookie. */
function minimumLsnOf(request: FastifyRequest): Map<string, bigint> | 'bad-header' {
  const header = request.headers[LSN_HEADER];
  if (typeof header === 'string') return parsePositions(header) ?? 'bad-header';
  const cookie = request.headers.cookie;
  if (cookie === undefined) return new Map();
  const value = LSN_COOKIE_VALUE.exec(cookie)?.[1];
  if (value === undefined) return new Map();
  let decoded: string | undefined;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    decoded = undefined;
  }
  // A cookie this server did not write (edited, truncated): read from the primaries, never stale.
  return (
    (decoded === undefined ? undefined : parsePositions(decoded)) ??
    new Map([[EVERY_DATABASE, (1n << 64n) - 1n]])
  );
}

/**
 * Read-your-writes across nodes and replicas (installed when `DATABASE_REPLICA_URLS` is set, or a
 * shard has replicas): each request reads `db.replica` under the positions its client last wrote
 * at; a request that wrote answers with the new position of each database it wrote on that has
 * replicas, with the others it was sent (cookie and header).
 */
export function installReadYourWrites(app: HttpServer, db: Database, log: Logger): void {
  const consistencies = new WeakMap<FastifyRequest, ReadConsistency>();
  // Callback style, so every later hook and the handler run inside the consistency opened here.
  app.addHook('onRequest', (request, _reply, done) => {
    const minimumLsn = minimumLsnOf(request);
    if (minimumLsn === 'bad-header') {
      done(
        httpErrors.badRequest(
          `The ${LSN_HEADER} header must be WAL positions such as 16/B374D848 (a shard's as eu1:16/B374D848, comma-separated)`,
        ),
      );
      return;
    }
    const consistency: ReadConsistency = { minimumLsn, wroteOn: new Set() };
    consistencies.set(request, consistency);
    withReadConsistency(consistency, done);
  });
  app.addHook('onSend', async (request, reply, payload) => {
    const consistency = consistencies.get(request);
    if (consistency === undefined || consistency.wroteOn.size === 0) return payload;
    try {
      const positions = new Map<string, string>();
      for (const [database, lsn] of consistency.minimumLsn)
        if (database !== EVERY_DATABASE) positions.set(database, formatLsn(lsn));
      let changed = false;
      for (const database of consistency.wroteOn) {
        const position = await db.positionOf(database);
        if (position === undefined) continue;
        positions.set(database, position);
        changed = true;
      }
      if (changed) {
        reply.header(LSN_HEADER, formatPositions(positions, ', '));
        reply.header(
          'set-cookie',
          `${LSN_COOKIE}=${formatPositions(positions, '.')}; Path=/; Max-Age=${LSN_COOKIE_MAX_AGE_SECONDS}; HttpOnly; SameSite=Lax`,
        );
      }
    } catch (error) {
      // The write is done; only its client's next read may land on a replica that has not seen it.
      log.debug({ err: error }, 'Could not read the position of a database written on');
    }
    return payload;
  });
}
