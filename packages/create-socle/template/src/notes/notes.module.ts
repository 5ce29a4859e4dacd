import { defineModule } from 'socle';
import { registerNoteRoutes } from './notes.routes.js';
import { createNoteService } from './notes.service.js';
import { createNoteStore, type NotesTables } from './notes.store.js';

/**
 * Notes: each signed-in user writes notes and reads their own. A module of this product, written
 * exactly as Socle's built-in modules are. `socle.config.json` loads it (its compiled file).
 */
export default defineModule<NotesTables>({
  name: 'notes', // also its Postgres schema
  dependsOn: ['identity'], // accounts and sign-in come from Socle's identity module
  // Outside src/, so the same path works from src/ (tests) and dist/ (npm start).
  migrations: new URL('../../migrations/notes/', import.meta.url),
  routes(app, { db, clock }) {
    registerNoteRoutes(app, createNoteService({ store: createNoteStore(db), clock }));
  },
});
