import type { Clock, OutboundClient, Transaction } from 'socle';
import type { AppointmentEvent } from './booking.service.js';
import type { Appointment, BookingStore } from './booking.store.js';
import { cryptocareErrors } from './cryptocare.errors.js';
import type { MeetingStore } from './meetings.store.js';

interface ZoomMeeting {
  readonly id: number | string;
  readonly join_url: string;
  readonly start_time?: string;
  readonly agenda?: string;
}

const meetingShape = {
  Check: (value: unknown) =>
    typeof value === 'object' &&
    value !== null &&
    (typeof (value as ZoomMeeting).id === 'number' || typeof (value as ZoomMeeting).id === 'string') &&
    typeof (value as ZoomMeeting).join_url === 'string',
};
const meetingListShape = {
  Check: (value: unknown) => Array.isArray((value as { meetings?: unknown } | null)?.meetings),
};

/** The tag put in a meeting's agenda: how a retry finds a meeting an earlier attempt created. */
const tagOf = (appointmentId: string) => `cryptocare:${appointmentId}`;

export interface MeetingServiceOptions {
  readonly zoom: OutboundClient;
  readonly store: MeetingStore;
  readonly bookings: BookingStore;
  readonly clock: Clock;
  /** Zoom user ids (or emails) meetings are created under, spread so none passes its daily limit. */
  readonly hosts: readonly string[];
  readonly meetingsPerHostPerDay: number;
  readonly announce: (appointment: Appointment, event: AppointmentEvent) => Promise<void>;
  readonly mailParties: (trx: Transaction<unknown>, appointment: Appointment) => Promise<void>;
}

/**
 * Zoom links for confirmed appointments, made by a job: one meeting per appointment, whatever the
 * retries. The host is recorded on the appointment before the call, and the meeting's agenda
 * carries the appointment id, so an attempt after a crash (meeting made, not recorded) finds the
 * meeting on that host instead of making a second one; the link is stored only where none is.
 */
export function createMeetingService(options: MeetingServiceOptions) {
  const { zoom, store, bookings } = options;

  /**
   * The appointment's host: the one an earlier attempt recorded (`recordedBefore`: that attempt
   * may have made the meeting), or one with meetings left today, recorded now.
   */
  async function pickHost(
    orgId: string,
    appointmentId: string,
  ): Promise<{ host: string; recordedBefore: boolean }> {
    const chosen = await store.host(orgId, appointmentId);
    if (chosen !== null) return { host: chosen, recordedBefore: true };
    const day = options.clock.now().toISOString().slice(0, 10);
    for (const host of options.hosts) {
      if (await store.reserveHost(host, day, options.meetingsPerHostPerDay)) {
        if (await store.setHost(orgId, appointmentId, host)) return { host, recordedBefore: false };
        // A concurrent attempt recorded its host first: that one (it may be making the meeting),
        // and the meeting reserved here is given back.
        await store.releaseHost(host, day);
        return { host: (await store.host(orgId, appointmentId)) ?? host, recordedBefore: true };
      }
    }
    throw cryptocareErrors.zoomHostsExhausted(day, options.hosts.length);
  }

  async function findExisting(host: string, appointmentId: string, signal?: AbortSignal) {
    const answer = await zoom.request({
      method: 'GET',
      path: `users/${encodeURIComponent(host)}/meetings?type=upcoming&page_size=300`,
      operation: 'meetings.list',
      ...(signal ? { signal } : {}),
    });
    const { meetings } = answer.json<{ meetings: ZoomMeeting[] }>(meetingListShape);
    return meetings.find((meeting) => meeting.agenda === tagOf(appointmentId));
  }

  return {
    /**
     * Makes the appointment's meeting, or moves it to the appointment's time when it exists
     * (after a rescheduling). Outbound errors go up: an open circuit postpones the job without
     * spending an attempt, other failures retry with the job's backoff.
     */
    async sync(
      appointmentId: string,
      orgId: string,
      signal?: AbortSignal,
    ): Promise<'created' | 'moved' | 'unchanged' | 'skipped'> {
      const appointment = await bookings.transaction({ orgId }, (trx) => bookings.find(trx, appointmentId));
      if (appointment?.status !== 'confirmed') return 'skipped';
      const startTime = appointment.startsAt.toISOString().replace(/\.\d{3}Z$/, 'Z');
      if (appointment.zoomMeetingId !== null) {
        const answer = await zoom.request({
          method: 'GET',
          path: `meetings/${encodeURIComponent(appointment.zoomMeetingId)}`,
          operation: 'meetings.get',
          ...(signal ? { signal } : {}),
        });
        if (answer.json<ZoomMeeting>(meetingShape).start_time === startTime) return 'unchanged';
        await zoom.request({
          method: 'PATCH',
          path: `meetings/${encodeURIComponent(appointment.zoomMeetingId)}`,
          json: { start_time: startTime, timezone: 'UTC' },
          operation: 'meetings.update',
          idempotencyKey: `${appointmentId}:${startTime}`,
          ...(signal ? { signal } : {}),
        });
        return 'moved';
      }
      const { host, recordedBefore } = await pickHost(orgId, appointmentId);
      // Only an attempt after one that recorded the host can find a meeting there (made, its
      // answer lost): a first attempt skips the listing, one Zoom call (300 ms and a share of
      // the rate limit) less per link.
      let meeting = recordedBefore ? await findExisting(host, appointmentId, signal) : undefined;
      if (meeting === undefined) {
        const answer = await zoom.request({
          method: 'POST',
          path: `users/${encodeURIComponent(host)}/meetings`,
          json: {
            topic: 'CryptoCare consultation',
            type: 2, // scheduled
            start_time: startTime,
            duration: Math.round((appointment.endsAt.getTime() - appointment.startsAt.getTime()) / 60_000),
            timezone: 'UTC',
            agenda: tagOf(appointmentId),
            settings: { join_before_host: false, waiting_room: true },
          },
          operation: 'meetings.create',
          // No idempotency key: Zoom honours none, so the client must not resend this POST after
          // a lost answer. The job's next attempt looks the meeting up on the host first.
          ...(signal ? { signal } : {}),
        });
        meeting = answer.json<ZoomMeeting>(meetingShape);
      }
      const ready = await bookings.transaction({ orgId }, async (trx) => {
        if (
          !(await store.setMeeting(trx, appointmentId, { id: String(meeting.id), joinUrl: meeting.join_url }))
        )
          return undefined;
        const changed = (await bookings.find(trx, appointmentId)) as Appointment;
        await options.mailParties(trx, changed);
        return changed;
      });
      if (ready === undefined) return 'unchanged';
      await options.announce(ready, 'appointment.zoom_ready');
      return 'created';
    },

    /** Meetings counted per host on a UTC day (`YYYY-MM-DD`). */
    usage: (day: string) => store.usage(day),
  };
}

export type MeetingService = ReturnType<typeof createMeetingService>;
