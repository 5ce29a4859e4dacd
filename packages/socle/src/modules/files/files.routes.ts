import { Type } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireUser } from '../identity/index.js';
import { OrgHeaders, requireOrgRole } from '../tenancy/index.js';
import type { Bucket } from './buckets.js';
import { filesErrors } from './files.errors.js';
import {
  contentDisposition,
  type FileObject,
  type FilesActor,
  type FilesService,
  type OpenedObject,
  parseScopeToken,
} from './objects.service.js';
import { createUploadRoute } from './upload-route.js';

export const FileObjectSchema = Type.Object({
  id: Type.String({ format: 'uuid' }),
  bucket: Type.String(),
  tenantId: Type.Union([Type.String(), Type.Null()]),
  ownerId: Type.Union([Type.String(), Type.Null()]),
  name: Type.Union([Type.String(), Type.Null()]),
  size: Type.Integer(),
  sha256: Type.String({ description: 'Hex SHA-256 of the bytes (also the ETag)' }),
  contentType: Type.String({ description: 'Sniffed from the bytes' }),
  metadata: Type.Record(Type.String(), Type.Unknown()),
  storageClass: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  url: Type.String({ description: 'Download link (signed for private buckets)' }),
  urlExpiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const BucketParams = Type.Object({ bucket: Type.String({ maxLength: 63 }) });
const ObjectParams = Type.Object({
  bucket: Type.String({ maxLength: 63 }),
  id: Type.String({ format: 'uuid' }),
});

/** The actor of a request on `bucket`: a member of the organization, or the signed-in user. */
function actorOf(request: FastifyRequest, bucket: Bucket, write: boolean): FilesActor {
  if (bucket.scope === 'user') return { userId: requireUser(request).userId };
  const org = requireOrgRole(request, write ? 'member' : 'viewer');
  return { tenantId: org.orgId, userId: org.userId };
}

/** An object as the API answers it: its record and a fresh download link. */
export async function describeObject(files: FilesService, object: FileObject) {
  const link = await files.downloadUrl(object);
  return {
    ...object,
    createdAt: object.createdAt.toISOString(),
    metadata: { ...object.metadata },
    url: link.url,
    urlExpiresAt: link.expiresAt?.toISOString() ?? null,
  };
}

/** Writes an opened object: 200, 206 for a range, 304 when the client's copy is current. */
function sendObject(
  reply: FastifyReply,
  opened: OpenedObject,
  headers: { readonly cacheControl: string; readonly disposition: string },
) {
  const { object, read, range } = opened;
  reply
    .header('etag', `"${object.sha256}"`)
    .header('cache-control', headers.cacheControl)
    .header('last-modified', object.createdAt.toUTCString())
    .header('accept-ranges', 'bytes')
    .header('x-content-type-options', 'nosniff');
  if (read === undefined) return reply.code(304).send();
  reply
    .header('content-type', object.contentType)
    .header('content-length', read.contentLength)
    .header('content-disposition', headers.disposition);
  if (range !== undefined) {
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${read.size}`);
  }
  return reply.send(read.body);
}

const disposition = (kind: string | undefined, object: FileObject) =>
  contentDisposition(kind === 'attachment' ? 'attachment' : 'inline', object.name);

const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/**
 * Files over HTTP: streamed upload (`POST /files/:bucket`, the raw bytes as the body), metadata
 * with a download link, listing, deletion, signed downloads (`/files/signed/…`, local backend)
 * and public downloads (`/files/public/…`).
 */
export function registerFilesRoutes(app: HttpServer, files: FilesService, now: () => Date): void {
  createUploadRoute(files, (object) => describeObject(files, object))(app, {
    url: '/files/:bucket',
    schema: {
      tags: ['files'],
      security: routeSecurity.memberOrApiKey,
      summary:
        'Uploads a file: the body is its bytes, streamed; type sniffed from the bytes, size and quota enforced while streaming',
      params: BucketParams,
      headers: OrgHeaders,
      querystring: Type.Object(
        {
          name: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'File name' })),
        },
        { additionalProperties: false },
      ),
      response: { 201: FileObjectSchema },
    },
    bucket: (request) => request.params.bucket,
    authorize: (request, bucket) => actorOf(request, bucket, true),
    name: (request) => request.query.name,
  });

  app.get(
    '/files/:bucket',
    {
      schema: {
        tags: ['files'],
        security: routeSecurity.memberOrApiKey,
        summary: 'Lists the objects of a bucket in scope, newest first',
        params: BucketParams,
        headers: OrgHeaders,
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
            before: Type.Optional(Type.String({ format: 'date-time' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ objects: Type.Array(FileObjectSchema) }) },
      },
    },
    async (request) => {
      const bucket = files.bucket(request.params.bucket);
      const objects = await files.list(
        actorOf(request, bucket, false),
        bucket.name,
        request.query.limit ?? 50,
        request.query.before === undefined ? undefined : new Date(request.query.before),
      );
      return { objects: await Promise.all(objects.map((object) => describeObject(files, object))) };
    },
  );

  app.get(
    '/files/:bucket/:id',
    {
      schema: {
        tags: ['files'],
        security: routeSecurity.memberOrApiKey,
        summary: 'An object with a fresh download link',
        params: ObjectParams,
        headers: OrgHeaders,
        response: { 200: FileObjectSchema },
      },
    },
    async (request) => {
      const bucket = files.bucket(request.params.bucket);
      const object = await files.find(actorOf(request, bucket, false), bucket.name, request.params.id);
      if (object === undefined) throw filesErrors.notFound();
      return describeObject(files, object);
    },
  );

  app.delete(
    '/files/:bucket/:id',
    {
      schema: {
        tags: ['files'],
        security: routeSecurity.memberOrApiKey,
        summary: 'Deletes an object (its record, then its bytes)',
        params: ObjectParams,
        headers: OrgHeaders,
      },
    },
    async (request, reply) => {
      const bucket = files.bucket(request.params.bucket);
      if (!(await files.delete(actorOf(request, bucket, true), bucket.name, request.params.id)))
        throw filesErrors.notFound();
      return reply.code(204).send();
    },
  );

  app.get(
    '/files/signed/:bucket/:id',
    {
      schema: {
        tags: ['files'],
        summary: 'Downloads an object through a signed link (Range, If-None-Match)',
        params: ObjectParams,
        querystring: Type.Object({
          scope: Type.Optional(Type.String()),
          disposition: Type.Optional(Type.String()),
          expires: Type.Optional(Type.String()),
          signature: Type.Optional(Type.String()),
        }),
      },
    },
    async (request, reply) => {
      const { bucket, id } = request.params;
      const { params, expiresAt } = files.signer.verify(
        `/files/signed/${bucket}/${id}`,
        request.query as Record<string, string | undefined>,
        now(),
      );
      const scope = parseScopeToken(params.scope);
      if (scope === undefined) throw filesErrors.signatureInvalid();
      const opened = await files.open(scope, bucket, id, {
        range: headerValue(request.headers.range),
        ifNoneMatch: headerValue(request.headers['if-none-match']),
      });
      const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - now().getTime()) / 1000));
      return sendObject(reply, opened, {
        cacheControl: `private, max-age=${maxAge}`,
        disposition: disposition(params.disposition, opened.object),
      });
    },
  );

  app.get(
    '/files/public/:bucket/:scopeId/:id',
    {
      schema: {
        tags: ['files'],
        summary: 'Downloads an object of a public bucket (immutable: cache it anywhere)',
        params: Type.Object({
          bucket: Type.String({ maxLength: 63 }),
          scopeId: Type.String({ format: 'uuid' }),
          id: Type.String({ format: 'uuid' }),
        }),
      },
    },
    async (request, reply) => {
      const bucket = files.bucket(request.params.bucket);
      if (!bucket.public) throw filesErrors.notFound();
      const opened = await files.open(
        { kind: bucket.scope, id: request.params.scopeId.toLowerCase() },
        bucket.name,
        request.params.id,
        {
          range: headerValue(request.headers.range),
          ifNoneMatch: headerValue(request.headers['if-none-match']),
        },
      );
      return sendObject(reply, opened, {
        // Objects never change under an id: any cache may keep them for a year.
        cacheControl: 'public, max-age=31536000, immutable',
        disposition: disposition(undefined, opened.object),
      });
    },
  );
}
