import type { RateLimiter, SharedState } from '../../kernel/index.js';
import type { RealtimeApp } from './apps.js';
import { looksEncrypted } from './encryption.js';
import type { Gateway } from './gateway.js';
import { channelType } from './protocol.js';
import { realtimeErrors } from './realtime.errors.js';

/** An event of Pusher's HTTP API (`POST /apps/{id}/events`, or one of a batch). */
export interface ApiEvent {
  readonly name: string;
  readonly data: unknown;
  readonly channel?: string | undefined;
  readonly channels?: readonly string[] | undefined;
  readonly socket_id?: string | undefined;
  /** Attributes of the channels to answer with: `subscription_count`, `user_count`. */
  readonly info?: string | undefined;
}

type ChannelAttributes = { subscription_count?: number; user_count?: number };

export interface HttpApiService {
  /** Publishes an event; answers the `info` asked for (of the event, else of the query). */
  trigger(
    app: RealtimeApp,
    event: ApiEvent,
    queryInfo?: string,
  ): Promise<{ channels?: Record<string, ChannelAttributes> }>;
  /** Publishes up to 10 events, checked and rate-limited together before any is sent. */
  triggerBatch(app: RealtimeApp, batch: readonly ApiEvent[]): Promise<{ batch: ChannelAttributes[] }>;
  /** Occupied channels, optionally by prefix, with `user_count` for presence prefixes. */
  occupiedChannels(
    app: RealtimeApp,
    query: { prefix?: string | undefined; info?: string | undefined },
  ): Promise<{ channels: Record<string, { user_count?: number }> }>;
  /** Whether a channel is occupied, and the counts asked for. */
  channelState(
    app: RealtimeApp,
    channel: string,
    info: string | undefined,
  ): Promise<{ occupied: boolean; user_count?: number; subscription_count?: number }>;
  /** The users of a presence channel. */
  presenceUsers(app: RealtimeApp, channel: string): Promise<{ users: { id: string }[] }>;
  /** Closes every connection of a signed-in user, on every node. */
  terminateUserConnections(app: RealtimeApp, userId: string): Promise<void>;
}

/**
 * What Pusher's HTTP API does once a call is signed (see signature.service.ts): validates events
 * (channels, size, encryption), limits an app's events per second, publishes through the gateway
 * and reads channel state from the fleet-wide shared state.
 */
