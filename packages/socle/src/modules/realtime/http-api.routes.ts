import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Clock, RateLimiter, SharedState } from '../../kernel/index.js';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import type { AppDirectory, RealtimeApp } from './apps.js';
import { looksEncrypted } from './encryption.js';
import type { Gateway } from './gateway.js';
import { channelType, hmacSha256Hex, md5Hex, restSigningText, SOCKET_ID, sameSecret } from './protocol.js';
import { realtimeErrors } from './realtime.errors.js';

/** How far `auth_timestamp` may be from the server's clock (Pusher's rule; Soketi does not check it). */
const TIMESTAMP_TOLERANCE_SECONDS = 600;
/** Channels one event may go to, and events one batch may hold (Pusher's limits). */
const MAX_CHANNELS_PER_EVENT = 100;
const MAX_BATCH_EVENTS = 10;

declare module 'fastify' {
  interface FastifyRequest {
    /** The request body as received, for `body_md5` (set on the realtime HTTP API routes only). */
    rawBody?: string;
  }
}

const AppParams = Type.Object({ appId: Type.String({ minLength: 1, maxLength: 200 }) });
const ChannelParams = Type.Object({
  appId: Type.String({ minLength: 1, maxLength: 200 }),
  channelName: Type.String({ minLength: 1, maxLength: 200 }),
});
const SignatureQuery = {
  auth_key: Type.String(),
  auth_timestamp: Type.String(),
  auth_version: Type.Optional(Type.String()),
  auth_signature: Type.String(),
  body_md5: Type.Optional(Type.String()),
};
const EventBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  data: Type.Unknown(),
  channel: Type.Optional(Type.String()),
  channels: Type.Optional(Type.Array(Type.String(), { maxItems: MAX_CHANNELS_PER_EVENT })),
  socket_id: Type.Optional(Type.String({ pattern: SOCKET_ID.source })),
  info: Type.Optional(Type.String()),
});

export interface HttpApiOptions {
  readonly apps: AppDirectory;
  readonly gateway: Gateway;
  readonly state: SharedState;
  readonly clock: Clock;
  readonly rateLimiter: RateLimiter;
  readonly maxMessageBytes: number;
}

/**
 * Pusher's HTTP API (`/apps/{id}/…`), so the official server SDKs (pusher, pusher-http-php in
 * Laravel's broadcaster) publish and query through Socle. Every call is signed with the app's
 * secret: key, timestamp within ±600 s, body MD5 and HMAC are all checked.
 */
