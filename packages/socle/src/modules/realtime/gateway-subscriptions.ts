import type { PresenceMember, SharedState } from '../../kernel/index.js';
import type { RealtimeApp } from './apps.js';
import type { SocketOutput } from './gateway-backpressure.js';
import type { ChannelRouter } from './gateway-channels.js';
import { type Connection, parseMember } from './gateway-connection.js';
import { MAX_PRESENCE_MEMBERS, type Presence } from './gateway-presence.js';
import {
  channelAuth,
  channelType,
  ERROR,
  encodeFrame,
  memberProblem,
  needsAuthorization,
  SERVER_TO_USER_PREFIX,
  sameSecret,
} from './protocol.js';
import type { WebhookEvent } from './webhooks.js';

/** `pusher:subscribe` and `pusher:unsubscribe` of a socket. */
export interface Subscriptions {
  subscribe(connection: Connection, data: Record<string, unknown>): Promise<void>;
  unsubscribe(connection: Connection, channel: string): Promise<void>;
}

export function createSubscriptions(options: {
  readonly state: SharedState;
  readonly output: SocketOutput;
  readonly channels: ChannelRouter;
  readonly presence: Presence;
  readonly emit: (app: RealtimeApp, event: WebhookEvent) => void;
  /** Largest presence `user_info`, serialized as JSON, in bytes. */
  readonly maxUserInfoBytes: number;
  /** Channels one socket may be subscribed to at once. */
  readonly maxChannelsPerConnection: number;
}): Subscriptions {
  const { state, output, channels, presence, emit } = options;
  const { send, sendError } = output;

  async function sendCached(connection: Connection, channel: string) {
    const cached = await state.cachedEvent(connection.app.id, channel);
    if (cached !== undefined) send(connection, cached);
    else {
      send(connection, encodeFrame('pusher:cache_miss', '{}', channel));
      emit(connection.app, { name: 'cache_miss', channel });
    }
  }

  async function subscribe(connection: Connection, data: Record<string, unknown>): Promise<void> {
    const channel = data.channel;
    if (typeof channel !== 'string') return sendError(connection, ERROR.invalidEvent, 'channel is required');
    const type = channelType(channel);
    if (type === undefined) {
      return sendError(connection, ERROR.invalidEvent, `Invalid channel name "${channel.slice(0, 200)}"`);
    }
    if (connection.channels.has(channel)) return;
    const refuse = (message: string, status = 401, type = 'AuthError') =>
      send(connection, encodeFrame('pusher:subscription_error', { type, error: message, status }, channel));
    // Frames are handled one at a time, so the count cannot be raced past.
    if (connection.channels.size >= options.maxChannelsPerConnection) {
      return refuse(
        `A connection may be subscribed to at most ${options.maxChannelsPerConnection} channels`,
        403,
        'LimitReached',
      );
    }
    let member: PresenceMember | null = null;
    if (type.kind === 'server-to-user') {
      if (connection.userId === undefined || channel !== `${SERVER_TO_USER_PREFIX}${connection.userId}`) {
        return refuse('This channel belongs to another user; sign in first', 403);
      }
    } else if (needsAuthorization(type.kind)) {
      const channelData = type.kind === 'presence' ? data.channel_data : undefined;
      if (type.kind === 'presence' && typeof channelData !== 'string') {
        return refuse('channel_data is required on presence channels');
      }
      const expected = channelAuth(
        connection.app,
        connection.socketId,
        channel,
        channelData as string | undefined,
      );
      if (typeof data.auth !== 'string' || !sameSecret(data.auth, expected)) {
        return refuse('Invalid signature: the auth does not match this socket and channel');
      }
      if (type.kind === 'presence') {
        member = parseMember(channelData as string);
        if (member === null) return refuse('channel_data must be JSON with a user_id', 400);
        const problem = memberProblem(member, options.maxUserInfoBytes);
        if (problem !== undefined) return refuse(problem, 400);
      }
    }
    // Presence first: a full channel refuses the socket before it counts as a subscriber.
    const change = member === null ? undefined : await presence.join(connection, channel, member);
    if (change === 'full') {
      return send(
        connection,
        encodeFrame(
          'pusher:subscription_error',
          {
            type: 'LimitReached',
            error: `Presence channels hold at most ${MAX_PRESENCE_MEMBERS} members`,
            status: 403,
          },
          channel,
        ),
      );
    }
    connection.channels.set(channel, member);
    await channels.joinLocally(connection, channel);
    if (connection.closed) return;
    if (member !== null && change !== undefined)
      await presence.announceJoin(connection, channel, member, change);
    else send(connection, encodeFrame('pusher_internal:subscription_succeeded', '{}', channel));
    if (type.cache) await sendCached(connection, channel);
  }

  return {
    subscribe,
    async unsubscribe(connection, channel) {
      if (!connection.channels.has(channel)) return;
      const member = connection.channels.get(channel);
      connection.channels.delete(channel);
      if (member) await presence.leave(connection.app, channel, connection.socketId);
      channels.leaveLocally(connection, channel);
    },
  };
}
