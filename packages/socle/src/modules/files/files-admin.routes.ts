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
 * the ordinary `/files/:bucket` routes (deletions audited like every change); a person's objects in
 * per-user buckets, for the operator, through a read that the audit log records.
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
  app.get(
    '/operator/files/users/:userId/objects',
    {
      // Names of a person's files are personal data: the operator's read of them leaves a trace.
      config: { audit: 'reads' as const },
      schema: {
        tags: ['files'],
        security: routeSecurity.operator,
        summary:
          "A person's objects in per-user buckets, newest first, without their content (operator; audited)",
        description:
          'Pass `next` of a page as `cursor` for the following one (null: the last page). `bucket` narrows to one per-user bucket; an organization bucket is 400 `files.not_per_user_bucket`.',
        params: Type.Object({ userId: Type.String({ format: 'uuid' }) }),
        querystring: Type.Object(
          {
            bucket: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
            cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            objects: Type.Array(
              Type.Object({
                id: Type.String({ format: 'uuid' }),
                bucket: Type.String(),
                name: Type.Union([Type.String(), Type.Null()]),
                size: Type.Integer(),
                contentType: Type.String(),
                storageClass: Type.Union([Type.Literal('standard'), Type.Literal('archive')]),
                createdAt: Type.String({ format: 'date-time' }),
              }),
            ),
            next: Type.Union([Type.String(), Type.Null()]),
          }),
        },
      },
    },
    async (request) => {
      requireOperator(request);
      const { bucket, limit, cursor } = request.query;
      return files.personalObjects(request.params.userId, bucket, limit ?? 50, cursor);
    },
  );
}
