import { defineJob, defineModule, type SetupContext } from 'socle';
import { createNotesPrivacy } from './notes.privacy.js';
import { registerNoteRoutes } from './notes.routes.js';
import { createNoteService, type NoteService } from './notes.service.js';
import { createNoteMaintenanceStore, createNoteStore } from './notes.store.js';
import type { NotesTables } from './notes.tables.js';

/** What the notes module gives other modules, apps and tests (`socle.servicesOf(notes)`). */
export interface NotesServices {
  readonly notes: NoteService;
}

export interface NotesOptions {
  /** How long a deleted note is kept before the daily purge removes it; default 30 days. */
  readonly retentionDays?: number;
}

/**
 * Notes of an organization: its members write, list and delete them; the example module new
 * modules and apps start from (copy this folder). Each part has one role: routes (HTTP, thin),
 * service (the rules), store (every SQL statement), errors, privacy hooks (GDPR export and
 * erasure), a job (the daily purge of deleted notes), migrations (a tenant table with forced
 * row-level security) and a test on both databases.
 *
 * @example
 * const socle = await createSocle({ config, modules: [...createBuiltInModules(), createNotesModule()] });
 */
export function createNotesModule(options: NotesOptions = {}) {
  return defineModule({
    name: 'notes', // also its Postgres schema; its migrations run there
    dependsOn: ['identity', 'tenancy'], // authors are accounts; notes belong to organizations
    migrations: new URL('./migrations/', import.meta.url),

    // ── MODULE SETTINGS ─────────────────────────────────────────────────────────────────────
    // `defineModule` is getting a `settings` field (declared here with schema, env name,
    // default and doc; parsed by the kernel at start-up with every other setting, and handed to
    // `setup` as `context.settings`). Once it lands, `retentionDays` moves there:
    //   settings: { retentionDays: setting.integer({ env: 'NOTES_RETENTION_DAYS', default: 30, doc: '…' }) },
    // Until then it is an option of this factory.
    // ─────────────────────────────────────────────────────────────────────────────────────────

    // The one place the module's services are built: once, after migrations, before any route,
    // job or hook runs. Routes, jobs and privacy hooks receive what it returns.
    setup: ({ db, clock }: SetupContext<NotesTables>): NotesServices => ({
      notes: createNoteService({
        store: createNoteStore(db),
        maintenance: createNoteMaintenanceStore(db),
        clock,
        retentionDays: options.retentionDays ?? 30,
      }),
    }),

    routes(app, { services }) {
      registerNoteRoutes(app, services.notes);
    },

    jobs: {
      // Enqueued by the job engine every day at 04:00 UTC, on one node; see docs/jobs.md.
      purgeDeleted: defineJob({
        cron: '0 4 * * *',
        queue: 'low',
        async handler({ log }, { notes }: NotesServices) {
          const purged = await notes.purgeDeleted();
          if (purged > 0) log.info({ purged }, 'Deleted notes purged');
        },
      }),
    },

    // Built by the kernel from this module's context; the privacy module walks every module's.
    privacy: ({ db }) => createNotesPrivacy(createNoteMaintenanceStore(db)),
  });
}