export function createHttpApiService(options: {
  readonly gateway: Gateway;
  readonly state: SharedState;
  readonly rateLimiter: RateLimiter;
  readonly maxMessageBytes: number;
}): HttpApiService {
  const { gateway, state, maxMessageBytes } = options;

  /**
   * Pusher's `info` of an event: for each channel triggered to, the attributes asked for
   * (`subscription_count`, `user_count` on presence channels), read after the publish.
   */
  async function channelInfo(target: RealtimeApp, channels: readonly string[], info: string | undefined) {
    const wanted = (info ?? '').split(',').map((item) => item.trim());
    const subscriptions = wanted.includes('subscription_count');
    const users = wanted.includes('user_count');
    if (!subscriptions && !users) return undefined;
    const counts = subscriptions ? await state.channels(target.id) : new Map<string, number>();
    const result: Record<string, ChannelAttributes> = Object.create(null);
    for (const channel of channels) {
      const attributes: ChannelAttributes = {};
      if (subscriptions) attributes.subscription_count = counts.get(channel) ?? 0;
      if (users && channelType(channel)?.kind === 'presence')
        attributes.user_count = (await state.members(target.id, channel)).length;
      result[channel] = attributes;
    }
    return result;
  }

  async function limitEvents(target: RealtimeApp, count: number) {
    if (target.backendEventsPerSecond <= 0) return;
    const result = await options.rateLimiter.consume(
      `realtime:events:${target.id}`,
      { limit: target.backendEventsPerSecond, windowMs: 1000 },
      Math.min(count, target.backendEventsPerSecond),
    );
    if (!result.allowed) throw realtimeErrors.rateLimited(result.retryAfterMs);
  }

  function checkEvent(event: ApiEvent) {
    const channels = event.channels ?? (event.channel === undefined ? [] : [event.channel]);
    if (channels.length === 0) throw realtimeErrors.invalidEvent('channel or channels is required');
    let encrypted: string | undefined;
    for (const channel of channels) {
      const type = channelType(channel);
      if (type === undefined) throw realtimeErrors.invalidChannel(channel);
      if (type.kind === 'encrypted') encrypted ??= channel;
    }
    const data = typeof event.data === 'string' ? event.data : JSON.stringify(event.data ?? null);
    if (Buffer.byteLength(data) > maxMessageBytes) throw realtimeErrors.payloadTooLarge(maxMessageBytes);
    // Socle relays encrypted events without reading them; plain text there would be a leak the
    // subscribers could not even read (the SDK encrypts only when given the master key).
    if (encrypted !== undefined && !looksEncrypted(data)) throw realtimeErrors.unencryptedPayload(encrypted);
    return { channels, data };
  }

  const publish = (target: RealtimeApp, event: ApiEvent, channels: readonly string[], data: string) =>
    gateway.publish({ app: target, channels, event: event.name, data, excludeSocketId: event.socket_id });

  return {
    async trigger(target, event, queryInfo) {
      const { channels, data } = checkEvent(event);
      await limitEvents(target, channels.length);
      await publish(target, event, channels, data);
      const info = await channelInfo(target, channels, event.info ?? queryInfo);
      return info === undefined ? {} : { channels: info };
    },

    async triggerBatch(target, events) {
      const checked = events.map((event) => ({ event, ...checkEvent(event) }));
      await limitEvents(
        target,
        checked.reduce((sum, item) => sum + item.channels.length, 0),
      );
      for (const { event, channels, data } of checked) await publish(target, event, channels, data);
      // One attributes object per event: those of its (first) channel, as Pusher answers.
      const batch: ChannelAttributes[] = [];
      for (const { event, channels } of checked)
        batch.push(
          (await channelInfo(target, channels.slice(0, 1), event.info))?.[channels[0] as string] ?? {},
        );
      return { batch };
    },

    async occupiedChannels(target, { prefix, info }) {
      const wantsUserCount = (info ?? '').split(',').includes('user_count');
      if (wantsUserCount && !(prefix ?? '').startsWith('presence-')) {
        throw realtimeErrors.invalidEvent('info=user_count needs filter_by_prefix=presence-');
      }
      // Keyed by channel names clients choose: no prototype, so "__proto__" is listed too.
      const channels: Record<string, { user_count?: number }> = Object.create(null);
      for (const [name] of await state.channels(target.id)) {
        if (prefix !== undefined && !name.startsWith(prefix)) continue;
        channels[name] = wantsUserCount ? { user_count: (await state.members(target.id, name)).length } : {};
      }
      return { channels };
    },

    async channelState(target, channel, info) {
      const type = channelType(channel);
      if (type === undefined) throw realtimeErrors.invalidChannel(channel);
      const wanted = (info ?? '').split(',');
      const subscriptionCount = (await state.channels(target.id)).get(channel) ?? 0;
      const result: { occupied: boolean; user_count?: number; subscription_count?: number } = {
        occupied: subscriptionCount > 0,
      };
      if (wanted.includes('user_count')) {
        if (type.kind !== 'presence') throw realtimeErrors.notPresence(channel);
        result.user_count = (await state.members(target.id, channel)).length;
      }
      if (wanted.includes('subscription_count')) result.subscription_count = subscriptionCount;
      return result;
    },

    async presenceUsers(target, channel) {
      if (channelType(channel)?.kind !== 'presence') throw realtimeErrors.notPresence(channel);
      const members = await state.members(target.id, channel);
      return { users: members.map((member) => ({ id: member.userId })) };
    },

    async terminateUserConnections(target, userId) {
      await gateway.terminateUserConnections(target.id, userId);
    },
  };
}
