import { Readable } from 'node:stream';
import { Type } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type HttpServer, routeSecurity } from '../../../kernel/index.js';
import { requireUser } from '../../identity/index.js';
import { OrgHeaders, requireOrgRole } from '../../tenancy/index.js';
import type { Bucket } from '../buckets.js';
import { describeObject, FileObjectSchema } from '../files.routes.js';
import type { FilesActor, FilesService } from '../objects.service.js';
import { registerStreamedRoutes, streamedBody } from '../upload-route.js';
import { LOCAL_UPLOAD_PATH, MIN_PART_BYTES, type PresignedUploads } from './presigned.js';
import { type ResumableUploads, TUS_PATH } from './resumable.js';

/** The uploader: a member of the organization (tenant buckets) or the signed-in user. */
export function uploaderOf(request: FastifyRequest, bucket: Bucket): FilesActor {
  if (bucket.scope === 'user') return { userId: requireUser(request).userId };
  const org = requireOrgRole(request, 'member');
  return { tenantId: org.orgId, userId: org.userId };
}

/** The Fastify request as a Web `Request` (its body streamed, never buffered), for @tus/server. */
function toWebRequest(request: FastifyRequest): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined) continue;
    headers.set(name, Array.isArray(value) ? value.join(', ') : String(value));
  }
  const hasBody = request.method === 'POST' || request.method === 'PATCH';
  const body = hasBody ? ((request.body as Readable | undefined) ?? request.raw) : undefined;
  return new Request(`http://${request.headers.host ?? 'localhost'}${request.url}`, {
    method: request.method,
    headers,
    ...(body === undefined
      ? {}
      : { body: Readable.toWeb(body) as unknown as ReadableStream, duplex: 'half' as const }),
  });
}

async function sendWebResponse(reply: FastifyReply, response: Response) {
  reply.code(response.status);
  response.headers.forEach((value, name) => {
    if (name !== 'content-length') reply.header(name, value);
  });
  const text = await response.text();
  return reply.send(text === '' ? undefined : text);
}

/**
 * tus 1.0 under `/files/tus` (creation, HEAD, PATCH, termination), authenticated like every files
 * route. Refusals (bucket, length, quota, verification) answer problem+json with the files codes.
 */
export function registerUploadRoutes(
  app: HttpServer,
  services: {
    readonly files: FilesService;
    readonly resumable: ResumableUploads;
    readonly presigned: PresignedUploads;
  },
): void {
  const { files, resumable, presigned } = services;
  // tus bodies are `application/offset+octet-stream`, presigned PUTs anything: streams, all of them.
  registerStreamedRoutes(app, (scope) => {
    const tus = async (request: FastifyRequest, reply: FastifyReply, uploadId: string | undefined) => {
      const { response } = await resumable.handle({
        request: toWebRequest(request),
        uploadId,
        actorFor: (bucket) => uploaderOf(request, bucket),
      });
      return sendWebResponse(reply, response);
    };

    scope.route({
      method: 'POST',
      url: TUS_PATH,
      schema: {
        tags: ['files'],
        security: routeSecurity.memberOrApiKey,
        summary:
          'tus 1.0: creates a resumable upload (Upload-Length; Upload-Metadata bucket, filename, filetype)',
        headers: OrgHeaders,
      },
      handler: (request, reply) => tus(request, reply, undefined),
    });
    scope.route({
      method: ['HEAD', 'PATCH', 'DELETE'],
      url: `${TUS_PATH}/:uploadId`,
      schema: {
        tags: ['files'],
        security: routeSecurity.memberOrApiKey,
        summary:
          'tus 1.0: offset of an upload (HEAD), its next bytes (PATCH; the last one commits the object), or its termination (DELETE)',
        headers: OrgHeaders,
        params: Type.Object({ uploadId: Type.String({ maxLength: 64 }) }),
      },
      handler: (request, reply) => tus(request, reply, (request.params as { uploadId: string }).uploadId),
    });

    // Local backend: Socle is the store the presigned URLs point at (HMAC-signed, expiring).
    const receive = async (request: FastifyRequest, reply: FastifyReply) => {
      const path = request.url.split('?')[0] as string;
      const { etag } = await presigned.receive(
        path,
        request.query as Record<string, string | undefined>,
        streamedBody(request).body,
      );
      return reply.code(200).header('etag', etag).header('access-control-expose-headers', 'ETag').send();
    };
    const signedQuery = Type.Object({
      max: Type.Optional(Type.String()),
      expires: Type.Optional(Type.String()),
      signature: Type.Optional(Type.String()),
    });
    scope.put(
      `${LOCAL_UPLOAD_PATH}/:uploadId`,
      {
        schema: {
          tags: ['files'],
          summary: 'Local backend: receives the bytes of a presigned upload (signed URL, like S3)',
          params: Type.Object({ uploadId: Type.String({ format: 'uuid' }) }),
          querystring: signedQuery,
        },
      },
      receive,
    );
    scope.put(
      `${LOCAL_UPLOAD_PATH}/:uploadId/:partNumber`,
      {
        schema: {
          tags: ['files'],
          summary: 'Local backend: receives one part of a presigned multipart upload (answers its ETag)',
          params: Type.Object({
            uploadId: Type.String({ format: 'uuid' }),
            partNumber: Type.Integer({ minimum: 1, maximum: 10000 }),
          }),
          querystring: signedQuery,
        },
      },
      receive,
    );
  });

  app.post(
    '/files/presigned/:bucket',
    {
      schema: {
        tags: ['files'],
        security: routeSecurity.memberOrApiKey,
        summary:
          'Starts a presigned direct upload: URLs to PUT the bytes to (single or multipart), and a token for complete',
        params: Type.Object({ bucket: Type.String({ maxLength: 63 }) }),
        headers: OrgHeaders,
        body: Type.Object(
          {
            size: Type.Integer({ minimum: 1, description: 'Exact size in bytes' }),
            sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
            name: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
            multipart: Type.Optional(Type.Boolean()),
            partSize: Type.Optional(Type.Integer({ minimum: MIN_PART_BYTES })),
            expiresInSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      const bucket = files.bucket(request.params.bucket);
      const started = await presigned.start(uploaderOf(request, bucket), bucket.name, request.body);
      return reply.code(201).send({ ...started, expiresAt: started.expiresAt.toISOString() });
    },
  );

  app.post(
    '/files/presigned/:bucket/complete',
    {
      schema: {
        tags: ['files'],
        security: routeSecurity.memberOrApiKey,
        summary:
          'Completes a presigned upload: Socle reads the bytes back, verifies size, type, quota and SHA-256, then records the object',
        params: Type.Object({ bucket: Type.String({ maxLength: 63 }) }),
        headers: OrgHeaders,
        body: Type.Object(
          {
            token: Type.String({ minLength: 1, maxLength: 4096 }),
            parts: Type.Optional(
              Type.Array(
                Type.Object({
                  partNumber: Type.Integer({ minimum: 1, maximum: 10000 }),
                  etag: Type.String({ minLength: 1, maxLength: 200 }),
                }),
                { maxItems: 10000 },
              ),
            ),
          },
          { additionalProperties: false },
        ),
        response: { 201: FileObjectSchema },
      },
    },
    async (request, reply) => {
      const bucket = files.bucket(request.params.bucket);
      const object = await presigned.complete(
        uploaderOf(request, bucket),
        bucket.name,
        request.body.token,
        request.body.parts,
      );
      return reply.code(201).send(await describeObject(files, object));
    },
  );
}
