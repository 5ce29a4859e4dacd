import { defineModule, type ModuleDefinition, type SetupContext } from '../../kernel/index.js';
import type { TenancyServices } from '../tenancy/index.js';
import { createAuditPrivacy } from './audit.privacy.js';
import { registerAuditRoutes } from './audit.routes.js';
import { createAuditService } from './audit.service.js';
import { createAuditStore } from './audit.store.js';
import type { AuditTables } from './audit.tables.js';
import { installAuditCapture } from './capture.hooks.js';
import { createPersonalDataStore } from './personal-data.store.js';
import { type AuditRecorder, createAuditRecorder } from './recorder.service.js';

export interface AuditOptions {
  /** Longest time an event waits in memory before it is written; default 200 ms. */
  readonly flushIntervalMs?: number;
  /** Events written at once, without waiting for the interval; default 100. */
  readonly maxBatchSize?: number;
  /** Events kept in memory while the database does not take them; default 10 000, then dropped. */
  readonly maxPending?: number;
}

/** What the audit module gives other modules, apps and tests (`socle.servicesOf(audit)`). */
export interface AuditServices {
  /**
   * Writes the events queued on this node; resolves when they are in the database (or their
   * failure counted). For tests, and for code that must read the log right after acting.
   */
  flush(): Promise<void>;
}

/** The audit module's definition; its public API is {@link AuditServices}. */
export type AuditModule = ModuleDefinition<AuditTables, AuditServices & { readonly recorder: AuditRecorder }>;

const DEFAULT_FLUSH_INTERVAL_MS = 200;
const DEFAULT_MAX_BATCH_SIZE = 100;
const DEFAULT_MAX_PENDING = 10_000;

/**
 * The audit log: every mutating request (POST, PUT, PATCH, DELETE on a route) is recorded with its
 * actor, organization, action (method and route template), target (path parameters), the names of
 * the body's fields (never their values), status, IP, user agent and request id. The table is
 * append-only for the application role. Org admins read it at `GET /org/audit-events`.
 *
 * Events are written in batches, every `flushIntervalMs` or `maxBatchSize` events, off the request
 * path: a failing write never fails or slows a request (it is logged and counted in
 * `socle_audit_write_failures_total`), and a crash loses at most the last interval of events.
 * `onStop` writes what is queued.
 *
 * @example
 * const socle = await createSocle({
 *   config,
 *   modules: [createIdentityModule(), createMailModule(), createTenancyModule(), createAuditModule()],
 * });
 */
export function createAuditModule(options: AuditOptions = {}): AuditModule {
  return defineModule({
    name: 'audit',
    dependsOn: ['identity', 'tenancy'],
    migrations: new URL('./migrations/', import.meta.url),
    setup(context: SetupContext<AuditTables>) {
      const store = createAuditStore(context.db);
      const recorder = createAuditRecorder({
        store,
        log: context.log,
        failures: context.metrics.counter({
          name: 'socle_audit_write_failures_total',
          help: 'Audit events that could not be written (database error, or too many queued)',
        }),
        flushIntervalMs: options.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
        maxBatchSize: options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
        maxPending: options.maxPending ?? DEFAULT_MAX_PENDING,
      });
      return {
        recorder,
        events: createAuditService({ db: context.db, store }),
        flush: () => recorder.flush(),
      };
    },
    // Queued events are flushed first, so an export or erasure sees every action.
    privacy: ({ db, services, servicesOf }) =>
      createAuditPrivacy({
        store: createPersonalDataStore(db),
        tenancy: servicesOf<TenancyServices>('tenancy'),
        flushPending: services.flush,
      }),
    configureHttp(app, { clock, services: { recorder } }) {
      installAuditCapture(app, recorder, clock);
    },
    routes(app, { services }) {
      registerAuditRoutes(app, services.events);
    },
    async onStop({ services }) {
      await services.recorder.stop();
    },
  });
}
