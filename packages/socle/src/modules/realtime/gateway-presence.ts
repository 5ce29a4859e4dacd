import type { Logger, MemberChange, PresenceMember, SharedState } from '../../kernel/index.js';
import type { AppDirectory, RealtimeApp } from './apps.js';
import type { SocketOutput } from './gateway-backpressure.js';
import type { ChannelRouter } from './gateway-channels.js';
import type { Connection } from './gateway-connection.js';
import { encodeFrame } from './protocol.js';
import type { WebhookEvent } from './webhooks.js';

/** Presence channels refuse members beyond this many (Pusher's limit). */
export const MAX_PRESENCE_MEMBERS = 100;

/** Who is in each presence channel, fleet-wide, and the announcements of each change. */
export interface Presence {
  /** Adds the socket's member, unless the channel is full (`'full'`, nothing changed). */
  join(connection: Connection, channel: string, member: PresenceMember): Promise<MemberChange | 'full'>;
  /** Sends the socket the members, then tells the others (and the webhook) of a new user. */
  announceJoin(
    connection: Connection,
    channel: string,
    member: PresenceMember,
    change: MemberChange,
  ): Promise<void>;
  /** Removes the socket's member; tells the channel (and the webhook) when its user left. */
  leave(app: RealtimeApp, channel: string, socketId: string): Promise<void>;
  /**
   * Removes what dead nodes left in the cluster state and announces it: `member_removed` to the
   * presence channels' subscribers on every node, and the `member_removed` / `channel_vacated`
   * webhooks. Each dead node is claimed by one sweeping node, so each is announced once.
   */
  sweepDeadNodes(): Promise<void>;
}

export function createPresence(options: {
  readonly apps: AppDirectory;
  readonly state: SharedState;
  readonly log: Logger;
  readonly output: SocketOutput;
  readonly channels: ChannelRouter;
  readonly emit: (app: RealtimeApp, event: WebhookEvent) => void;
}): Presence {
  const { apps, state, log, output, channels, emit } = options;
  return {
    join(connection, channel, member) {
      return state.join(connection.app.id, channel, connection.socketId, member, MAX_PRESENCE_MEMBERS);
    },

    async announceJoin(connection, channel, member, change) {
      const appId = connection.app.id;
      const members = await state.members(appId, channel);
      // Keyed by user ids clients choose: no prototype, so "__proto__" is a member like any other.
      const hash: Record<string, unknown> = Object.create(null);
      for (const known of members) hash[known.userId] = known.userInfo ?? null;
      output.send(
        connection,
        encodeFrame(
          'pusher_internal:subscription_succeeded',
          JSON.stringify({ presence: { ids: Object.keys(hash), hash, count: members.length } }),
          channel,
        ),
      );
      if (change.changed) {
        const added = JSON.stringify({ user_id: member.userId, user_info: member.userInfo ?? null });
        await channels.publishFrame(
          appId,
          channel,
          encodeFrame('pusher_internal:member_added', added, channel),
          connection.socketId,
        );
        emit(connection.app, { name: 'member_added', channel, user_id: member.userId });
      }
    },

    async leave(app, channel, socketId) {
      const change = await state.leave(app.id, channel, socketId);
      if (change?.changed) {
        const removed = JSON.stringify({ user_id: change.userId });
        await channels.publishFrame(
          app.id,
          channel,
          encodeFrame('pusher_internal:member_removed', removed, channel),
        );
        emit(app, { name: 'member_removed', channel, user_id: change.userId });
      }
    },

    async sweepDeadNodes() {
      const { removed, vacated } = await state.sweepDeadNodes();
      for (const { appId, channel, userId } of removed) {
        const frame = JSON.stringify({ user_id: userId });
        await channels.publishFrame(
          appId,
          channel,
          encodeFrame('pusher_internal:member_removed', frame, channel),
        );
        const app = await apps.byId(appId);
        if (app !== undefined) emit(app, { name: 'member_removed', channel, user_id: userId });
      }
      for (const { appId, channel } of vacated) {
        const app = await apps.byId(appId);
        if (app !== undefined) emit(app, { name: 'channel_vacated', channel });
      }
      if (removed.length > 0 || vacated.length > 0)
        log.info(
          { members: removed.length, channels: vacated.length },
          'Realtime: removed and announced what dead nodes left',
        );
    },
  };
}
