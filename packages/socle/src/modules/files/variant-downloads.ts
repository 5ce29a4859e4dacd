import { Type } from '@fastify/type-provider-typebox';
import type { BlobStore, HttpServer, MetricCounter } from '../../kernel/index.js';
import { filesErrors } from './files.errors.js';
import { type FileObject, type FilesService, parseScopeToken, scopeToken } from './objects.service.js';
import {
  createVariantCache,
  createVariantRenderer,
  decodeVariantSpec,
  encodeVariantSpec,
  parseVariantSpec,
  type VariantSpecInput,
  variantCacheKey,
  variantErrors,
} from './variants/index.js';

const VARIANT_PATH = '/files/variant';
const DEFAULT_SECONDS = 3600;
const MAX_SECONDS = 7 * 24 * 3600;

/**
 * Image variants behind signed URLs: `variantUrl(object, { width: 400, format: 'webp' })` signs
 * the object, its scope and the variant spec together (the files signer's HMAC covers every
 * parameter), so changing the size or format in the URL is refused (403
 * `files.signature_invalid`), and nobody can make the server render sizes it did not hand out.
 * Rendered once with sharp (pixel limit, EXIF stripped, concurrency-limited: see
 * docs/image-variants.md), cached as a blob under `variants/`, served with an ETag.
 */
export function createVariantDownloads(options: {
  readonly files: FilesService;
  readonly blobs: BlobStore;
  readonly now: () => Date;
  /** Variants served from the cache, and variants rendered (a miss; a shared render counts once). */
  readonly metrics: { readonly cacheHits: MetricCounter; readonly rendered: MetricCounter };
}) {
  const { files, blobs, now } = options;
  const cache = createVariantCache({ store: blobs, renderer: createVariantRenderer() });
  const scopeOf = (object: FileObject) =>
    object.tenantId === null
      ? { kind: 'user' as const, id: object.ownerId as string }
      : { kind: 'tenant' as const, id: object.tenantId };

  /** A signed link to `spec` of an image object (400 `files.variant_invalid` for a bad spec). */
  function variantUrl(
    object: FileObject,
    input: VariantSpecInput,
    urlOptions: { readonly expiresInSeconds?: number } = {},
  ): { readonly url: string; readonly expiresAt: Date } {
    const spec = parseVariantSpec(input);
    if (!object.contentType.startsWith('image/'))
      throw variantErrors.variantInvalid([{ field: 'object', message: 'is not an image' }]);
    const seconds = Math.min(Math.max(urlOptions.expiresInSeconds ?? DEFAULT_SECONDS, 1), MAX_SECONDS);
    const expiresAt = new Date(now().getTime() + seconds * 1000);
    const url = files.signer.sign(
      `${VARIANT_PATH}/${object.bucket}/${object.id}`,
      { scope: scopeToken(scopeOf(object)), variant: encodeVariantSpec(spec) },
      expiresAt,
    );
    return { url, expiresAt };
  }

  function registerRoutes(app: HttpServer): void {
    app.get(
      `${VARIANT_PATH}/:bucket/:id`,
      {
        schema: {
          tags: ['files'],
          summary: 'An image variant through a signed link (the size and format are part of the signature)',
          params: Type.Object({
            bucket: Type.String({ maxLength: 63 }),
            id: Type.String({ format: 'uuid' }),
          }),
          querystring: Type.Object({
            scope: Type.Optional(Type.String()),
            variant: Type.Optional(Type.String()),
            expires: Type.Optional(Type.String()),
            signature: Type.Optional(Type.String()),
          }),
        },
      },
      async (request, reply) => {
        const { bucket, id } = request.params;
        const { params, expiresAt } = files.signer.verify(
          `${VARIANT_PATH}/${bucket}/${id}`,
          request.query as Record<string, string | undefined>,
          now(),
        );
        const scope = parseScopeToken(params.scope);
        if (scope === undefined || params.variant === undefined) throw filesErrors.signatureInvalid();
        const spec = decodeVariantSpec(params.variant);
        const actor = scope.kind === 'tenant' ? { tenantId: scope.id } : { userId: scope.id };
        const object = await files.find(actor, bucket, id);
        if (object === undefined) throw filesErrors.notFound();
        const etag = `"${variantCacheKey(object.sha256, spec)}"`;
        const maxAge = Math.max(0, Math.floor((expiresAt.getTime() - now().getTime()) / 1000));
        reply
          .header('etag', etag)
          .header('cache-control', `private, max-age=${maxAge}`)
          .header('x-content-type-options', 'nosniff');
        const ifNoneMatch = request.headers['if-none-match'];
        if (typeof ifNoneMatch === 'string' && ifNoneMatch.split(',').some((tag) => tag.trim() === etag))
          return reply.code(304).send();
        const variant = await cache.getVariant({
          sourceSha256: object.sha256,
          spec,
          openSource: async () => {
            const read = await blobs.get(`${scopeToken(scope)}/${bucket}/${id}`);
            if (read === undefined) throw filesErrors.notFound();
            return read.body;
          },
        });
        if (variant.outcome === 'miss') options.metrics.rendered.inc();
        else options.metrics.cacheHits.inc();
        return reply.header('content-type', variant.contentType).send(variant.body);
      },
    );
  }

  return { variantUrl, registerRoutes };
}

export type VariantDownloads = ReturnType<typeof createVariantDownloads>;
