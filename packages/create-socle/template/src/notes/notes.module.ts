import { defineModule, type SetupContext } from 'socle';
import { registerNoteRoutes } from './notes.routes.js';
import { createNoteService } from './notes.service.js';
import { createNoteStore, type NotesTables } from './notes.store.js';

/**
 * Notes: each signed-in user writes notes and reads their own. A module of this product, written
 * exactly as Socle's built-in modules are. `socle.config.json` loads it (its compiled file).
 */
export default defineModule({
  name: 'notes', // also its Postgres schema
  dependsOn: ['identity'], // accounts and sign-in come from Socle's identity module
  // Outside src/, so the same path works from src/ (tests) and dist/ (npm start).
  migrations: new URL('../../migrations/notes/', import.meta.url),
  // Builds the module's services once; routes, jobs and privacy hooks get them as `services`.
  setup: ({ db, clock }: SetupContext<NotesTables>) => ({
    notes: createNoteService({ store: createNoteStore(db), clock }),
  }),
  routes(app, { services }) {
    registerNoteRoutes(app, services.notes);
  },
});
