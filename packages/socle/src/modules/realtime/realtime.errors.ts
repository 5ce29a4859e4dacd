import { SocleError } from '../../kernel/index.js';

/** Errors of the realtime module's HTTP routes (the WebSocket side speaks `pusher:error`). */
export const realtimeErrors = {
  appIdTaken: (appId: string, module: string) =>
    new SocleError(
      'realtime.app_id_taken',
      `Realtime app id "${appId}" is the path of module "${module}"'s web client (/apps/${appId}/), where Pusher's HTTP API for that app would be: give the app another id`,
      { details: { appId, module } },
    ),
  invalidHandshake: (reason: string) =>
    new SocleError('realtime.invalid_handshake', `Not a valid WebSocket handshake: ${reason}`, {
      status: 400,
    }),
  appNotFound: () =>
    new SocleError('realtime.app_not_found', 'No realtime app has this id or key', { status: 404 }),
  noDefaultApp: () =>
    new SocleError(
      'realtime.no_app',
      'Name the realtime app (app_key) or configure one (REALTIME_APP_ID, REALTIME_APP_KEY, REALTIME_APP_SECRET)',
      { status: 400 },
    ),
  invalidSignature: (reason: string) =>
    new SocleError('realtime.invalid_signature', `Request signature refused: ${reason}`, { status: 401 }),
  invalidChannel: (channel: string) =>
    new SocleError('realtime.invalid_channel', `"${channel}" is not a valid channel name`, {
      status: 400,
      details: { channel },
    }),
  channelForbidden: (channel: string) =>
    new SocleError('realtime.channel_forbidden', `You may not join "${channel}"`, {
      status: 403,
      details: { channel },
    }),
  payloadTooLarge: (limit: number) =>
    new SocleError('realtime.payload_too_large', `Event data is larger than ${limit} bytes`, {
      status: 413,
      details: { limit },
    }),
  memberRefused: (reason: string) =>
    new SocleError('realtime.user_info_too_large', `Presence member refused: ${reason}`, { status: 400 }),
  notPresence: (channel: string) =>
    new SocleError('realtime.not_presence', `"${channel}" is not a presence channel`, {
      status: 400,
      details: { channel },
    }),
  invalidEvent: (message: string) => new SocleError('realtime.invalid_event', message, { status: 400 }),
  noEncryptionKey: () =>
    new SocleError(
      'realtime.no_encryption_key',
      'This app has no encryption master key, which private-encrypted- channels need: create one (POST /realtime/apps/{id}/rotate-encryption-key) or set REALTIME_APP_ENCRYPTION_MASTER_KEY for the configured app',
      { status: 409 },
    ),
  unencryptedPayload: (channel: string) =>
    new SocleError(
      'realtime.unencrypted_payload',
      `Events to "${channel}" must be encrypted by the server SDK (data {"nonce","ciphertext"}): set its encryption master key`,
      { status: 400, details: { channel } },
    ),
  rateLimited: (retryAfterMs: number) =>
    new SocleError('realtime.rate_limited', 'This app publishes more events per second than its limit', {
      status: 429,
      details: { retryAfterMs },
    }),
};
