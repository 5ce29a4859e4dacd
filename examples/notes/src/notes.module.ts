import {
  defineJob,
  defineModule,
  defineSettings,
  type SettingValues,
  type SetupContext,
  setting,
} from 'socle';
import { createNotesPrivacy } from './notes.privacy.js';
import { registerNoteRoutes } from './notes.routes.js';
import { createNoteService, type NoteService } from './notes.service.js';
import { createNoteMaintenanceStore, createNoteStore } from './notes.store.js';
import type { NotesTables } from './notes.tables.js';

/** What the notes module gives other modules, apps and tests (`socle.servicesOf(notes)`). */
export interface NotesServices {
  readonly notes: NoteService;
}

/**
 * The module's settings: each is an environment variable (and a `socle.config.json` key, its
 * camelCase), parsed and checked by the kernel at start with every other setting (all bad values
 * in one message), listed by `socle help config`, and handed to every hook as `context.settings`.
 */
export const notesSettings = defineSettings({
  retentionDays: setting.integer({
    env: 'NOTES_RETENTION_DAYS',
    description: 'Days a deleted note is kept before the daily purge removes it',
    default: 30,
    min: 1,
    max: 3650,
  }),
});

export type NotesSettings = SettingValues<typeof notesSettings>;

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
export function createNotesModule() {
  return defineModule({
    name: 'notes', // also its Postgres schema; its migrations run there
    dependsOn: ['identity', 'tenancy'], // authors are accounts; notes belong to organizations
    migrations: new URL('./migrations/', import.meta.url),

    settings: notesSettings,

    // The one place the module's services are built: once, after migrations, before any route,
    // job or hook runs. Routes, jobs and privacy hooks receive what it returns.
    setup: ({ db, clock, settings }: SetupContext<NotesTables, NotesSettings>): NotesServices => ({
      notes: createNoteService({
        store: createNoteStore(db),
        maintenance: createNoteMaintenanceStore(db),
        clock,
        retentionDays: settings.retentionDays,
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
