import { type Database, sql, type Transaction } from 'socle';
import { lockAgendaOf } from './booking.store.js';

export type ReminderKind = '24h' | '1h';

/** The reminders' SQL: which are due, and marking one sent in the transaction that queues its mail. */
export function createReminderStore(db: Database) {
  return {
    async due(kind: ReminderKind, at: Date): Promise<{ id: string; orgId: string }[]> {
      const lead = kind === '24h' ? '24 hours' : '1 hour';
      const { rows } = await sql<{ id: string; orgId: string }>`select id, tenant_id as "orgId"
        from cryptocare.due_reminders(${kind}, ${at}, ${lead}::interval)`.execute(db.kysely);
      return rows;
    },

    /** Marks the reminder sent; false when it was already (another node, an earlier run). */
    async markSent(trx: Transaction<unknown>, id: string, kind: ReminderKind, at: Date): Promise<boolean> {
      // An update re-checks the agenda's exclusion constraint: queue behind the agenda's writers.
      await lockAgendaOf(trx, id);
      const result = await (kind === '24h'
        ? sql`update cryptocare.appointments set reminded_24h_at = ${at}
            where id = ${id} and reminded_24h_at is null and status = 'confirmed'`
        : sql`update cryptocare.appointments set reminded_1h_at = ${at}
            where id = ${id} and reminded_1h_at is null and status = 'confirmed'`
      ).execute(trx);
      return result.numAffectedRows === 1n;
    },

    async details(trx: Transaction<unknown>, id: string) {
      const { rows } = await sql<{ patientId: string | null; startsAt: Date; zoomJoinUrl: string | null }>`
        select patient_id as "patientId", starts_at as "startsAt", zoom_join_url as "zoomJoinUrl"
          from cryptocare.appointments where id = ${id}`.execute(trx);
      return rows[0] as { patientId: string | null; startsAt: Date; zoomJoinUrl: string | null };
    },
  };
}

export type ReminderStore = ReturnType<typeof createReminderStore>;
