import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireOperator } from '../identity/index.js';
import { OrgHeaders, requireOrgRole } from '../tenancy/index.js';
import { type AuditService, DEFAULT_PAGE_SIZE } from './audit.service.js';

const NullableString = Type.Union([Type.String(), Type.Null()]);
const AuditEvent = Type.Object({
  id: Type.String({ format: 'uuid' }),
  tenantId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()], {
    description: 'The organization acted in; null for actions outside any (sign-in, the operator’s own)',
  }),
  occurredAt: Type.String({ format: 'date-time' }),
  actorUserId: NullableString,
  actorApiKeyId: NullableString,
  actorOperator: Type.Boolean({
    description: 'Done with the operator token (OPERATOR_TOKEN): the operator acted',
  }),
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

/** The filters of both listings: the organization's admins' and the operator's. */
const Filters = {
  actor: Type.Optional(Type.String({ format: 'uuid', description: 'Only events of this user or API key' })),
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
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page' })),
};
const AuditPage = Type.Object({ events: Type.Array(AuditEvent), nextCursor: NullableString });

/** The audit log of the current organization, for its admins; every organization's, for the operator. */
export function registerAuditRoutes(app: HttpServer, audit: AuditService): void {
  app.get(
    '/org/audit-events',
    {
      schema: {
        tags: ['audit'],
        security: routeSecurity.memberOrApiKey,
        summary: "The current organization's audit log, newest first (admin)",
        headers: OrgHeaders,
        querystring: Type.Object(Filters, { additionalProperties: false }),
        response: { 200: AuditPage },
      },
    },
    async (request) => audit.list(requireOrgRole(request, 'admin'), request.query),
  );

  app.get(
    '/operator/audit-events',
    {
      schema: {
        tags: ['audit'],
        security: routeSecurity.operator,
        summary:
          "Every organization's audit log and the events of none (sign-ins, the operator's own), newest first, or one organization's (operator token)",
        querystring: Type.Object(
          {
            org: Type.Optional(
              Type.String({ format: 'uuid', description: "Only this organization's events" }),
            ),
            ...Filters,
          },
          { additionalProperties: false },
        ),
        response: { 200: AuditPage },
      },
    },
    async (request) => {
      requireOperator(request);
      return audit.listForOperator(request.query);
    },
  );
}
