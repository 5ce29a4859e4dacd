import { randomUUID } from 'node:crypto';
import type { Clock } from 'socle';
import type { Note, NoteStore } from './notes.store.js';

/** What the module does, in plain functions: routes, jobs and tests call these. */
export function createNoteService({ store, clock }: { store: NoteStore; clock: Clock }) {
  return {
    async write(userId: string, body: string): Promise<Note> {
      const note = { id: randomUUID(), body, createdAt: clock.now() };
      await store.insert({ ...note, userId });
      return note;
    },

    listOf: (userId: string) => store.listOfUser(userId),
  };
}

export type NoteService = ReturnType<typeof createNoteService>;
