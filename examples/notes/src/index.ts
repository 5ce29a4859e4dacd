/** The notes example module: what an app or another module may import from it. */
export {
  createNotesModule,
  type NotesServices,
  type NotesSettings,
  notesSettings,
} from './notes.module.js';
export type { NoteService } from './notes.service.js';
export type { Acting, Note } from './notes.store.js';
export type { NotesTables } from './notes.tables.js';
