import { randomBytes } from 'node:crypto';
import type { Agent } from 'node:http';
import Pusher from 'pusher';
import PusherModule from 'pusher-js';
import WebSocket from 'ws';

/** pusher-js's class (its typings describe an ES default export; at run time it is the CJS export). */
type PusherClass = typeof import('pusher-js/types/src/core/pusher.js')['default'];
export type PusherJs = InstanceType<PusherClass>;
/** The class itself, for a client configured otherwise than {@link pusherClient}'s. */
export const PusherJs = PusherModule as unknown as PusherClass;
export type PresenceChannel = InstanceType<
  typeof import('pusher-js/types/src/core/channels/presence_channel.js')['default']
>;

/** The app every realtime test uses (configured like REALTIME_APP_ID/KEY/SECRET). */
export function testRealtimeApp(suffix = '') {
  const unique = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}${suffix}`;
  return {
    appId: `app-${unique}`,
    appKey: `key-${unique}`,
    appSecret: `secret-${unique}`,
    appEncryptionMasterKey: randomBytes(32).toString('base64'),
  };
}

/**
 * A second app of the same server, given to `createRealtimeModule({ apps })`, that takes at most
 * `maxConnections` sockets.
 */
export function limitedRealtimeApp(app: ReturnType<typeof testRealtimeApp>, maxConnections: number) {
  return {
    id: `limited-${app.appId}`,
    key: `limited-${app.appKey}`,
    secret: app.appSecret,
    encryptionMasterKey: undefined,
    orgId: null,
    maxConnections,
    clientEventsPerSecond: 10,
    backendEventsPerSecond: 0,
    webhookUrl: undefined,
  };
}

/** An app as the clients see it; without an encryption master key, encrypted channels are off. */
type AppConfig = Omit<ReturnType<typeof testRealtimeApp>, 'appEncryptionMasterKey'> & {
  appEncryptionMasterKey?: string;
};

/** A pusher-js client (the real browser library, Node build) pointed at a Socle server. */
export function pusherClient(
  baseUrl: string,
  app: Pick<AppConfig, 'appKey'>,
  /** A user's access token, sent as `Authorization: Bearer` with the authorization requests. */
  token?: string,
  options: {
    /** More headers of the authorization requests: `x-org-id`, `x-operator-token`. */
    readonly headers?: Record<string, string>;
    /**
     * Where channels are authorized (default `/realtime/auth`): `/operator/realtime/auth` for the
     * operator feed, `/org/realtime/feed/auth` for an organization's.
     */
    readonly authEndpoint?: string;
  } = {},
): PusherJs {
  const { hostname, port } = new URL(baseUrl);
  const headers = {
    ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    ...options.headers,
  };
  return new PusherJs(app.appKey, {
    cluster: 'local',
    wsHost: hostname,
    wsPort: Number(port),
    forceTLS: false,
    enabledTransports: ['ws'],
    disableStats: true,
    // Form-encoded, as pusher-js posts from a browser.
    channelAuthorization: {
      endpoint: `${baseUrl}${options.authEndpoint ?? '/realtime/auth'}`,
      transport: 'ajax',
      headers,
    },
    userAuthentication: { endpoint: `${baseUrl}/realtime/user-auth`, transport: 'ajax', headers },
  });
}

/** The official `pusher` server SDK pointed at a Socle server (through `agent`'s connections if given). */
export function pusherServer(baseUrl: string, app: AppConfig, secret = app.appSecret, agent?: Agent): Pusher {
  const { hostname, port } = new URL(baseUrl);
  return new Pusher({
    appId: app.appId,
    key: app.appKey,
    secret,
    host: hostname,
    port,
    useTLS: false,
    ...(agent === undefined ? {} : { agent }),
    ...(app.appEncryptionMasterKey === undefined
      ? {}
      : { encryptionMasterKeyBase64: app.appEncryptionMasterKey }),
  });
}

/** Resolves with the first `event` the emitter fires (pusher-js channels and clients). */
export function nextEvent<T = unknown>(
  emitter: {
    bind(event: string, callback: (data: T) => void): unknown;
    unbind(event: string, callback: (data: T) => void): unknown;
  },
  event: string,
): Promise<T> {
  return new Promise((resolve) => {
    const callback = (data: T) => {
      emitter.unbind(event, callback);
      resolve(data);
    };
    emitter.bind(event, callback);
  });
}

/** Resolves when the pusher-js client is connected; returns its socket id. */
export function connected(client: PusherJs): Promise<string> {
  return new Promise((resolve, reject) => {
    if (client.connection.state === 'connected') return resolve(client.connection.socket_id);
    client.connection.bind('connected', () => resolve(client.connection.socket_id));
    client.connection.bind('failed', () => reject(new Error('pusher-js could not connect')));
  });
}

/** A raw WebSocket speaking the Pusher protocol by hand, recording every frame it receives. */
export class RawPusherSocket {
  readonly frames: { event: string; channel?: string; data?: unknown }[] = [];
  readonly socket: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: { predicate: (frame: { event: string }) => boolean; resolve: (frame: never) => void }[] =
    [];

  constructor(baseUrl: string, key: string, query = 'protocol=7&client=raw&version=1') {
    this.socket = new WebSocket(`${baseUrl.replace('http', 'ws')}/app/${key}?${query}`);
    this.socket.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as { event: string };
      this.frames.push(frame);
      this.waiters = this.waiters.filter((waiter) => {
        if (!waiter.predicate(frame)) return true;
        waiter.resolve(frame as never);
        return false;
      });
    });
    this.closed = new Promise((resolve) => {
      this.socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    });
  }

  /** The first frame (already received or coming) with this event name. */
  next(event: string): Promise<{ event: string; channel?: string; data?: unknown }> {
    const known = this.frames.find((frame) => frame.event === event);
    if (known) return Promise.resolve(known);
    return new Promise((resolve) =>
      this.waiters.push({ predicate: (frame) => frame.event === event, resolve }),
    );
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  async socketId(): Promise<string> {
    const established = await this.next('pusher:connection_established');
    return (JSON.parse(established.data as string) as { socket_id: string }).socket_id;
  }

  close(): void {
    this.socket.close();
  }
}
