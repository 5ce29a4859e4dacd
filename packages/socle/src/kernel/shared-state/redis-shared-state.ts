import type { Logger } from '../log/index.js';
import { createRedisConnections, isRedisUnavailable, type RedisConnections } from '../redis/index.js';
import type { PresenceMember, SharedState } from './shared-state.js';

/**
 * By default, a node that has not written its heartbeat for this long is dead; its members and
 * channels are removed (`REALTIME_NODE_EXPIRY_SECONDS`). Nodes heartbeat four times per expiry.
 */
export const NODE_EXPIRY_MS = 20_000;
/** How long the other nodes' connection counts of an app are reused before Redis is asked again. */
const CONNECTIONS_CACHE_MS = 1_000;

// Each script changes the shared state and this node's own record of what it added in one step,
// so a sweep after a crash removes exactly what the dead node had added.
const JOIN = `
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[5]) then
  return -1
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local count = redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('SADD', KEYS[3], ARGV[4])
return count`;
const LEAVE = `
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
local user = cjson.decode(value).u
local count = redis.call('HINCRBY', KEYS[2], user, -1)
if count <= 0 then redis.call('HDEL', KEYS[2], user) end
return {user, count}`;
// HGETALL as a flat list: ioredis turns the reply of its own hgetall into an object literal,
// where a field named __proto__ is lost.
const HASH_ENTRIES = `return redis.call('HGETALL', KEYS[1])`;
const OCCUPY = `
local count = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if count <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
local mine = redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[2])
if mine <= 0 then redis.call('HDEL', KEYS[2], ARGV[3]) end
if count < 0 then return 0 end
return count`;

// Sockets of an app on the live nodes but one: each node keeps a hash appId → count under its own
// key (expiring with its heartbeat), the script sums the live nodes' entries. Standalone Redis:
// the keys are built in the script.
const OTHER_NODES_CONNECTIONS = `
local live = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')
local total = 0
for _, node in ipairs(live) do
  if node ~= ARGV[2] then
    local count = redis.call('HGET', ARGV[3] .. node .. ':conns', ARGV[4])
    if count then total = total + tonumber(count) end
  end
end
return total`;

export interface RedisSharedStateOptions {
  /** The process's Redis connections (bounded, namespaced); or `redisUrl` to open its own. */
  readonly connections?: RedisConnections;
  readonly redisUrl?: string;
  readonly nodeId: string;
  readonly now: () => number;
  readonly log?: Logger;
  /** Key prefix; default `<namespace>:rt:` (REDIS_NAMESPACE), so deployments can share one Redis. */
  readonly prefix?: string;
  /** Silence after which a node is dead (default `NODE_EXPIRY_MS`); it heartbeats 4 times as often. */
  readonly nodeExpiryMs?: number;
}

/**
 * Presence members, channel counts and cached events in Redis, shared by every node. Each node
 * heartbeats in a sorted set; any node removes the members of a node silent for
 * `NODE_EXPIRY_MS` (one sweeper per dead node, by a `SET NX` lock) and reports them so their
 * channels hear `member_removed`.
 */
