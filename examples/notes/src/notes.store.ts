import { type Database, type PrivacySubject, tenantSettings, withOwnerTransaction } from 'socle';
import type { NotesTables } from './notes.tables.js';

/** A note as the service hands it out. */
export interface Note {
  readonly id: string;
  readonly authorId: string;
  readonly body: string;
  readonly createdAt: Date;
}

/** Who acts: the organization (tenant) and the user, both checked by the route already. */
export interface Acting {
  readonly orgId: string;
  readonly userId: string;
}

/**
 * Every SQL statement of the module: services never see the database. Each statement acts in
 * the caller's organization, named explicitly (`tenantSettings`) whatever the ambient scope says,
 * so row-level security confines it to that organization's notes; one statement per call, each
 * in its own implicit transaction (one round trip). Work of several statements that must agree
 * belongs in `db.transaction(work, { settings })`.
 */
export function createNoteStore(db: Database<NotesTables>) {
  const inOrg = (acting: Acting, options: { replica?: boolean } = {}) =>
    db.withSettings(tenantSettings({ tenantId: acting.orgId, userId: acting.userId }), options);
  return {
    async insert(acting: Acting, note: Note): Promise<void> {
      await inOrg(acting)
        .insertInto('notes.notes')
        .values({
          id: note.id,
          tenant_id: acting.orgId,
          author_id: note.authorId,
          body: note.body,
          created_at: note.createdAt,
          deleted_at: null,
        })
        .execute();
    },

    /** The organization's notes not deleted, oldest first. */
    list(acting: Acting): Promise<Note[]> {
      // A read that may be stale: with DATABASE_REPLICA_URLS a replica serves it once it has
      // replayed this client's own last write (read-your-writes); otherwise the primary.
      return inOrg(acting, { replica: true })
        .selectFrom('notes.notes')
        .select(['id', 'author_id as authorId', 'body', 'created_at as createdAt'])
        .where('deleted_at', 'is', null)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
    },

    /** Marks a note deleted; false when the organization has no such note (or it is deleted). */
    async markDeleted(acting: Acting, id: string, at: Date): Promise<boolean> {
      const result = await inOrg(acting)
        .updateTable('notes.notes')
        .set({ deleted_at: at })
        .where('id', '=', id)
        .where('deleted_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },
  };
}

/**
 * SQL that works across every organization, as the owner role (beneath row-level security): the
 * privacy hooks (a person writes in several organizations) and the daily purge.
 */
export function createNoteMaintenanceStore(db: Pick<Database, 'withConnection'>) {
  return {
    /** Removes notes deleted before `cutoff`, in every organization; returns how many. */
    purgeDeletedBefore: (cutoff: Date): Promise<number> =>
      withOwnerTransaction(db, async (connection) => {
        const result = await connection.query('delete from notes.notes where deleted_at < $1', [cutoff]);
        return result.affectedRows ?? 0;
      }),

    /** The notes the person wrote, deleted ones included, oldest first. */
    notesBy: (subject: PrivacySubject) =>
      withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query(
          `select id, tenant_id as "orgId", body, created_at as "createdAt", deleted_at as "deletedAt"
             from notes.notes where author_id = $1 order by created_at, id`,
          [subject.userId],
        );
        return rows;
      }),

    async deleteNotesBy(subject: PrivacySubject): Promise<void> {
      await withOwnerTransaction(db, async (connection) => {
        await connection.query('delete from notes.notes where author_id = $1', [subject.userId]);
      });
    },
  };
}

export type NoteStore = ReturnType<typeof createNoteStore>;
export type NoteMaintenanceStore = ReturnType<typeof createNoteMaintenanceStore>;
