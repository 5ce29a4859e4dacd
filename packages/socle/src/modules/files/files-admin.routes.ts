import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireOperator } from '../identity/index.js';
import { OrgHeaders, requireOrgRole } from '../tenancy/index.js';
import type { FilesService } from './objects.service.js';

const Bytes = Type.Union([Type.Integer(), Type.Null()]);

const BucketUsageSchema = Type.Object({
  name: Type.String(),
  scope: Type.Union([Type.Literal('tenant'), Type.Literal('user')]),
  public: Type.Boolean(),
  maxBytes: Type.Integer(),
  allowedTypes: Type.Union([Type.Array(Type.String()), Type.Null()], { description: 'null: any type' }),
  archiveAfterDays: Type.Union([Type.Integer(), Type.Null()]),
  deleteAfterDays: Type.Union([Type.Integer(), Type.Null()]),
  objects: Type.Union([Type.Integer(), Type.Null()], {
    description: "The organization's objects in it; null for per-user buckets (each person's own)",
  }),
  bytes: Bytes,
});

/**
 * What the console's Files page reads: the buckets with an organization's use of each (its admins),
 * and the scopes storing the most (the operator). Objects are listed, linked and deleted through
 * the ordinary `/files/:bucket` routes (deletions audited like every change).
 */
export function registerFilesAdminRoutes(app: HttpServer, files: FilesService): void {
  app.get(
    '/org/files/buckets',
    {
      schema: {
        tags: ['files'],
        security: routeSecurity.memberOrApiKey,
        summary:
          "The buckets declared, with the organization's objects and bytes in each and its quota (admins)",
        headers: OrgHeaders,
        response: {
          200: Type.Object({
            usedBytes: Type.Integer(),
            quotaBytes: Bytes,
            buckets: Type.Array(BucketUsageSchema),
          }),
        },
      },
    },
    async (request) => {
      const org = requireOrgRole(request, 'admin');
      const usage = await files.organizationUsage(org.orgId);
      return {
        usedBytes: usage.usedBytes,
        quotaBytes: usage.quotaBytes,
        buckets: usage.buckets.map(({ bucket, objects, bytes }) => ({
          name: bucket.name,
          scope: bucket.scope,
          public: bucket.public,
          maxBytes: bucket.maxBytes,
          allowedTypes: bucket.allowedTypes === undefined ? null : [...bucket.allowedTypes],
          archiveAfterDays: bucket.lifecycle?.archiveAfterDays ?? null,
          deleteAfterDays: bucket.lifecycle?.deleteAfterDays ?? null,
          objects,
          bytes,
        })),
      };
    },
  );

  app.get(
    '/operator/files/usage',
    {
      schema: {
        tags: ['files'],
        security: routeSecurity.operator,
        summary:
          'Storage by organization (and by person, for per-user buckets), largest first, with quotas (operator)',
        querystring: Type.Object(
          {
            kind: Type.Optional(Type.Union([Type.Literal('tenant'), Type.Literal('user')])),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            scopes: Type.Array(
              Type.Object({
                kind: Type.Union([Type.Literal('tenant'), Type.Literal('user')]),
                id: Type.String({ format: 'uuid' }),
                objects: Type.Integer(),
                bytes: Type.Integer(),
                quotaBytes: Bytes,
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      requireOperator(request);
      return { scopes: await files.largestScopes(request.query.kind, request.query.limit ?? 100) };
    },
  );
}
