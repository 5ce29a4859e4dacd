import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { OrgHeaders, requireOrgRole } from '../tenancy/index.js';
import { type AuditService, DEFAULT_PAGE_SIZE } from './audit.service.js';

const NullableString = Type.Union([Type.String(), Type.Null()]);
const AuditEvent = Type.Object({
  id: Type.String({ format: 'uuid' }),
  occurredAt: Type.String({ format: 'date-time' }),
  actorUserId: NullableString,
  actorApiKeyId: NullableString,
  action: Type.String({ description: 'Method and route template, e.g. DELETE /org/members/:userId' }),
  target: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()], {
    description: "The route's path parameters",
  }),
  changedFields: Type.Array(Type.String(), {
    description: "Names of the request body's top-level fields; values are never recorded",
  }),
  status: Type.Integer(),
  ip: NullableString,
  userAgent: NullableString,
  requestId: NullableString,
});

/** The audit log of the current organization, for its admins. */
export function registerAuditRoutes(app: HttpServer, audit: AuditService): void {
  app.get(
    '/org/audit-events',
    {
      schema: {
        tags: ['audit'],
        security: routeSecurity.memberOrApiKey,
        summary: "The current organization's audit log, newest first (admin)",
        headers: OrgHeaders,
        querystring: Type.Object(
          {
            actor: Type.Optional(
              Type.String({ format: 'uuid', description: 'Only events of this user or API key' }),
            ),
            action: Type.Optional(
              Type.String({
                minLength: 1,
                maxLength: 300,
                description: 'Only actions starting with this, e.g. DELETE /org',
              }),
            ),
            since: Type.Optional(Type.String({ format: 'date-time', description: 'Inclusive' })),
            until: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: DEFAULT_PAGE_SIZE })),
            cursor: Type.Optional(
              Type.String({ maxLength: 200, description: 'nextCursor of the previous page' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ events: Type.Array(AuditEvent), nextCursor: NullableString }),
        },
      },
    },
    async (request) => audit.list(requireOrgRole(request, 'admin'), request.query),
  );
}
