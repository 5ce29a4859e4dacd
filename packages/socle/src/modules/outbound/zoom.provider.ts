import { createHash } from 'node:crypto';
import { Type } from 'typebox';
import { Compile } from 'typebox/compile';
import { isSocleError } from '../../kernel/index.js';
import { isProviderFailure, type OutboundClient } from './outbound-client.js';
import { defineProvider, type ProviderDefinition, type ProviderOptions } from './provider.js';

export const ZOOM_API_URL = 'https://api.zoom.us/v2';
export const ZOOM_TOKEN_URL = 'https://zoom.us/oauth/token';

export interface ZoomProviderOptions extends Omit<ProviderOptions, 'baseUrl' | 'auth'> {
  /** Default Zoom's API; a fake's URL in tests. */
  readonly baseUrl?: string;
  /** Default Zoom's token endpoint. */
  readonly tokenUrl?: string;
  /** The Server-to-Server OAuth app's account id, client id and secret (from configuration). */
  readonly accountId: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/**
 * Declares Zoom with Server-to-Server OAuth (`grant_type=account_credentials`): the token is
 * fetched once, cached until shortly before it expires, and shared by every call of the node.
 * Defaults fit a meeting link asked for while a patient waits: 2 s per attempt, 5 s in all.
 *
 * @example
 * const zoom = defineZoomProvider('zoom', { accountId, clientId, clientSecret, rateLimit: { limit: 30, windowMs: 1_000 } });
 */
export function defineZoomProvider(name: string, options: ZoomProviderOptions): ProviderDefinition {
  const { accountId, clientId, clientSecret, tokenUrl, baseUrl, ...rest } = options;
  return defineProvider(name, {
    timeoutMs: { attemptMs: 2_000, totalMs: 5_000 },
    ...rest,
    baseUrl: baseUrl ?? ZOOM_API_URL,
    auth: {
      type: 'client-credentials',
      tokenUrl: tokenUrl ?? ZOOM_TOKEN_URL,
      clientId,
      clientSecret,
      form: { grant_type: 'account_credentials', account_id: accountId },
    },
  });
}

/** A meeting to create. */
export interface NewMeeting {
  readonly topic: string;
  readonly startTime?: Date;
  readonly durationMinutes?: number;
  /** IANA time zone shown to participants (`Europe/Paris`). */
  readonly timezone?: string;
  readonly agenda?: string;
  /**
   * Names the meeting for good: asking again with the same key gives the same meeting, never a
   * second one (from a job, `jobIdempotencyKey(job, 'meeting')`).
   */
  readonly key: string;
  readonly signal?: AbortSignal;
}

/** A meeting as any video provider gives it. */
export interface VideoMeeting {
  /** The provider that holds it (what `delete` needs). */
  readonly provider: string;
  readonly id: string;
  readonly joinUrl: string;
  /** The host's link, when the provider has one. */
  readonly startUrl?: string;
}

/** Video meetings on one provider (Zoom, Jitsi), or on several in order (`withMeetingFallback`). */
export interface VideoMeetings {
  /** The provider's name (`zoom`, `jitsi`); the first one's for a fallback chain. */
  readonly provider: string;
  create(meeting: NewMeeting): Promise<VideoMeeting>;
  /** Deletes a meeting; one already gone counts as deleted. */
  delete(meeting: Pick<VideoMeeting, 'provider' | 'id'>, options?: { signal?: AbortSignal }): Promise<void>;
}

const ZoomMeeting = Compile(
  Type.Object({
    id: Type.Union([Type.Integer(), Type.String()]),
    join_url: Type.String(),
    start_url: Type.Optional(Type.String()),
    agenda: Type.Optional(Type.String()),
  }),
);
const ZoomMeetingList = Compile(
  Type.Object({
    meetings: Type.Array(
      Type.Object({ id: Type.Union([Type.Integer(), Type.String()]), agenda: Type.Optional(Type.String()) }),
    ),
    next_page_token: Type.Optional(Type.String()),
  }),
);

/** The mark a meeting carries in its agenda: what finds it again for the same key. */
const keyMark = (key: string) => `[ref ${createHash('sha256').update(key).digest('base64url').slice(0, 22)}]`;

/** At most this many pages of 300 meetings are searched for an earlier attempt's meeting. */
const MAX_LOOKUP_PAGES = 3;

/**
 * Zoom meetings on a declared client (`defineZoomProvider`). Zoom takes no idempotency key, so a
 * meeting carries a mark derived from `key` at the end of its agenda: `create` first looks for a
 * meeting with that mark (one an earlier attempt made before its answer was lost), and when a
 * create fails in a way that may have reached Zoom, looks again before giving up. A job that
 * creates a meeting and is retried therefore never makes two.
 *
 * @example
 * const meetings = createZoomMeetings(outbound.client(zoom));
 * const meeting = await meetings.create({ topic: 'Consultation', startTime, durationMinutes: 30, key: jobIdempotencyKey(job, 'meeting') });
 */
export function createZoomMeetings(client: OutboundClient, options: { userId?: string } = {}): VideoMeetings {
  const user = encodeURIComponent(options.userId ?? 'me');
  const provider = client.provider.name;
  const toMeeting = (answer: {
    id: number | string;
    join_url: string;
    start_url?: string;
  }): VideoMeeting => ({
    provider,
    id: String(answer.id),
    joinUrl: answer.join_url,
    ...(answer.start_url === undefined ? {} : { startUrl: answer.start_url }),
  });

  const findMarked = async (mark: string, signal: AbortSignal | undefined) => {
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_LOOKUP_PAGES; page++) {
      const list = (
        await client.request({
          method: 'GET',
          path: `users/${user}/meetings`,
          query: { type: 'scheduled', page_size: 300, next_page_token: pageToken },
          operation: 'meetings.list',
          ...(signal === undefined ? {} : { signal }),
        })
      ).json<{ meetings: { id: number | string; agenda?: string }[]; next_page_token?: string }>(
        ZoomMeetingList,
      );
      const found = list.meetings.find((meeting) => meeting.agenda?.endsWith(mark) === true);
      if (found !== undefined) {
        const answer = await client.request({
          method: 'GET',
          path: `meetings/${encodeURIComponent(String(found.id))}`,
          operation: 'meetings.get',
          ...(signal === undefined ? {} : { signal }),
        });
        return toMeeting(answer.json(ZoomMeeting));
      }
      if (list.next_page_token === undefined || list.next_page_token === '') return undefined;
      pageToken = list.next_page_token;
    }
    return undefined;
  };

