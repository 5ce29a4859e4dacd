import type { FastifyRequest } from 'fastify';
import { type Database, parseLsn, type ReadConsistency, withReadConsistency } from '../db/index.js';
import { httpErrors } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { HttpServer } from './http-server.js';

/**
 * The cookie (and header) that carries the primary's WAL position after a client's last write:
 * the next request of that client, on whichever node, reads from a replica only once it has
 * replayed that far. A browser sends the cookie back by itself; another client echoes the
 * `socle-lsn` response header as a request header.
 */
export const LSN_COOKIE = 'socle_lsn';
export const LSN_HEADER = 'socle-lsn';
/**
 * How long the cookie lives: past it, a replica still behind that write would be far beyond any
 * sensible lag threshold (and out of rotation).
 */
const LSN_COOKIE_MAX_AGE_SECONDS = 300;

const LSN_COOKIE_VALUE = /(?:^|;\s*)socle_lsn=([^;]*)/;

/** The position a request must read at least: header first, then cookie. */
function minimumLsnOf(request: FastifyRequest): bigint | undefined | 'bad-header' {
  const header = request.headers[LSN_HEADER];
  if (typeof header === 'string') return parseLsn(header) ?? 'bad-header';
  const cookie = request.headers.cookie;
  if (cookie === undefined) return undefined;
  const value = LSN_COOKIE_VALUE.exec(cookie)?.[1];
  if (value === undefined) return undefined;
  // A cookie this server did not write (edited, truncated): read from the primary, which is never stale.
  return parseLsn(decodeURIComponent(value)) ?? (1n << 64n) - 1n;
}

/**
 * Read-your-writes across nodes and replicas (installed when `DATABASE_REPLICA_URLS` is set):
 * each request reads `db.replica` under the position its client last wrote at; a request that
 * wrote answers with the primary's new position (cookie and header).
 */
export function installReadYourWrites(app: HttpServer, db: Database, log: Logger): void {
  const consistencies = new WeakMap<FastifyRequest, ReadConsistency>();
  // Callback style, so every later hook and the handler run inside the consistency opened here.
  app.addHook('onRequest', (request, _reply, done) => {
    const minimumLsn = minimumLsnOf(request);
    if (minimumLsn === 'bad-header') {
      done(httpErrors.badRequest(`The ${LSN_HEADER} header must be a WAL position such as 16/B374D848`));
      return;
    }
    const consistency: ReadConsistency = { minimumLsn, wrote: false };
    consistencies.set(request, consistency);
    withReadConsistency(consistency, done);
  });
  app.addHook('onSend', async (request, reply, payload) => {
    if (consistencies.get(request)?.wrote !== true) return payload;
    try {
      const position = await db.primaryPosition();
      if (position !== undefined) {
        reply.header(LSN_HEADER, position);
        reply.header(
          'set-cookie',
          `${LSN_COOKIE}=${position}; Path=/; Max-Age=${LSN_COOKIE_MAX_AGE_SECONDS}; HttpOnly; SameSite=Lax`,
        );
      }
    } catch (error) {
      // The write is done; only its client's next read may land on a replica that has not seen it.
      log.debug({ err: error }, 'Could not read the primary position after a write');
    }
    return payload;
  });
}
