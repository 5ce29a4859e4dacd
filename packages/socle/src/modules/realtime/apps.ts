import { decodeSecretKey } from '../../kernel/index.js';
import type { RealtimeSettings } from './realtime.settings.js';

/** A realtime app: a key/secret pair clients and servers use, with its limits. */
export interface RealtimeApp {
  readonly id: string;
  readonly key: string;
  /** Kept recoverable (not hashed): every signature is an HMAC with it. */
  readonly secret: string;
  /**
   * The key `private-encrypted-` channels derive their shared secrets from (32 bytes; Pusher's
   * `encryptionMasterKeyBase64`); undefined when the app has none.
   */
  readonly encryptionMasterKey: Buffer | undefined;
  /** The organization the app belongs to; null for the app defined by configuration. */
  readonly orgId: string | null;
  /** Connections the fleet accepts for this app (see `ClusterState.otherNodesConnections`); 0: no limit. */
  readonly maxConnections: number;
  /** Client events one connection may send per second. */
  readonly clientEventsPerSecond: number;
  /** Events per second the HTTP API accepts for this app; 0 means no limit. */
  readonly backendEventsPerSecond: number;
  /** Where Pusher webhooks of this app are posted; undefined: none. */
  readonly webhookUrl: string | undefined;
}

/** Finds apps by the key clients connect with and by the id the HTTP API names. */
export interface AppDirectory {
  byKey(key: string): Promise<RealtimeApp | undefined>;
  byId(id: string): Promise<RealtimeApp | undefined>;
  /** The app used when a request names none (the configured one), if any. */
  readonly defaultApp: RealtimeApp | undefined;
}

/** The app of `REALTIME_APP_ID/KEY/SECRET`, when all three are set. */
export function configuredApp(settings: RealtimeSettings): RealtimeApp | undefined {
  if (settings.appId === undefined || settings.appKey === undefined || settings.appSecret === undefined)
    return undefined;
  return {
    id: settings.appId,
    key: settings.appKey,
    secret: settings.appSecret,
    encryptionMasterKey:
      settings.appEncryptionMasterKey === undefined
        ? undefined
        : decodeSecretKey(settings.appEncryptionMasterKey),
    orgId: null,
    maxConnections: 0,
    clientEventsPerSecond: settings.clientEventsPerSecond,
    backendEventsPerSecond: 0,
    webhookUrl: settings.webhookUrl,
  };
}
