import { Readable } from 'node:stream';
import type { RenderedVariant, VariantRenderer } from './render-variant.js';
import { variantCacheKey } from './render-variant.js';
import { type VariantSpec, variantContentType } from './variant-spec.js';

/**
 * The little of a blob store the variant cache needs: the kernel's blob store (local directory or
 * S3) has this shape, so it is passed as it is. `put` is all-or-nothing: a reader never sees half
 * a blob.
 */
export interface VariantBlobStore {
  /** The blob's bytes, or undefined when there is no blob under `key`. */
  get(key: string): Promise<{ readonly body: Readable } | undefined>;
  put(key: string, body: Readable, options?: { readonly contentType?: string }): Promise<unknown>;
}

/** How a variant was served: from the store, rendered by this request, or rendered by a concurrent one. */
export type VariantCacheOutcome = 'hit' | 'miss' | 'shared';

export interface CachedVariant {
  readonly body: Readable;
  readonly contentType: string;
  /** Key of the blob, with the cache's prefix. */
  readonly blobKey: string;
  readonly outcome: VariantCacheOutcome;
}

export interface VariantRequest {
  /** sha256 (hex) of the source object's bytes, from its record. */
  readonly sourceSha256: string;
  readonly spec: VariantSpec;
  /** Opens the source object; called only when the variant has to be rendered. */
  openSource(): Promise<Readable>;
}

export interface VariantCache {
  /**
   * Serves a variant from the store, or renders and stores it. Concurrent requests for the same
   * variant in this process share one render and one `put` (single flight); across processes
   * they may render it twice, which stores the same bytes under the same key.
   */
  getVariant(request: VariantRequest): Promise<CachedVariant>;
}

export interface VariantCacheOptions {
  readonly store: VariantBlobStore;
  readonly renderer: Pick<VariantRenderer, 'renderVariant'>;
  /** Prepended to {@link variantCacheKey} to name the blob. Default `variants/`. */
  readonly keyPrefix?: string;
  /** Called once per request: count hits for the metrics. */
  onOutcome?(outcome: VariantCacheOutcome): void;
  /**
   * When given, a failed `put` is reported here and the rendered variant is still served (the
   * next request renders again); when absent, the failure rejects the requests of that render.
   */
  onStoreError?(error: unknown, blobKey: string): void;
}

/**
 * Generates each variant once and keeps it as a blob.
 *
 * @example
 * const cache = createVariantCache({ store: blobs, renderer });
 * const { body, contentType } = await cache.getVariant({
 *   sourceSha256: object.sha256,
 *   spec,
 *   openSource: () => openObjectBody(object), // the source's bytes, as the download route reads them
 * });
 */
/** Where variants are cached in the blob store, by default. */
export const VARIANT_KEY_PREFIX = 'variants/';

/**
 * Where the variants of one source live, under the cache's prefix: `<sha256 of the source>/`.
 * Grouped by source so that deleting or erasing an object deletes its variants (a list of one
 * prefix), and the cleanup job finds variants whose source is gone.
 */
export function variantBlobDirectory(sourceSha256: string): string {
  return `${sourceSha256}/`;
}

export function createVariantCache(options: VariantCacheOptions): VariantCache {
  const { store, renderer } = options;
  const keyPrefix = options.keyPrefix ?? VARIANT_KEY_PREFIX;
  const inFlight = new Map<string, Promise<RenderedVariant>>();

  const renderAndStore = async (blobKey: string, request: VariantRequest): Promise<RenderedVariant> => {
    const rendered = await renderer.renderVariant(await request.openSource(), request.spec);
    try {
      await store.put(blobKey, bytesOf(rendered.data), { contentType: rendered.contentType });
    } catch (error) {
      if (options.onStoreError === undefined) throw error;
      options.onStoreError(error, blobKey);
    }
    return rendered;
  };

  const served = (
    rendered: RenderedVariant,
    blobKey: string,
    outcome: VariantCacheOutcome,
  ): CachedVariant => {
    options.onOutcome?.(outcome);
    return { body: bytesOf(rendered.data), contentType: rendered.contentType, blobKey, outcome };
  };

  return {
    async getVariant(request) {
      const blobKey = `${keyPrefix}${variantBlobDirectory(request.sourceSha256)}${variantCacheKey(request.sourceSha256, request.spec)}`;
      const running = inFlight.get(blobKey);
      if (running !== undefined) return served(await running, blobKey, 'shared');
      const stored = await store.get(blobKey);
      if (stored !== undefined) {
        options.onOutcome?.('hit');
        return {
          body: stored.body,
          contentType: variantContentType(request.spec.format),
          blobKey,
          outcome: 'hit',
        };
      }
      // Another request may have missed the store at the same time and started rendering while
      // this one awaited `get`.
      const started = inFlight.get(blobKey);
      if (started !== undefined) return served(await started, blobKey, 'shared');
      const render = renderAndStore(blobKey, request);
      inFlight.set(blobKey, render);
      // Forgotten only once stored: a request arriving before then joins this render instead of
      // missing the store and rendering again. A failed render is forgotten too, so the next
      // request tries again.
      render.then(
        () => inFlight.delete(blobKey),
        () => inFlight.delete(blobKey),
      );
      return served(await render, blobKey, 'miss');
    },
  };
}

function bytesOf(data: Buffer): Readable {
  return Readable.from([data], { objectMode: false });
}
