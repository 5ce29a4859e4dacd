import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyReply,
  FastifyRequest,
  FastifySchema,
  RawServerDefault,
  RouteGenericInterface,
} from 'fastify';
import type { Transaction } from 'kysely';
import type { HttpServer } from '../../kernel/index.js';
import type { Bucket } from './buckets.js';
import type { FileObject, FilesActor, FilesService } from './objects.service.js';

/** A request of a route declared with `schema`: params, query and headers typed from it. */
export type UploadRequest<Schema extends FastifySchema> = FastifyRequest<
  RouteGenericInterface,
  RawServerDefault,
  IncomingMessage,
  Schema,
  TypeBoxTypeProvider
>;

/** A streamed request body as `files.upload` takes it: the bytes and what the client announced. */
export interface StreamedBody {
  readonly body: Readable;
  readonly declaredType: string | undefined;
  readonly declaredLength: number | undefined;
}

/** A streamed upload route: see {@link FilesUploadRoute}. */
export interface UploadRouteOptions<Schema extends FastifySchema, Attached, Tables> {
  /** Default `POST`. */
  readonly method?: 'POST' | 'PUT';
  readonly url: string;
  /**
   * The route's schema (tags, security, summary, params, querystring, headers, response), as on
   * any route; not `body`: the body is the file's bytes, whatever its `Content-Type`.
   */
  readonly schema?: Schema;
  /** The bucket the bytes go to: its `maxBytes` (413) and `allowedTypes` (415, sniffed) apply. */
  readonly bucket: string | ((request: UploadRequest<Schema>) => string);
  /**
   * Who uploads: the organization and user of a tenant bucket, the user of a per-user bucket.
   * Throw here to refuse (401, 403, 404…): it runs before a byte of the body is read.
   */
  readonly authorize: (request: UploadRequest<Schema>, bucket: Bucket) => FilesActor | Promise<FilesActor>;
  /** The file's name (for `Content-Disposition` on download). */
  readonly name?: (request: UploadRequest<Schema>) => string | undefined;
  readonly metadata?: (request: UploadRequest<Schema>) => Readonly<Record<string, unknown>> | undefined;
  /**
   * Runs in the transaction that records the object (your row, a job): they commit together or
   * not at all, and a throw here deletes the bytes. What it returns is `attached` in `reply`.
   */
  readonly attach?: (
    trx: Transaction<Tables>,
    object: FileObject,
    request: UploadRequest<Schema>,
  ) => Promise<Attached>;
  /**
   * The answer once the object is stored (200 with what it returns, unless it sets the status);
   * default: 201 with the object and its download link, as `POST /files/:bucket` answers.
   */
  readonly reply?: (
    stored: { readonly object: FileObject; readonly attached: Attached },
    request: UploadRequest<Schema>,
    reply: FastifyReply,
  ) => unknown;
}

/**
 * Declares a route whose body is a file's bytes, streamed into a bucket: never parsed nor held
 * in memory; size, type (sniffed) and quota enforced while streaming; the record written only
 * once the bytes are verified, with your own `attach` in the same transaction. A refusal answers
 * problem+json at once (413 `files.too_large`, 415 `files.type_not_allowed`, 409
 * `files.quota_exceeded`) and closes the connection rather than read the rest; a client that
 * hangs up leaves nothing.
 *
 * @example
 * files.uploadRoute(app, {
 *   method: 'PUT',
 *   url: '/me/avatar',
 *   schema: { tags: ['profiles'], security: routeSecurity.user, summary: 'My avatar: the body is the image' },
 *   bucket: 'avatars',
 *   authorize: (request) => ({ userId: requireUser(request).userId }),
 *   attach: (trx, object) => trx.updateTable('app.profiles').set({ avatar_id: object.id }).execute(),
 *   reply: ({ object }) => ({ avatarId: object.id }),
 * });
 */
export type FilesUploadRoute = <
  Schema extends FastifySchema = FastifySchema,
  Attached = undefined,
  Tables = unknown,
>(
  app: HttpServer,
  options: UploadRouteOptions<Schema, Attached, Tables>,
) => void;

const headerValue = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** The body of a request on a streamed route (see {@link registerStreamedRoutes}) and its headers. */
export function streamedBody(request: FastifyRequest): StreamedBody {
  const length = headerValue(request.headers['content-length']);
  return {
    body: (request.body as Readable | undefined) ?? request.raw,
    declaredType: headerValue(request.headers['content-type']),
    declaredLength: length === undefined ? undefined : Number(length),
  };
}

/**
 * Registers routes whose bodies reach their handlers as streams, whatever their `Content-Type`:
 * the routes live in their own scope without body parsers, so no other route loses its parsers.
 * An error answered before the body was read to its end closes the connection: draining the rest
 * of a refused 50 MB upload would only waste the bandwidth.
 */
export function registerStreamedRoutes(app: HttpServer, routes: (scope: HttpServer) => void): void {
  app.register(async (plugin) => {
    const scope = plugin as unknown as HttpServer;
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode >= 400 && !request.raw.readableEnded) reply.header('connection', 'close');
      return payload;
    });
    routes(scope);
  });
}

/** `files.uploadRoute`: see {@link FilesUploadRoute}. */
export function createUploadRoute(
  files: FilesService,
  describe: (object: FileObject) => Promise<unknown>,
): FilesUploadRoute {
  return function uploadRoute<Schema extends FastifySchema, Attached, Tables>(
    app: HttpServer,
    options: UploadRouteOptions<Schema, Attached, Tables>,
  ): void {
    const { attach, bucket: bucketOf } = options;
    registerStreamedRoutes(app, (scope) => {
      scope.route({
        method: options.method ?? 'POST',
        url: options.url,
        // Typed for the caller's callbacks (UploadRequest); the route itself needs no inference.
        ...(options.schema === undefined ? {} : { schema: options.schema as FastifySchema }),
        handler: async (untyped, reply) => {
          const request = untyped as unknown as UploadRequest<Schema>;
          const bucket = files.bucket(typeof bucketOf === 'string' ? bucketOf : bucketOf(request));
          const actor = await options.authorize(request, bucket);
          const stored = await files.upload<Attached, Tables>(
            {
              ...streamedBody(untyped),
              tenantId: actor.tenantId,
              userId: actor.userId,
              bucket: bucket.name,
              name: options.name?.(request),
              metadata: options.metadata?.(request),
            },
            attach === undefined ? undefined : (trx, object) => attach(trx, object, request),
          );
          if (options.reply === undefined) return reply.code(201).send(await describe(stored.object));
          return options.reply(stored, request, reply);
        },
      });
    });
  };
}
