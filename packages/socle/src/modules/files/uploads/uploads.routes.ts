import { Readable } from 'node:stream';
import { Type } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type HttpServer, routeSecurity } from '../../../kernel/index.js';
import { requireUser } from '../../identity/index.js';
import { OrgHeaders, requireOrgRole } from '../../tenancy/index.js';
import type { Bucket } from '../buckets.js';
import type { FilesActor } from '../objects.service.js';
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
export function registerUploadRoutes(app: HttpServer, resumable: ResumableUploads): void {
  app.register(async (plugin) => {
    const scope = plugin as unknown as HttpServer;
    // tus bodies are `application/offset+octet-stream`: hand every body over as a stream.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

    const tus = async (request: FastifyRequest, reply: FastifyReply, uploadId: string | undefined) => {
      try {
        const { response } = await resumable.handle({
          request: toWebRequest(request),
          uploadId,
          actorFor: (bucket) => uploaderOf(request, bucket),
        });
        return await sendWebResponse(reply, response);
      } catch (error) {
        // The rest of a refused body is not read: close the connection rather than drain it.
        if (!request.raw.readableEnded) reply.header('connection', 'close');
        throw error;
      }
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
  });
}
