import { createHash, createHmac, randomInt, timingSafeEqual } from 'node:crypto';

/**
 * The Pusher Channels protocol (version 7) as Socle speaks it: channel names, signatures, frames.
 * Written by hand because no maintained library implements the server side; the rules come from
 * Pusher's protocol and authentication documentation.
 */
export const PROTOCOL_VERSION = 7;

/** Close codes. 4000–4099: do not reconnect; 4100–4199: back off; 4200–4299: reconnect now. */
export const CLOSE = {
  appNotFound: 4001,
  /** Not a Pusher code: frames that are not JSON objects with an `event` (see docs/realtime.md). */
  malformedFrame: 4002,
  overConnectionQuota: 4004,
  pathNotFound: 4005,
  invalidVersion: 4006,
  unsupportedVersion: 4007,
  noVersion: 4008,
  unauthorized: 4009,
  overCapacity: 4100,
  reconnect: 4200,
  pongNotReceived: 4201,
  closedAfterInactivity: 4202,
} as const;

/** `pusher:error` codes that leave the connection open. */
export const ERROR = {
  clientEventRejected: 4301,
  messageTooLarge: 4302,
  invalidEvent: 4303,
} as const;

/** Longest channel name Pusher allows. */
export const MAX_CHANNEL_NAME_LENGTH = 164;
const CHANNEL_NAME = /^[-a-zA-Z0-9_=@,.;]+$/;
export const SERVER_TO_USER_PREFIX = '#server-to-user-';

export type ChannelKind = 'public' | 'private' | 'presence' | 'encrypted' | 'server-to-user';

/** What a channel name says about the channel: its kind, and whether the last event is cached. */
export interface ChannelType {
  readonly kind: ChannelKind;
  readonly cache: boolean;
}

/** The type of a valid channel name, undefined for an invalid one. */
export function channelType(name: string): ChannelType | undefined {
  if (name.length === 0 || name.length > MAX_CHANNEL_NAME_LENGTH) return undefined;
  if (name.startsWith(SERVER_TO_USER_PREFIX)) {
    return name.length > SERVER_TO_USER_PREFIX.length ? { kind: 'server-to-user', cache: false } : undefined;
  }
  if (!CHANNEL_NAME.test(name)) return undefined;
  if (name.startsWith('private-encrypted-cache-')) return { kind: 'encrypted', cache: true };
  if (name.startsWith('private-encrypted-')) return { kind: 'encrypted', cache: false };
  if (name.startsWith('private-cache-')) return { kind: 'private', cache: true };
  if (name.startsWith('private-')) return { kind: 'private', cache: false };
  if (name.startsWith('presence-cache-')) return { kind: 'presence', cache: true };
  if (name.startsWith('presence-')) return { kind: 'presence', cache: false };
  return { kind: 'public', cache: name.startsWith('cache-') };
}

/** Whether joining the channel takes an authorization signature. */
export function needsAuthorization(kind: ChannelKind): boolean {
  return kind === 'private' || kind === 'presence' || kind === 'encrypted';
}

/** A new socket id: two decimal numbers joined by a dot, as clients expect. */
export function newSocketId(): string {
  return `${randomInt(1, 2 ** 47)}.${randomInt(1, 2 ** 47)}`;
}

export const SOCKET_ID = /^\d+\.\d+$/;

export function hmacSha256Hex(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text).digest('hex');
}

export function md5Hex(text: string | Buffer): string {
  return createHash('md5').update(text).digest('hex');
}

/** Compares two strings in constant time (for their common length). */
export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** The `auth` a client presents to join a private or presence channel. */
export function channelAuth(
  app: { key: string; secret: string },
  socketId: string,
  channel: string,
  channelData?: string,
): string {
  const text = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return `${app.key}:${hmacSha256Hex(app.secret, text)}`;
}

/**
 * The key of a `private-encrypted-` channel: SHA-256 of the channel name followed by the app's
 * encryption master key, as the pusher SDKs derive it (`channelSharedSecret` in pusher-http-node).
 * The auth endpoint gives it to subscribers (`shared_secret`, base64); events are NaCl secretboxes
 * under it.
 */
export function encryptedChannelKey(channel: string, masterKey: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.concat([Buffer.from(channel), masterKey]))
    .digest();
}

/** The object a JSON text holds; undefined when the text is not JSON or not an object. */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
}

/** The `auth` a client presents with `pusher:signin`. */
export function userAuth(app: { key: string; secret: string }, socketId: string, userData: string): string {
  return `${app.key}:${hmacSha256Hex(app.secret, `${socketId}::user::${userData}`)}`;
}

/** One frame, server to client. `data` is a JSON string for events, as the protocol requires. */
export function encodeFrame(
  event: string,
  data: unknown,
  channel?: string,
  extra?: { user_id?: string },
): string {
  const frame: Record<string, unknown> = { event };
  if (channel !== undefined) frame.channel = channel;
  frame.data = data;
  if (extra?.user_id !== undefined) frame.user_id = extra.user_id;
  return JSON.stringify(frame);
}

/**
 * The string to sign of an HTTP API request: method, path and every query parameter but
 * `auth_signature`, keys lower-cased and sorted, values as sent.
 */
export function restSigningText(
  method: string,
  path: string,
  query: Readonly<Record<string, unknown>>,
): string {
  const pairs = Object.entries(query)
    .filter(([key]) => key !== 'auth_signature')
    .map(([key, value]) => [key.toLowerCase(), String(value)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`);
  return `${method.toUpperCase()}\n${path}\n${pairs.join('&')}`;
}

/** Longest presence `user_id` (Pusher's limit). */
export const MAX_USER_ID_LENGTH = 128;

/** Why a presence member is refused (Pusher's limits on `user_id` and `user_info`), if it is. */
export function memberProblem(
  member: { readonly userId: string; readonly userInfo?: unknown },
  maxUserInfoBytes: number,
): string | undefined {
  if (member.userId.length > MAX_USER_ID_LENGTH)
    return `user_id is longer than ${MAX_USER_ID_LENGTH} characters`;
  if (member.userInfo !== undefined && Buffer.byteLength(JSON.stringify(member.userInfo)) > maxUserInfoBytes)
    return `user_info is larger than ${maxUserInfoBytes} bytes`;
  return undefined;
}
