import { defineSettings, type SettingParser, type SettingValues, setting } from '../../kernel/index.js';

/**
 * A channel rule of the configuration: channels matching `pattern` (`{orgId}` and `{userId}`
 * placeholders, `*` for any rest) may be joined by any signed-in user (`user`), or by members of
 * the pattern's `{orgId}` organization with at least that role.
 */
export interface RealtimeChannelRule {
  readonly pattern: string;
  readonly role: 'user' | 'owner' | 'admin' | 'member' | 'viewer';
}

const CHANNEL_RULE = /^((?:private|presence)-[-a-zA-Z0-9_=@,.;{}*]+):(user|owner|admin|member|viewer)$/;

/** `pattern:role` items, separated by spaces (channel names may hold commas), or a list of them. */
const channelRules: SettingParser<readonly RealtimeChannelRule[]> = (raw) => {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(/\s+/) : [raw];
  const rules: RealtimeChannelRule[] = [];
  for (const item of items) {
    if (item === '') continue;
    const match = typeof item === 'string' ? CHANNEL_RULE.exec(item) : null;
    if (match === null)
      return {
        ok: false,
        message: `must be pattern:role items (a private- or presence- pattern; role user, owner, admin, member or viewer), got ${JSON.stringify(item)}`,
      };
    rules.push({ pattern: match[1] as string, role: match[2] as RealtimeChannelRule['role'] });
  }
  return { ok: true, value: rules };
};

/** The realtime module's settings (`socle help config` lists them). */
export const realtimeSettings = defineSettings({
  appId: setting.optionalString({
    env: 'REALTIME_APP_ID',
    description: 'Id of the realtime app defined by configuration (with REALTIME_APP_KEY and _SECRET)',
  }),
  appKey: setting.optionalString({
    env: 'REALTIME_APP_KEY',
    description: 'Public key of the configured realtime app (Pusher key)',
  }),
  /** Secret of the configured realtime app (HMAC of auth signatures). Never log it. */
  appSecret: setting.optionalString({
    env: 'REALTIME_APP_SECRET',
    description: 'Secret of the configured realtime app (signs channel authorizations and API calls)',
    secret: true,
  }),
  /**
   * Encryption master key of the configured realtime app (base64 of 32 bytes, the pusher SDK's
   * `encryptionMasterKeyBase64`): needed for `private-encrypted-` channels. Never log it.
   */
  appEncryptionMasterKey: setting.key({
    env: 'REALTIME_APP_ENCRYPTION_MASTER_KEY',
    description:
      'Encryption master key of the configured realtime app, for private-encrypted- channels (base64 of 32 bytes, as the pusher SDK takes it)',
  }),
  webhookUrl: setting.optionalString({
    env: 'REALTIME_WEBHOOK_URL',
    description: 'URL receiving Pusher webhooks of the configured realtime app',
  }),
  maxMessageBytes: setting.integer({
    env: 'REALTIME_MAX_MESSAGE_BYTES',
    description: 'Largest realtime event payload, in bytes',
    default: 10_240,
    min: 256,
    max: 1_048_576,
  }),
  /** Sent to clients as `activity_timeout`. */
  activityTimeoutSeconds: setting.integer({
    env: 'REALTIME_ACTIVITY_TIMEOUT_SECONDS',
    description: 'Seconds of silence before the server pings a realtime connection',
    default: 120,
    min: 1,
    max: 3600,
  }),
  /** Above it: `pusher:error` 4301. */
  clientEventsPerSecond: setting.integer({
    env: 'REALTIME_CLIENT_EVENTS_PER_SECOND',
    description: 'Client events one realtime connection may send per second',
    default: 10,
    min: 1,
    max: 10_000,
  }),
  /**
   * Bytes a realtime socket may have waiting in the server's memory (written, not yet taken by the
   * kernel). A frame that would take a socket past it is not queued: the socket is closed with 4100
   * (over capacity: the client backs off, then reconnects), so clients that stop reading cannot run
   * the server out of memory.
   */
  maxBufferedBytes: setting.integer({
    env: 'REALTIME_MAX_BUFFERED_BYTES',
    description:
      'Bytes a realtime socket may have waiting in server memory; a socket that does not read fast enough to stay under it is closed with 4100',
    default: 1_048_576,
    min: 65_536,
    max: 268_435_456,
  }),
  /**
   * Milliseconds during which frames to a socket that was just written to are held and then sent
   * together (0: each turn of the event loop writes what it produced). One system call per socket
   * and write is most of a fan-out's CPU; a game whose rooms send several messages within a few
   * milliseconds (a buzz order per buzz) halves its writes for at most this much added delay. A
   * socket not written to for this long gets its next frame at once: a lone message waits nothing.
   */
  writeCoalesceMs: setting.integer({
    env: 'REALTIME_WRITE_COALESCE_MS',
    description:
      'Frames to a socket written to less than this many ms ago are held and sent in one write when it ends (0: no holding past the event loop turn); a lone frame is never held',
    default: 0,
    min: 0,
    max: 1000,
  }),
  maxUserInfoBytes: setting.integer({
    env: 'REALTIME_MAX_USER_INFO_BYTES',
    description:
      'Largest presence user_info (serialized JSON, bytes); larger ones are refused on the socket and at /realtime/auth',
    default: 1024,
    min: 64,
    max: 65_536,
  }),
  maxChannelsPerConnection: setting.integer({
    env: 'REALTIME_MAX_CHANNELS_PER_CONNECTION',
    description:
      'Channels one socket may be subscribed to at once; past it a subscription gets pusher:subscription_error LimitReached',
    default: 200,
    min: 1,
    max: 100_000,
  }),
  /**
   * With Redis: seconds after its last heartbeat that a node counts as dead: another node then
   * removes its members and channels and announces it (`member_removed`, webhooks).
   */
  nodeExpirySeconds: setting.integer({
    env: 'REALTIME_NODE_EXPIRY_SECONDS',
    description:
      'With Redis: seconds without heartbeat after which a node is dead and its members are removed and announced (within 1.25 × this)',
    default: 20,
    min: 2,
    max: 600,
  }),
  /** Who may join which private and presence channels, besides the built-in rules and modules'. */
  channelRules: setting.custom({
    env: 'REALTIME_CHANNEL_RULES',
    description:
      'Extra channel rules, space-separated pattern:role (e.g. private-org-{orgId}-billing-*:admin presence-lobby-*:user)',
    default: [] as readonly RealtimeChannelRule[],
    parse: channelRules,
  }),
});

export type RealtimeSettings = SettingValues<typeof realtimeSettings>;
