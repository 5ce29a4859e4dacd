import type { PrivacyHooks } from 'socle';
import type { NoteMaintenanceStore } from './notes.store.js';

/**
 * GDPR export and erasure of what the module holds about a person: the notes they wrote, in
 * every organization. Erasure deletes them (a note's body is the person's own words). Socle's
 * privacy module calls these for `GET /me/export`, `POST /me/erase` and `socle privacy …`.
 */
export function createNotesPrivacy(store: NoteMaintenanceStore): PrivacyHooks {
  return {
    exportSubject: async (subject) => ({ notes: await store.notesBy(subject) }),
    eraseSubject: (subject) => store.deleteNotesBy(subject),
  };
}
