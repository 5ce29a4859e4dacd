import type { Database } from 'socle';

/** The module's tables, as Kysely sees them: `<module>.<table>`. */
export interface NotesTables {
  'notes.notes': { id: string; user_id: string; body: string; created_at: Date };
}

export interface Note {
  readonly id: string;
  readonly body: string;
  readonly createdAt: Date;
}

/** Every SQL statement of the module: services never see the database. */
export function createNoteStore(db: Database<NotesTables>) {
  return {
    async insert(note: Note & { readonly userId: string }): Promise<void> {
      await db.kysely
        .insertInto('notes.notes')
        .values({ id: note.id, user_id: note.userId, body: note.body, created_at: note.createdAt })
        .execute();
    },

    async listOfUser(userId: string): Promise<Note[]> {
      return db.kysely
        .selectFrom('notes.notes')
        .select(['id', 'body', 'created_at as createdAt'])
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
    },
  };
}

export type NoteStore = ReturnType<typeof createNoteStore>;