  return {
    provider,
    async create(meeting) {
      const mark = keyMark(meeting.key);
      const earlier = await findMarked(mark, meeting.signal);
      if (earlier !== undefined) return earlier;
      const agenda = meeting.agenda === undefined ? mark : `${meeting.agenda.slice(0, 1900)}\n\n${mark}`;
      try {
        const answer = await client.request({
          method: 'POST',
          path: `users/${user}/meetings`,
          operation: 'meetings.create',
          json: {
            topic: meeting.topic.slice(0, 200),
            type: meeting.startTime === undefined ? 1 : 2, // instant or scheduled
            ...(meeting.startTime === undefined
              ? {}
              : { start_time: meeting.startTime.toISOString().replace(/\.\d{3}Z$/, 'Z') }),
            ...(meeting.durationMinutes === undefined ? {} : { duration: meeting.durationMinutes }),
            ...(meeting.timezone === undefined ? {} : { timezone: meeting.timezone }),
            agenda,
          },
          ...(meeting.signal === undefined ? {} : { signal: meeting.signal }),
        });
        return toMeeting(answer.json(ZoomMeeting));
      } catch (error) {
        // The create may have reached Zoom before the connection failed: look before failing.
        if (!isProviderFailure(error) || meeting.signal?.aborted) throw error;
        const made = await findMarked(mark, meeting.signal).catch(() => undefined);
        if (made !== undefined) return made;
        throw error;
      }
    },
    async delete(meeting, deleteOptions = {}) {
      try {
        await client.request({
          method: 'DELETE',
          path: `meetings/${encodeURIComponent(meeting.id)}`,
          operation: 'meetings.delete',
          ...(deleteOptions.signal === undefined ? {} : { signal: deleteOptions.signal }),
        });
      } catch (error) {
        // 404: already deleted (an earlier attempt, or by hand).
        if (isSocleError(error) && error.code === 'outbound.rejected' && error.details.providerStatus === 404)
          return;
        throw error;
      }
    },
  };
}

/**
 * Jitsi Meet as a second video provider: a room exists as soon as someone joins its URL, so a
 * meeting is a name derived from `key` (the same key gives the same room) and needs no call.
 *
 * @example
 * const video = withMeetingFallback(createZoomMeetings(zoomClient), createJitsiMeetings({ baseUrl: 'https://meet.jit.si' }));
 */
export function createJitsiMeetings(
  options: { baseUrl?: string; name?: string; roomPrefix?: string } = {},
): VideoMeetings {
  const baseUrl = (options.baseUrl ?? 'https://meet.jit.si').replace(/\/$/, '');
  const provider = options.name ?? 'jitsi';
  return {
    provider,
    async create(meeting) {
      const room = `${options.roomPrefix ?? 'socle'}-${createHash('sha256').update(meeting.key).digest('hex').slice(0, 24)}`;
      return { provider, id: room, joinUrl: `${baseUrl}/${room}` };
    },
    async delete() {
      // A Jitsi room ends when its last participant leaves: nothing to delete.
    },
  };
}

/**
 * Meetings on the first provider that can make them: when one fails for a reason of its own
 * (down, timing out, circuit open, throttled), the next is asked, in order (Zoom → Jitsi). A
 * refusal (a bad request) is not passed on. `delete` goes to the provider that holds the meeting.
 */
export function withMeetingFallback(
  first: VideoMeetings,
  ...others: readonly VideoMeetings[]
): VideoMeetings {
  const providers = [first, ...others];
  return {
    provider: first.provider,
    async create(meeting) {
      let lastError: unknown;
      for (const provider of providers) {
        try {
          return await provider.create(meeting);
        } catch (error) {
          if (!isProviderFailure(error) || meeting.signal?.aborted) throw error;
          lastError = error;
        }
      }
      throw lastError;
    },
    async delete(meeting, deleteOptions) {
      const holder = providers.find((provider) => provider.provider === meeting.provider);
      if (holder === undefined) throw new TypeError(`no video provider named ${meeting.provider}`);
      await holder.delete(meeting, deleteOptions);
    },
  };
}
