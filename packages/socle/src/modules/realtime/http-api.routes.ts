import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import type { RealtimeApp } from './apps.js';
import type { HttpApiService } from './http-api.service.js';
import { SOCKET_ID } from './protocol.js';
import type { SignatureService } from './signature.service.js';

/** Channels one event may go to, and events one batch may hold (Pusher's limits). */
const MAX_CHANNELS_PER_EVENT = 100;
const MAX_BATCH_EVENTS = 10;

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

export interface HttpApiRouteServices {
  readonly signatures: SignatureService;
  readonly httpApi: HttpApiService;
}

/** The app that signed the request, as the signature preHandler set it. */
const signer = (request: FastifyRequest) => request.realtimeApp as RealtimeApp;

/**
 * Pusher's HTTP API (`/apps/{id}/…`), so the official server SDKs (pusher, pusher-http-php in
 * Laravel's broadcaster) publish and query through Socle. Every call is signed with the app's
 * secret: key, timestamp within ±600 s, body MD5 and HMAC are all checked (signature.service.ts)
 * before the handler runs.
 */
export function registerHttpApiRoutes(app: HttpServer, { signatures, httpApi }: HttpApiRouteServices): void {
  const tags = ['realtime http api'];
  // Signed with the app secret (query auth_key/auth_signature), not a session: see docs/realtime.md.
  const security = routeSecurity.appSignature;
  // Every route of this scope is signed: checked after the schema, before the handler runs.
  app.addHook('preHandler', signatures.preHandler);
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
    (request) => httpApi.trigger(signer(request), request.body, request.query.info),
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
    (request) => httpApi.triggerBatch(signer(request), request.body.batch),
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
    (request) =>
      httpApi.occupiedChannels(signer(request), {
        prefix: request.query.filter_by_prefix,
        info: request.query.info,
      }),
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
    (request) => httpApi.channelState(signer(request), request.params.channelName, request.query.info),
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
    (request) => httpApi.presenceUsers(signer(request), request.params.channelName),
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
      await httpApi.terminateUserConnections(signer(request), request.params.userId);
      return {};
    },
  );
}
