import { AsyncLocalStorage } from 'node:async_hooks';
import type { DatabaseBackend, Privilege } from './backend.js';
import { databaseErrors } from './database-errors.js';

/** Whether the request of the current async context has asked for a session yet. */
interface Admission {
  leased: boolean;
}

/**
 * Load shedding of the request pool: a request whose **first** lease of a database session finds
 * `maxQueue` callers or more already waiting for one is refused at once with 503 `db.overloaded`
 * (and `Retry-After`), instead of queueing for seconds behind them. Past the point where the pool
 * serves what arrives, a longer queue only adds the same wait to every request; refusing the
 * excess keeps the latency of what is served and tells clients to come back.
 *
 * Only a request's first lease is refused: nothing of the request ran on the database yet, so
 * nothing is half-written. A request that already holds or held a session (the second transaction
 * of a booking, a release after a failure) always queues, and so does work outside a request
 * (jobs, readiness, migrations, tests' own transactions), which never enters `admit`.
 *
 * The queue length, not a time, is the threshold: it is what the pool knows at the instant of the
 * lease, it needs no clock, and with the pool's size it bounds the wait (`maxQueue / poolMax`
 * leases ahead of each session).
 */
export interface LoadShedding {
  /** Callers queued for a session from which a request's first lease is refused; 0: never. */
  readonly maxQueue: number;
  /**
   * Runs `next` (the rest of a request's handling) as one request: its first lease may be
   * refused. Fastify: `admit(done)` in an `onRequest` hook carries the context to the handler.
   */
  admit(next: () => void): void;
  /** `backend` whose `acquire` refuses a request's first lease while its queue is at `maxQueue`. */
  guard<Backend extends DatabaseBackend>(backend: Backend): Backend;
}

export interface LoadSheddingOptions {
  /** See {@link LoadShedding.maxQueue}. */
  readonly maxQueue: number;
  /** Told of each request refused (the metric `socle_db_requests_shed_total`). */
  readonly onShed?: () => void;
}

/** Creates the request pool's load shedding (see {@link LoadShedding}). */
export function createLoadShedding(options: LoadSheddingOptions): LoadShedding {
  const admissions = new AsyncLocalStorage<Admission>();
  const { maxQueue } = options;
  return {
    maxQueue,
    admit(next) {
      if (maxQueue <= 0) next();
      else admissions.run({ leased: false }, next);
    },
    guard(backend) {
      if (maxQueue <= 0) return backend;
      const acquire = backend.acquire.bind(backend);
      return Object.assign(Object.create(backend) as typeof backend, {
        acquire(privilege?: Privilege) {
          const admission = admissions.getStore();
          if (admission !== undefined && !admission.leased) {
            // Marked before the check: a request's parallel first leases are one decision.
            admission.leased = true;
            const { waiting } = backend.statistics();
            if (waiting >= maxQueue) {
              options.onShed?.();
              return Promise.reject(databaseErrors.overloaded(waiting));
            }
          }
          return acquire(privilege);
        },
      });
    },
  };
}
