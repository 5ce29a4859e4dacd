import type { SharedState } from '../../kernel/index.js';
import type { ActingAdmin, AppsService } from './apps.service.js';
import type { Gateway } from './gateway.js';
import { channelType } from './protocol.js';
import { realtimeErrors } from './realtime.errors.js';

/** At most this many channels, and members per presence channel, in one answer. */
export const ACTIVITY_MAX_CHANNELS = 500;
export const ACTIVITY_MAX_MEMBERS = 100;

/** What is happening in one realtime app now, across every node. */
export interface AppActivity {
  readonly connections: number;
  readonly channels: {
    readonly name: string;
    readonly subscriptions: number;
    /** Presence channels only: one entry per user (the first `ACTIVITY_MAX_MEMBERS`). */
    readonly members?: { readonly userId: string; readonly userInfo?: unknown }[];
    readonly memberCount?: number;
  }[];
  /** More channels are occupied than listed. */
  readonly truncated: boolean;
}

/**
 * An organization's view of its app's live state, for its admins (the console): sockets connected
 * across the fleet, occupied channels with their subscriptions, presence members. Read from the
 * fleet-wide shared state the gateway keeps (memory embedded, Redis on a fleet).
 */
export function createActivityService(options: {
  readonly apps: Pick<AppsService, 'list' | 'directory'>;
  readonly gateway: Pick<Gateway, 'fleetConnectionCount'>;
  readonly state: Pick<SharedState, 'channels' | 'members'>;
}) {
  async function activityOf(appId: string): Promise<AppActivity> {
    const occupied = [...(await options.state.channels(appId))].sort(([a], [b]) => a.localeCompare(b));
    const channels: AppActivity['channels'][number][] = [];
    for (const [name, subscriptions] of occupied.slice(0, ACTIVITY_MAX_CHANNELS)) {
      if (channelType(name)?.kind !== 'presence') {
        channels.push({ name, subscriptions });
        continue;
      }
      const members = await options.state.members(appId, name);
      channels.push({
        name,
        subscriptions,
        memberCount: members.length,
        members: members.slice(0, ACTIVITY_MAX_MEMBERS).map((member) => ({
          userId: member.userId,
          ...(member.userInfo === undefined ? {} : { userInfo: member.userInfo }),
        })),
      });
    }
    return {
      connections: await options.gateway.fleetConnectionCount(appId),
      channels,
      truncated: occupied.length > ACTIVITY_MAX_CHANNELS,
    };
  }
  return {
    async activity(acting: ActingAdmin, appId: string): Promise<AppActivity> {
      // The organization's own apps only (row-level security): another's answers 404.
      const owned = (await options.apps.list(acting)).some((app) => app.id === appId);
      if (!owned) throw realtimeErrors.appNotFound();
      return activityOf(appId);
    },

    /** Any organization's app, for the operator (found by id in any organization, or 404). */
    async activityForOperator(appId: string): Promise<AppActivity> {
      if ((await options.apps.directory.byId(appId)) === undefined) throw realtimeErrors.appNotFound();
      return activityOf(appId);
    },
  };
}

export type ActivityService = ReturnType<typeof createActivityService>;
