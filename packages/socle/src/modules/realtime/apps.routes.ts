import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireOperator, requireUser } from '../identity/index.js';
import { OrgHeaders, requireOrgRole } from '../tenancy/index.js';
import type { ActivityService } from './activity.service.js';
import type { AppsService } from './apps.service.js';

const Limits = {
  maxConnections: Type.Integer({
    minimum: 0,
    maximum: 10_000_000,
    description: 'Across every node (with REDIS_URL; counts a second old at most); 0: no limit',
  }),
  clientEventsPerSecond: Type.Integer({ minimum: 1, maximum: 10_000 }),
  backendEventsPerSecond: Type.Integer({ minimum: 0, maximum: 1_000_000, description: '0: no limit' }),
};
const WebhookUrl = Type.String({
  format: 'uri',
  pattern: '^https?://',
  maxLength: 2000,
  description: 'Where Pusher webhooks of this app are posted',
});
const AppSummary = Type.Object({
  id: Type.String({ format: 'uuid', description: 'The app id of the HTTP API (`appId` of the pusher SDK)' }),
  name: Type.String(),
  key: Type.String({ description: 'The public key clients connect with' }),
  ...Limits,
  webhookUrl: Type.Union([WebhookUrl, Type.Null()]),
  createdAt: Type.String({ format: 'date-time' }),
  secretRotatedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  hasEncryptionMasterKey: Type.Boolean({
    description: 'Whether private-encrypted- channels work (apps created before keys existed have none)',
  }),
});
const EncryptionMasterKey = Type.String({
  description:
    'Base64 of 32 bytes: give it to the server SDK (`encryptionMasterKeyBase64`) to publish on private-encrypted- channels. Shown when created and when rotated only',
});
const AppWithSecret = Type.Object({
  ...AppSummary.properties,
  secret: Type.String({ description: 'Shown when created and when rotated only' }),
  encryptionMasterKey: EncryptionMasterKey,
});
const AppWithEncryptionKey = Type.Object({
  ...AppSummary.properties,
  encryptionMasterKey: EncryptionMasterKey,
});
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const Activity = Type.Object({
  connections: Type.Integer({ description: 'sockets connected to the app, every node' }),
  channels: Type.Array(
    Type.Object({
      name: Type.String(),
      subscriptions: Type.Integer(),
      memberCount: Type.Optional(Type.Integer({ description: 'presence channels: users' })),
      members: Type.Optional(
        Type.Array(Type.Object({ userId: Type.String(), userInfo: Type.Optional(Type.Unknown()) }), {
          description: 'presence channels: the first 100 users',
        }),
      ),
    }),
    { description: 'occupied channels in name order, the first 500' },
  ),
  truncated: Type.Boolean({ description: 'more channels are occupied than listed' }),
});

/** Realtime apps of the current organization, managed by its admins (signed in; not API keys). */
export function registerAppRoutes(app: HttpServer, apps: AppsService, activity: ActivityService): void {
  const tags = ['realtime'];
  const admin = (request: FastifyRequest) => {
    requireUser(request);
    return requireOrgRole(request, 'admin');
  };

  app.post(
    '/realtime/apps',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Create a realtime app (admin); the secret is in this response',
        headers: OrgHeaders,
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200, examples: ['Quiz'] }),
            maxConnections: Type.Optional(Limits.maxConnections),
            clientEventsPerSecond: Type.Optional(Limits.clientEventsPerSecond),
            backendEventsPerSecond: Type.Optional(Limits.backendEventsPerSecond),
            webhookUrl: Type.Optional(WebhookUrl),
          },
          { additionalProperties: false },
        ),
        response: { 201: AppWithSecret },
      },
    },
    async (request, reply) => reply.code(201).send(await apps.create(admin(request), request.body)),
  );

  app.get(
    '/realtime/apps',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Realtime apps of the organization, without secrets (admin)',
        headers: OrgHeaders,
        response: { 200: Type.Array(AppSummary) },
      },
    },
    async (request) => apps.list(admin(request)),
  );

  app.get(
    '/realtime/apps/:id/activity',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary:
          'What happens in an app now, on every node: connected sockets, occupied channels, presence members (admin)',
        headers: OrgHeaders,
        params: IdParams,
        response: { 200: Activity },
      },
    },
    async (request) => activity.activity(admin(request), request.params.id),
  );

  app.get(
    '/operator/realtime/apps',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary:
          "Every organization's realtime apps (or one organization's), without secrets, in id order, page after page (operator token)",
        querystring: Type.Object(
          {
            org: Type.Optional(Type.String({ format: 'uuid', description: "Only this organization's apps" })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
            after: Type.Optional(
              Type.String({
                format: 'uuid',
                description: '`next` of the previous page (the last id it listed)',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            apps: Type.Array(
              Type.Object({
                ...AppSummary.properties,
                orgId: Type.String({ format: 'uuid', description: 'The organization the app belongs to' }),
              }),
            ),
            next: Type.Union([Type.String(), Type.Null()], { description: 'the `after` of the next page' }),
          }),
        },
      },
    },
    async (request) => {
      requireOperator(request);
      const { org, after, limit = 50 } = request.query;
      return apps.listForOperator({ orgId: org, after, limit });
    },
  );

  app.get(
    '/operator/realtime/apps/:id/activity',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary:
          "What happens in any organization's app now, on every node: connected sockets, occupied channels, presence members (operator token)",
        params: IdParams,
        response: { 200: Activity },
      },
    },
    async (request) => {
      requireOperator(request);
      return activity.activityForOperator(request.params.id);
    },
  );

  app.post(
    '/realtime/apps/:id/rotate-secret',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Replace the secret of an app (admin); the new secret is in this response',
        headers: OrgHeaders,
        params: IdParams,
        response: { 200: Type.Omit(AppWithSecret, ['encryptionMasterKey']) },
      },
    },
    async (request) => apps.rotateSecret(admin(request), request.params.id),
  );

  app.post(
    '/realtime/apps/:id/rotate-encryption-key',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary:
          'Replace (or create) the encryption master key of an app (admin); the new key is in this response',
        headers: OrgHeaders,
        params: IdParams,
        response: { 200: AppWithEncryptionKey },
      },
    },
    async (request) => apps.rotateEncryptionKey(admin(request), request.params.id),
  );

  app.delete(
    '/realtime/apps/:id',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Delete an app (admin)',
        headers: OrgHeaders,
        params: IdParams,
      },
    },
    async (request, reply) => {
      await apps.remove(admin(request), request.params.id);
      return reply.code(204).send();
    },
  );
}
