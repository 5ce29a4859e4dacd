/** A member of a presence channel as clients see it. */
export interface PresenceMember {
  readonly userId: string;
  readonly userInfo?: unknown;
}

/** What a sweep of dead nodes removed. */
export interface SweptNodes {
  readonly removed: readonly { appId: string; channel: string; userId: string }[];
  readonly vacated: readonly { appId: string; channel: string }[];
}

/** A change the cluster state reports so the gateway can tell subscribers. */
export interface MemberChange {
  readonly userId: string;
  /** True when this socket was the user's first (join) or last (leave) on the channel. */
  readonly changed: boolean;
}

/**
 * What every node must agree on: presence members, how many sockets use each channel, the last
 * event of cache channels. In memory when embedded; in Redis with `REDIS_URL`, where each node
 * also records what it added so the others can remove it if it dies.
 */
export interface ClusterState {
  readonly nodeId: string;
  /**
   * Adds the socket's member to a presence channel, unless the channel already holds `maxMembers`
   * users and this one is not among them: then nothing changes and `'full'` is returned. The check
   * and the addition are one step (a Lua script in Redis), so concurrent joins cannot overshoot.
   */
  join(
    appId: string,
    channel: string,
    socketId: string,
    member: PresenceMember,
    maxMembers: number,
  ): Promise<MemberChange | 'full'>;
  leave(appId: string, channel: string, socketId: string): Promise<MemberChange | undefined>;
  /** Members of a presence channel, one entry per user. */
  members(appId: string, channel: string): Promise<PresenceMember[]>;
  /** Adds `delta` sockets to the channel's subscription count; returns the cluster-wide count. */
  occupy(appId: string, channel: string, delta: number): Promise<number>;
  /** Occupied channels of an app with their subscription counts. */
  channels(appId: string): Promise<Map<string, number>>;
  /**
   * This node now holds `count` sockets of the app. With Redis the count is published for the
   * other nodes (they add it to their own to enforce per-app connection limits fleet-wide).
   */
  reportConnections(appId: string, count: number): void;
  /**
   * Sockets of the app on the other live nodes: 0 in memory; with Redis the sum of what they
   * reported, cached for a second unless `fresh`.
   */
  otherNodesConnections(appId: string, options?: { fresh?: boolean }): Promise<number>;
  cacheEvent(appId: string, channel: string, frame: string, ttlMs: number): Promise<void>;
  cachedEvent(appId: string, channel: string): Promise<string | undefined>;
  /**
   * Removes what nodes that stopped heartbeating had added; returns the members removed (users
   * with no socket left on the channel) and the channels left empty, so they can be announced.
   * Each dead node is swept by one node only. No-op in memory.
   */
  sweepDeadNodes(): Promise<SweptNodes>;
  close(): Promise<void>;
}

/** The state of a single node, in memory. */
export function createMemoryClusterState(nodeId: string, now: () => number): ClusterState {
  const presence = new Map<string, Map<string, PresenceMember>>();
  const counts = new Map<string, Map<string, number>>();
  const cache = new Map<string, { frame: string; until: number }>();
  const key = (appId: string, channel: string) => `${appId}\u0000${channel}`;
  const socketsOfUser = (sockets: Map<string, PresenceMember>, userId: string) => {
    let count = 0;
    for (const member of sockets.values()) if (member.userId === userId) count++;
    return count;
  };
  return {
    nodeId,
    async join(appId, channel, socketId, member, maxMembers) {
      // No await from the check to the addition: concurrent joins see each other's.
      let sockets = presence.get(key(appId, channel));
      if (sockets === undefined) {
        sockets = new Map();
        presence.set(key(appId, channel), sockets);
      }
      const changed = socketsOfUser(sockets, member.userId) === 0;
      if (changed && new Set([...sockets.values()].map((known) => known.userId)).size >= maxMembers)
        return 'full';
      sockets.set(socketId, member);
      return { userId: member.userId, changed };
    },
    async leave(appId, channel, socketId) {
      const sockets = presence.get(key(appId, channel));
      const member = sockets?.get(socketId);
      if (sockets === undefined || member === undefined) return undefined;
      sockets.delete(socketId);
      if (sockets.size === 0) presence.delete(key(appId, channel));
      return { userId: member.userId, changed: socketsOfUser(sockets, member.userId) === 0 };
    },
    async members(appId, channel) {
      const byUser = new Map<string, PresenceMember>();
      for (const member of presence.get(key(appId, channel))?.values() ?? [])
        byUser.set(member.userId, member);
      return [...byUser.values()];
    },
    async occupy(appId, channel, delta) {
      let channels = counts.get(appId);
      if (channels === undefined) {
        channels = new Map();
        counts.set(appId, channels);
      }
      const count = (channels.get(channel) ?? 0) + delta;
      if (count <= 0) channels.delete(channel);
      else channels.set(channel, count);
      return Math.max(count, 0);
    },
    async channels(appId) {
      return new Map(counts.get(appId) ?? []);
    },
    reportConnections() {},
    async otherNodesConnections() {
      return 0;
    },
    async cacheEvent(appId, channel, frame, ttlMs) {
      cache.set(key(appId, channel), { frame, until: now() + ttlMs });
    },
    async cachedEvent(appId, channel) {
      const entry = cache.get(key(appId, channel));
      if (entry === undefined) return undefined;
      if (entry.until <= now()) {
        cache.delete(key(appId, channel));
        return undefined;
      }
      return entry.frame;
    },
    async sweepDeadNodes() {
      return { removed: [], vacated: [] };
    },
    async close() {
      presence.clear();
      counts.clear();
      cache.clear();
    },
  };
}