export function createRedisSharedState(options: RedisSharedStateOptions): SharedState {
  const { nodeId, now } = options;
  const ownConnections =
    options.connections === undefined
      ? createRedisConnections({
          url: requireUrl(options.redisUrl),
          ...(options.log ? { log: options.log } : {}),
        })
      : undefined;
  const redisConnections = options.connections ?? (ownConnections as RedisConnections);
  const prefix = options.prefix ?? redisConnections.prefix('rt');
  // Every command is bounded and fails fast with redis.unavailable while Redis is down (see BoundedRedis).
  const redis = redisConnections.open();
  // An outage is logged once by the connections; a line per failed call would flood the log.
  const warnUnlessOutage = (error: unknown, message: string) => {
    if (!isRedisUnavailable(error)) options.log?.warn({ err: error }, message);
  };
  const presenceKey = (appId: string, channel: string) => `${prefix}p:${appId}:${channel}`;
  const usersKey = (appId: string, channel: string) => `${prefix}pu:${appId}:${channel}`;
  const channelsKey = (appId: string) => `${prefix}c:${appId}`;
  const nodePresenceKey = (node: string) => `${prefix}node:${node}:p`;
  const nodeChannelsKey = (node: string) => `${prefix}node:${node}:c`;
  const nodeConnectionsKey = (node: string) => `${prefix}node:${node}:conns`;
  const nodesKey = `${prefix}nodes`;
  const nodeExpiryMs = options.nodeExpiryMs ?? NODE_EXPIRY_MS;
  const separator = '\u0000';

  const hashEntries = async (key: string) => {
    const flat = (await redis.eval(HASH_ENTRIES, 1, key)) as string[];
    const entries: [string, string][] = [];
    for (let index = 0; index < flat.length; index += 2)
      entries.push([flat[index] as string, flat[index + 1] as string]);
    return entries;
  };
  const leave = async (node: string, appId: string, channel: string, socketId: string) => {
    const result = (await redis.eval(
      LEAVE,
      3,
      presenceKey(appId, channel),
      usersKey(appId, channel),
      nodePresenceKey(node),
      socketId,
      [appId, channel, socketId].join(separator),
    )) as [string, number] | null;
    if (result === null) return undefined;
    return { userId: result[0], changed: Number(result[1]) <= 0 };
  };
  const occupy = async (node: string, appId: string, channel: string, delta: number) =>
    Number(
      await redis.eval(
        OCCUPY,
        2,
        channelsKey(appId),
        nodeChannelsKey(node),
        channel,
        delta,
        [appId, channel].join(separator),
      ),
    );

  // This node's connection counts: written as they change (one write in flight at a time, the
  // changes made meanwhile go in the next), the key's expiry refreshed by the heartbeat.
  const connections = new Map<string, number>();
  const changedApps = new Set<string>();
  let writingConnections: Promise<void> | undefined;
  const writeConnections = async () => {
    while (changedApps.size > 0) {
      const apps = [...changedApps];
      changedApps.clear();
      const write = redis.multi();
      for (const appId of apps) {
        const count = connections.get(appId) ?? 0;
        if (count > 0) write.hset(nodeConnectionsKey(nodeId), appId, count);
        else write.hdel(nodeConnectionsKey(nodeId), appId);
      }
      write.pexpire(nodeConnectionsKey(nodeId), nodeExpiryMs);
      await write.exec();
    }
  };
  const startWritingConnections = () => {
    writingConnections ??= writeConnections()
      .catch((error) => warnUnlessOutage(error, 'Realtime connection count not written'))
      .finally(() => {
        writingConnections = undefined;
        // A change made after the loop's last check, before this ran.
        if (changedApps.size > 0) startWritingConnections();
      });
  };
  const othersCache = new Map<string, { count: number; until: number }>();

  const heartbeat = () => {
    // Counts are written again with each heartbeat: that refreshes their expiry and repairs a
    // write that failed or a Redis that restarted empty.
    for (const appId of connections.keys()) changedApps.add(appId);
    startWritingConnections();
    return redis
      .zadd(nodesKey, now(), nodeId)
      .catch((error) => warnUnlessOutage(error, 'Realtime heartbeat failed'));
  };
  void heartbeat();
  const timer = setInterval(heartbeat, nodeExpiryMs / 4);
  timer.unref();

  return {
    nodeId,
    async join(appId, channel, socketId, member: PresenceMember, maxMembers) {
      const count = await redis.eval(
        JOIN,
        3,
        presenceKey(appId, channel),
        usersKey(appId, channel),
        nodePresenceKey(nodeId),
        socketId,
        member.userId,
        JSON.stringify({ u: member.userId, i: member.userInfo ?? null }),
        [appId, channel, socketId].join(separator),
        maxMembers,
      );
      if (Number(count) === -1) return 'full';
      return { userId: member.userId, changed: Number(count) === 1 };
    },
    leave: (appId, channel, socketId) => leave(nodeId, appId, channel, socketId),
    async members(appId, channel) {
      const entries = await redis.hvals(presenceKey(appId, channel));
      const byUser = new Map<string, PresenceMember>();
      for (const entry of entries) {
        const { u, i } = JSON.parse(entry) as { u: string; i: unknown };
        byUser.set(u, i === null ? { userId: u } : { userId: u, userInfo: i });
      }
      return [...byUser.values()];
    },
    occupy: (appId, channel, delta) => occupy(nodeId, appId, channel, delta),
    async channels(appId) {
      return new Map((await hashEntries(channelsKey(appId))).map(([name, count]) => [name, Number(count)]));
    },
    reportConnections(appId, count) {
      if (count > 0) connections.set(appId, count);
      else connections.delete(appId);
      changedApps.add(appId);
      startWritingConnections();
    },
    async otherNodesConnections(appId, { fresh = false } = {}) {
      const at = now();
      const cached = othersCache.get(appId);
      if (!fresh && cached !== undefined && cached.until > at) return cached.count;
      try {
        const count = Number(
          await redis.eval(
            OTHER_NODES_CONNECTIONS,
            1,
            nodesKey,
            at - nodeExpiryMs,
            nodeId,
            `${prefix}node:`,
            appId,
          ),
        );
        if (othersCache.size > 10_000) othersCache.clear();
        othersCache.set(appId, { count, until: at + CONNECTIONS_CACHE_MS });
        return count;
      } catch (error) {
        // Redis unreachable: limits fall back to what is known (this node's count, the last sum).
        warnUnlessOutage(error, 'Realtime connection counts of other nodes unavailable');
        return cached?.count ?? 0;
      }
    },
    async cacheEvent(appId, channel, frame, ttlMs) {
      await redis.set(`${prefix}cache:${appId}:${channel}`, frame, 'PX', ttlMs);
    },
    async cachedEvent(appId, channel) {
      return (await redis.get(`${prefix}cache:${appId}:${channel}`)) ?? undefined;
    },
    async sweepDeadNodes() {
      const removed: { appId: string; channel: string; userId: string }[] = [];
      const vacated: { appId: string; channel: string }[] = [];
      const dead = await redis.zrangebyscore(nodesKey, '-inf', now() - nodeExpiryMs);
      for (const node of dead) {
        if (node === nodeId) continue;
        // One survivor claims each dead node; the others skip it. Should the claimant die midway,
        // the claim expires and another finishes: each removal below is one atomic script that
        // changes nothing the second time, so nothing is announced twice.
        const claimed = await redis.set(`${prefix}sweep:${node}`, nodeId, 'PX', nodeExpiryMs, 'NX');
        if (claimed !== 'OK') continue;
        for (const entry of await redis.smembers(nodePresenceKey(node))) {
          const [appId, channel, socketId] = entry.split(separator) as [string, string, string];
          const change = await leave(node, appId, channel, socketId);
          if (change?.changed) removed.push({ appId, channel, userId: change.userId });
        }
        for (const [field, count] of await hashEntries(nodeChannelsKey(node))) {
          const [appId, channel] = field.split(separator) as [string, string];
          if ((await occupy(node, appId, channel, -Number(count))) === 0) vacated.push({ appId, channel });
        }
        await redis.del(nodePresenceKey(node), nodeChannelsKey(node), nodeConnectionsKey(node));
        await redis.zrem(nodesKey, node);
      }
      return { removed, vacated };
    },
    async close() {
      clearInterval(timer);
      await writingConnections;
      await redis.del(nodeConnectionsKey(nodeId)).catch(() => undefined);
      // A node that stops with members or subscriptions left (it could not clean up) stays in the
      // heartbeat set, so another node sweeps what it left once it expires.
      const [held, occupied] = await Promise.all([
        redis.scard(nodePresenceKey(nodeId)),
        redis.hlen(nodeChannelsKey(nodeId)),
      ]).catch(() => [1, 1]);
      if (held === 0 && occupied === 0) await redis.zrem(nodesKey, nodeId).catch(() => undefined);
      await redis.quit().catch(() => undefined);
      await ownConnections?.close();
    },
  };
}

function requireUrl(url: string | undefined): string {
  if (url === undefined) throw new TypeError('createRedisSharedState needs connections or redisUrl');
  return url;
}
