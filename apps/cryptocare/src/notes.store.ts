import { type Database, sql, tenantSettings } from 'socle';

export interface StoredNote {
  readonly id: string;
  readonly appointmentId: string;
  readonly authorId: string | null;
  readonly sealedBody: string;
  readonly createdAt: Date;
}

/** A note being written: its author is the member writing it. */
export type NewNote = StoredNote & { readonly authorId: string };

/**
 * Consultation notes, the practice's sealed key and the log of reads. A read and its log row are
 * one transaction: no note is shown without its read being recorded.
 */
export function createNoteStore(db: Database) {
  const inOrg = (orgId: string, userId: string) => tenantSettings({ tenantId: orgId, userId });
  return {
    /** The practice's sealed key; `create` makes it when there is none yet (first writer wins). */
    async organizationKey(orgId: string, userId: string, create: () => string, at: Date): Promise<string> {
      const settings = db.withSettings(inOrg(orgId, userId));
      await sql`insert into cryptocare.organization_keys (tenant_id, sealed_key, created_at)
        values (${orgId}, ${create()}, ${at}) on conflict (tenant_id) do nothing`.execute(settings);
      const { rows } = await sql<{ sealedKey: string }>`select sealed_key as "sealedKey"
        from cryptocare.organization_keys where tenant_id = ${orgId}`.execute(settings);
      return (rows[0] as { sealedKey: string }).sealedKey;
    },

    async insert(orgId: string, note: NewNote): Promise<boolean> {
      const result =
        await sql`insert into cryptocare.consultation_notes (id, tenant_id, appointment_id, author_id, sealed_body, created_at)
        select ${note.id}, ${orgId}, a.id, ${note.authorId}, ${note.sealedBody}, ${note.createdAt}
          from cryptocare.appointments a where a.id = ${note.appointmentId} and a.tenant_id = ${orgId}`.execute(
          db.withSettings(inOrg(orgId, note.authorId)),
        );
      return result.numAffectedRows === 1n;
    },

    /** The appointment's notes, each read logged in the same transaction. */
    readAll: (orgId: string, readerId: string, appointmentId: string, at: Date) =>
      db.transaction(
        async (trx) => {
          const { rows } =
            await sql<StoredNote>`select id, appointment_id as "appointmentId", author_id as "authorId",
              sealed_body as "sealedBody", created_at as "createdAt"
            from cryptocare.consultation_notes where appointment_id = ${appointmentId} order by created_at, id`.execute(
              trx,
            );
          for (const note of rows)
            await sql`insert into cryptocare.note_reads (tenant_id, note_id, reader_id, read_at)
              values (${orgId}, ${note.id}, ${readerId}, ${at})`.execute(trx);
          return rows;
        },
        { settings: inOrg(orgId, readerId) },
      ),

    async reads(orgId: string, userId: string, noteId: string) {
      const { rows } = await sql<{
        readerId: string;
        readAt: Date;
      }>`select reader_id as "readerId", read_at as "readAt"
        from cryptocare.note_reads where note_id = ${noteId} order by id`.execute(
        db.withSettings(inOrg(orgId, userId)),
      );
      return rows;
    },
  };
}

export type NoteStore = ReturnType<typeof createNoteStore>;