export function registerHttpApiRoutes(app: HttpServer, options: HttpApiOptions): void {
  const { apps, gateway, state, clock } = options;
  const tags = ['realtime http api'];
  // Signed with the app secret (query auth_key/auth_signature), not a session: see docs/realtime.md.
  const security = routeSecurity.appSignature;
  // Keep the body as received: body_md5 is computed over those exact bytes.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    request.rawBody = body as string;
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch {
      const error = new Error('Body is not valid JSON') as Error & { statusCode: number };
      error.statusCode = 400;
      done(error, undefined);
    }
  });

  async function verify(request: FastifyRequest<{ Params: { appId: string } }>): Promise<RealtimeApp> {
    const target = await apps.byId(request.params.appId);
    if (target === undefined) throw realtimeErrors.appNotFound();
    const query = request.query as Record<string, string>;
    if (query.auth_key !== target.key) throw realtimeErrors.invalidSignature('unknown auth_key');
    const timestamp = Number(query.auth_timestamp);
    const nowSeconds = clock.now().getTime() / 1000;
    if (!Number.isFinite(timestamp) || Math.abs(nowSeconds - timestamp) > TIMESTAMP_TOLERANCE_SECONDS) {
      throw realtimeErrors.invalidSignature(
        `auth_timestamp is more than ${TIMESTAMP_TOLERANCE_SECONDS} s from the server time`,
      );
    }
    const body = request.rawBody ?? '';
    if (body !== '' && query.body_md5 !== md5Hex(body))
      throw realtimeErrors.invalidSignature('body_md5 does not match the body');
    const path = (request.raw.url ?? request.url).split('?')[0] as string;
    const expected = hmacSha256Hex(target.secret, restSigningText(request.method, path, query));
    if (!sameSecret(query.auth_signature ?? '', expected))
      throw realtimeErrors.invalidSignature('auth_signature does not match');
    return target;
  }

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
    const result: Record<string, { subscription_count?: number; user_count?: number }> = Object.create(null);
    for (const channel of channels) {
      const attributes: { subscription_count?: number; user_count?: number } = {};
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

  function checkEvent(event: {
    name: string;
    data: unknown;
    channel?: string | undefined;
    channels?: string[] | undefined;
  }) {
    const channels = event.channels ?? (event.channel === undefined ? [] : [event.channel]);
    if (channels.length === 0) throw realtimeErrors.invalidEvent('channel or channels is required');
    let encrypted: string | undefined;
    for (const channel of channels) {
      const type = channelType(channel);
      if (type === undefined) throw realtimeErrors.invalidChannel(channel);
      if (type.kind === 'encrypted') encrypted ??= channel;
    }
    const data = typeof event.data === 'string' ? event.data : JSON.stringify(event.data ?? null);
    if (Buffer.byteLength(data) > options.maxMessageBytes)
      throw realtimeErrors.payloadTooLarge(options.maxMessageBytes);
    // Socle relays encrypted events without reading them; plain text there would be a leak the
    // subscribers could not even read (the SDK encrypts only when given the master key).
    if (encrypted !== undefined && !looksEncrypted(data)) throw realtimeErrors.unencryptedPayload(encrypted);
    return { channels, data };
  }

  app.post(
    '/apps/:appId/events',
    {
      schema: {
        tags,
        security,
        summary: 'Trigger an event on channels (Pusher HTTP API, signed)',
        params: AppParams,
        querystring: Type.Object({ ...SignatureQuery, info: Type.Optional(Type.String()) }),
        body: EventBody,
      },
    },
    async (request) => {
      const target = await verify(request);
      const { channels, data } = checkEvent(request.body);
      await limitEvents(target, channels.length);
      await gateway.publish({
        app: target,
        channels,
        event: request.body.name,
        data,
        excludeSocketId: request.body.socket_id,
      });
      const info = await channelInfo(target, channels, request.body.info ?? request.query.info);
      return info === undefined ? {} : { channels: info };
    },
  );

  app.post(
    '/apps/:appId/batch_events',
    {
      schema: {
        tags,
        security,
        summary: 'Trigger up to 10 events at once (Pusher HTTP API, signed)',
        params: AppParams,
        querystring: Type.Object(SignatureQuery),
        body: Type.Object({ batch: Type.Array(EventBody, { maxItems: MAX_BATCH_EVENTS }) }),
      },
    },
    async (request) => {
      const target = await verify(request);
      const checked = request.body.batch.map((event) => ({ event, ...checkEvent(event) }));
      await limitEvents(
        target,
        checked.reduce((sum, item) => sum + item.channels.length, 0),
      );
      for (const { event, channels, data } of checked) {
        await gateway.publish({
          app: target,
          channels,
          event: event.name,
          data,
          excludeSocketId: event.socket_id,
        });
      }
      // One attributes object per event: those of its (first) channel, as Pusher answers.
      const batch = [];
      for (const { event, channels } of checked)
        batch.push(
          (await channelInfo(target, channels.slice(0, 1), event.info))?.[channels[0] as string] ?? {},
        );
      return { batch };
    },
  );

  app.get(
    '/apps/:appId/channels',
    {
      schema: {
        tags,
        security,
        summary: 'Occupied channels (Pusher HTTP API, signed)',
        params: AppParams,
        querystring: Type.Object({
          ...SignatureQuery,
          filter_by_prefix: Type.Optional(Type.String()),
          info: Type.Optional(Type.String()),
        }),
      },
    },
    async (request) => {
      const target = await verify(request);
      const { filter_by_prefix: prefix, info } = request.query;
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
  );

  app.get(
    '/apps/:appId/channels/:channelName',
    {
      schema: {
        tags,
        security,
        summary: 'State of one channel (Pusher HTTP API, signed)',
        params: ChannelParams,
        querystring: Type.Object({ ...SignatureQuery, info: Type.Optional(Type.String()) }),
      },
    },
    async (request) => {
      const target = await verify(request);
      const channel = request.params.channelName;
      const type = channelType(channel);
      if (type === undefined) throw realtimeErrors.invalidChannel(channel);
      const wanted = (request.query.info ?? '').split(',');
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
  );

  app.get(
    '/apps/:appId/channels/:channelName/users',
    {
      schema: {
        tags,
        security,
        summary: 'Members of a presence channel (Pusher HTTP API, signed)',
        params: ChannelParams,
        querystring: Type.Object(SignatureQuery),
      },
    },
    async (request) => {
      const target = await verify(request);
      const channel = request.params.channelName;
      if (channelType(channel)?.kind !== 'presence') throw realtimeErrors.notPresence(channel);
      const members = await state.members(target.id, channel);
      return { users: members.map((member) => ({ id: member.userId })) };
    },
  );

  app.post(
    '/apps/:appId/users/:userId/terminate_connections',
    {
      schema: {
        tags,
        security,
        summary: 'Close every connection of a signed-in user, on every node (Pusher HTTP API, signed)',
        params: Type.Object({
          appId: Type.String({ minLength: 1, maxLength: 200 }),
          userId: Type.String({ minLength: 1, maxLength: 200 }),
        }),
        querystring: Type.Object(SignatureQuery),
      },
    },
    async (request) => {
      const target = await verify(request);
      await gateway.terminateUserConnections(target.id, request.params.userId);
      return {};
    },
  );
}
