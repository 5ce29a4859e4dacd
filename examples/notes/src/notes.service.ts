import { randomUUID } from 'node:crypto';
import type { Clock } from 'socle';
import { notesErrors } from './notes.errors.js';
import type { Acting, Note, NoteMaintenanceStore, NoteStore } from './notes.store.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface NoteServiceOptions {
  readonly store: NoteStore;
  readonly maintenance: NoteMaintenanceStore;
  readonly clock: Clock;
  /** How long a deleted note is kept before the daily purge removes it. */
  readonly retentionDays: number;
}

/**
 * What the module does, in plain functions: routes, jobs, privacy hooks and tests call these.
 * Services hold the rules and throw `notesErrors`; the store holds the SQL.
 */
export function createNoteService({ store, maintenance, clock, retentionDays }: NoteServiceOptions) {
  return {
    async write(acting: Acting, body: string): Promise<Note> {
      const note: Note = { id: randomUUID(), authorId: acting.userId, body, createdAt: clock.now() };
      await store.insert(acting, note);
      return note;
    },

    list: (acting: Acting) => store.list(acting),

    /** Deletes a note of the organization (404 `notes.not_found` if it has none with this id). */
    async remove(acting: Acting, id: string): Promise<void> {
      if (!(await store.markDeleted(acting, id, clock.now()))) throw notesErrors.notFound(id);
    },

    /** Removes for good the notes deleted more than `retentionDays` ago; returns how many. */
    purgeDeleted: () =>
      maintenance.purgeDeletedBefore(new Date(clock.now().getTime() - retentionDays * DAY_MS)),
  };
}

export type NoteService = ReturnType<typeof createNoteService>;
