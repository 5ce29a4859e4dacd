import { type Database, sql, type Transaction, tenantSettings } from 'socle';
import { lockAgendaOf } from './booking.store.js';

/**
 * The Zoom host pool's counters and the meeting columns of appointments. Counting is one
 * statement per host tried: an upsert that only increments below the limit, so concurrent jobs on
 * every node never give one host more than its daily meetings.
 */
export function createMeetingStore(db: Database) {
  return {
    /** Takes one of `host`'s meetings of `day`; false when it has none left. */
    async reserveHost(host: string, day: string, limit: number): Promise<boolean> {
      const result = await sql`insert into cryptocare.zoom_host_usage (host, day, meetings)
          values (${host}, ${day}::date, 1)
        on conflict (host, day) do update set meetings = zoom_host_usage.meetings + 1
          where zoom_host_usage.meetings < ${limit}`.execute(db.kysely);
      return result.numAffectedRows === 1n;
    },

    /** Gives back a meeting `reserveHost` took for a creation that did not happen. */
    async releaseHost(host: string, day: string): Promise<void> {
      await sql`update cryptocare.zoom_host_usage set meetings = meetings - 1
        where host = ${host} and day = ${day}::date and meetings > 0`.execute(db.kysely);
    },

    async usage(day: string): Promise<Record<string, number>> {
      const { rows } = await sql<{ host: string; meetings: number }>`select host, meetings
        from cryptocare.zoom_host_usage where day = ${day}::date`.execute(db.kysely);
      return Object.fromEntries(rows.map((row) => [row.host, row.meetings]));
    },

    /**
     * Records the host chosen before the call, so a retry asks that host whether it was made;
     * false when a host was recorded already (by a concurrent attempt).
     */
    async setHost(orgId: string, appointmentId: string, host: string): Promise<boolean> {
      const result = await db.transaction(
        async (trx) => {
          await lockAgendaOf(trx, appointmentId);
          return sql`update cryptocare.appointments set zoom_host = ${host}
            where id = ${appointmentId} and zoom_host is null`.execute(trx);
        },
        { settings: tenantSettings({ tenantId: orgId }) },
      );
      return result.numAffectedRows === 1n;
    },

    async host(orgId: string, appointmentId: string): Promise<string | null> {
      const { rows } = await sql<{ host: string | null }>`select zoom_host as host
        from cryptocare.appointments where id = ${appointmentId}`.execute(
        db.withSettings(tenantSettings({ tenantId: orgId })),
      );
      return rows[0]?.host ?? null;
    },

    /** Stores the meeting unless one is stored already; true when this call stored it. */
    async setMeeting(
      trx: Transaction<unknown>,
      appointmentId: string,
      meeting: { id: string; joinUrl: string },
    ) {
      await lockAgendaOf(trx, appointmentId);
      const result = await sql`update cryptocare.appointments
          set zoom_meeting_id = ${meeting.id}, zoom_join_url = ${meeting.joinUrl}
        where id = ${appointmentId} and zoom_meeting_id is null`.execute(trx);
      return result.numAffectedRows === 1n;
    },
  };
}

export type MeetingStore = ReturnType<typeof createMeetingStore>;
