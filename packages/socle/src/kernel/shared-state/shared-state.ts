/** A member of a presence group (a realtime presence channel, a quiz room) as others see it. */
export interface PresenceMember {
  readonly userId: string;
  readonly userInfo?: unknown;
}

/** What a sweep of dead nodes removed. */
export interface SweptNodes {
  readonly removed: readonly { appId: string; channel: string; userId: string }[];
  readonly vacated: readonly { appId: string; channel: string }[];
}

/** A change the shared state reports so its user can tell the others (`member_added`, …). */
export interface MemberChange {
  readonly userId: string;
  /** True when this member id was the user's first (join) or last (leave) in the group. */
  readonly changed: boolean;
}

/**
 * What every node of a fleet must agree on, as one node sees it: presence groups (who is in
 * `space`/`key`, one entry per member id, deduplicated per user), occupancy counts, per-node gauges
 * summed across the live nodes, and a cache with expiry. Built by the kernel
 * (`context.sharedState.open(…)`): in memory when embedded; in Redis with `REDIS_URL`, where each
 * node also records what it added so the survivors remove it if it dies (`sweepDeadNodes`).
 * Its user never knows which.
 *
 * The realtime module keeps its presence channels, subscription counts, connection counts and
 * cache channels here (`space` is the app id, `key` the channel).
 */
export interface SharedState {
  readonly nodeId: string;
  /**
   * Adds a member (`memberId`: a socket, say) to a presence group, unless the group already holds
   * `maxMembers` users and this one is not among them: then nothing changes and `'full'` is
   * returned. The check and the addition are one step (a Lua script in Redis), so concurrent joins
   * cannot overshoot.
   */
  join(
    space: string,
    key: string,
    memberId: string,
    member: PresenceMember,
    maxMembers: number,
  ): Promise<MemberChange | 'full'>;
  leave(space: string, key: string, memberId: string): Promise<MemberChange | undefined>;
  /** Members of a presence group, one entry per user. */
  members(space: string, key: string): Promise<PresenceMember[]>;
  /** Adds `delta` to the occupancy count of `key` (fleet-wide); returns the new count. */
  occupy(space: string, key: string, delta: number): Promise<number>;
  /** Occupied keys of a space with their counts. */
  channels(space: string): Promise<Map<string, number>>;
  /**
   * This node's gauge for `space` is now `count` (the realtime module: its sockets of an app). With
   * Redis it is published for the other nodes, which add it to their own (fleet-wide limits).
   */
  reportConnections(space: string, count: number): void;
  /**
   * The gauges of the other live nodes for `space`, summed: 0 in memory; with Redis what they
   * reported, cached for a second unless `fresh`.
   */
  otherNodesConnections(space: string, options?: { fresh?: boolean }): Promise<number>;
  /** Keeps `frame` as the cached value of `key` for `ttlMs`. */
  cacheEvent(space: string, key: string, frame: string, ttlMs: number): Promise<void>;
  cachedEvent(space: string, key: string): Promise<string | undefined>;
  /**
   * Removes what nodes that stopped heartbeating had added; returns the members removed (users
   * with no member id left in the group) and the keys left unoccupied, so they can be announced.
   * Each dead node is swept by one node only. No-op in memory.
   */
  sweepDeadNodes(): Promise<SweptNodes>;
  close(): Promise<void>;
}

/** The state of a single node, in memory. */
export function createMemorySharedState(nodeId: string, now: () => number): SharedState {
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
