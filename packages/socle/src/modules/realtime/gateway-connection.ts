import type { IncomingMessage } from 'node:http';
import type { WebSocket } from 'ws';
import type { PresenceMember } from '../../kernel/index.js';
import type { RealtimeApp } from './apps.js';
import type { FanoutRecipient } from './fanout-writer.js';
import type { LatencyState } from './gateway-latency.js';
import { parseJsonObject } from './protocol.js';

/** One WebSocket of the gateway and what this node knows of it. */
export interface Connection extends FanoutRecipient {
  readonly socket: WebSocket;
  readonly socketId: string;
  readonly app: RealtimeApp;
  /** Channels joined, with the presence member the socket joined as. */
  readonly channels: Map<string, PresenceMember | null>;
  userId: string | undefined;
  lastActivity: number;
  pingSentAt: number | undefined;
  clientEventWindow: number;
  clientEventCount: number;
  /** Round-trip samples of server pings (see gateway-latency.ts). */
  readonly latency: LatencyState;
  closed: boolean;
  /** The socket's handlers, chained: one frame at a time, then the cleanup of its close. */
  handling: Promise<void>;
}

/** The bus channel carrying a Pusher channel of an app. */
export const busChannel = (appId: string, channel: string) => `rt:${appId}:${channel}`;

/** The key of a signed-in user's sockets (`users` of the gateway). */
export const userKey = (appId: string, userId: string) => `${appId}\u0000${userId}`;

/**
 * Why an upgrade request is not a WebSocket handshake `ws` accepts (RFC 6455 §4.2.1: GET,
 * `Upgrade: websocket`, a 16-byte base64 `Sec-WebSocket-Key`, version 13 or 8), or undefined.
 */
export function invalidHandshake(request: IncomingMessage): string | undefined {
  if (request.method !== 'GET') return 'the method must be GET';
  if (request.headers.upgrade?.toLowerCase() !== 'websocket') return 'only websocket upgrades are served';
  const key = request.headers['sec-websocket-key'];
  if (key === undefined || !/^[+/0-9A-Za-z]{22}==$/.test(key.trim()))
    return 'Sec-WebSocket-Key must be 16 bytes in base64';
  const version = request.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') return 'Sec-WebSocket-Version must be 13';
  return undefined;
}

/** The presence member of `channel_data` (`user_id` a non-empty string or a number), or null. */
export function parseMember(channelData: string): PresenceMember | null {
  const parsed = parseJsonObject(channelData);
  if (parsed === undefined) return null;
  const { user_id: userId, user_info: userInfo } = parsed;
  if ((typeof userId !== 'string' || userId === '') && typeof userId !== 'number') return null;
  return userInfo === undefined ? { userId: String(userId) } : { userId: String(userId), userInfo };
}
