import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireUser } from '../identity/index.js';
import type { ApiKeyService } from './api-keys.service.js';
import { OrgHeaders, requireOrgRole } from './current-org.hooks.js';

const KeyRole = Type.Union([Type.Literal('admin'), Type.Literal('member'), Type.Literal('viewer')]);
const Scopes = Type.Array(
  Type.String({ pattern: '^[a-z][a-z0-9_.:-]{0,99}$', description: 'e.g. crm:read' }),
  { maxItems: 100, uniqueItems: true, examples: [['crm:read']] },
);
const Timestamp = Type.String({ format: 'date-time' });
const NullableTimestamp = Type.Union([Timestamp, Type.Null()]);
const ApiKey = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String({ description: 'The visible start of the key, to tell keys apart' }),
  scopes: Type.Array(Type.String()),
  role: KeyRole,
  createdAt: Timestamp,
  lastUsedAt: NullableTimestamp,
  expiresAt: NullableTimestamp,
});
const CreatedApiKey = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  prefix: Type.String(),
  scopes: Type.Array(Type.String()),
  role: KeyRole,
  key: Type.String({ description: 'The key itself: shown in this response only, store it now' }),
  createdAt: Timestamp,
  expiresAt: NullableTimestamp,
});

/**
 * API keys of the current organization. Managing keys takes a signed-in admin: a key cannot mint
 * or revoke keys.
 */
export function registerApiKeyRoutes(app: HttpServer, apiKeys: ApiKeyService): void {
  const tags = ['api keys'];
  const signedInAdmin = (request: Parameters<typeof requireUser>[0]) => {
    requireUser(request);
    return requireOrgRole(request, 'admin');
  };

  app.post(
    '/org/api-keys',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Create an API key (admin); the key is in this response only',
        headers: OrgHeaders,
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200, examples: ['CI deploy'] }),
            scopes: Scopes,
            role: Type.Optional(KeyRole),
            expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: 3650 })),
          },
          { additionalProperties: false },
        ),
        response: { 201: CreatedApiKey },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await apiKeys.create(signedInAdmin(request), request.body)),
  );

  app.get(
    '/org/api-keys',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'API keys of the organization, without the keys (admin)',
        headers: OrgHeaders,
        response: { 200: Type.Array(ApiKey) },
      },
    },
    async (request) => apiKeys.list(signedInAdmin(request)),
  );

  app.delete(
    '/org/api-keys/:id',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Revoke an API key (admin)',
        headers: OrgHeaders,
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
      },
    },
    async (request, reply) => {
      await apiKeys.revoke(signedInAdmin(request), request.params.id);
      return reply.code(204).send();
    },
  );
}
