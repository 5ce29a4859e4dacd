import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Readable } from 'node:stream';
import sharp from 'sharp';
import { type ConcurrencyLimit, createConcurrencyLimit } from './concurrency-limit.js';
import { encodeVariantSpec, type VariantSpec, variantContentType } from './variant-spec.js';
import { variantErrors } from './variants.errors.js';

/** A rendered variant, whole in memory: its size is bounded by the variant's dimensions. */
export interface RenderedVariant {
  readonly data: Buffer;
  readonly contentType: string;
  readonly width: number;
  readonly height: number;
}

export interface VariantRenderer {
  /**
   * Renders `spec` of the image read from `input`: auto-oriented from its EXIF Orientation, never
   * enlarged, every metadata block (EXIF with GPS, XMP, IPTC, ICC) dropped and colours converted
   * to sRGB. Waits for a permit of the limiter first, and only then reads `input`, so waiting
   * requests hold no image in memory. Throws `files.image_too_large`,
   * `files.image_unsupported`, `files.image_unreadable` (422) or `files.variants_busy` (503).
   */
  renderVariant(input: Readable, spec: VariantSpec): Promise<RenderedVariant>;
  /** Renders running now and waiting, for metrics and tests. */
  readonly load: { readonly active: number; readonly queued: number };
}

export interface VariantRendererOptions {
  /**
   * Largest source image in pixels (width × height), checked from the header before any pixel
   * is decoded and again by sharp's `limitInputPixels`. Default 100 megapixels: a 108 MP phone
   * photo passes, a 30000 × 30000 decompression bomb does not.
   */
  readonly maxInputPixels?: number;
  /** Largest source in bytes; the source is read into memory (sharp does so with streams too). Default 64 MiB. */
  readonly maxInputBytes?: number;
  /**
   * Renders running at once. Each one already uses all cores through libvips' own threads
   * (`sharp.concurrency()`, process-wide, left alone here) and runs on libuv's pool (4 threads
   * unless UV_THREADPOOL_SIZE says otherwise), so more than the core count adds memory, not
   * throughput. Default: the number of cores.
   */
  readonly concurrency?: number;
  /** Renders waiting for a permit before `files.variants_busy` is answered. Default 64. */
  readonly maxQueued?: number;
}

const DEFAULT_MAX_INPUT_PIXELS = 100_000_000;
const DEFAULT_MAX_INPUT_BYTES = 64 * 1024 * 1024;
const DEFAULT_MAX_QUEUED = 64;
/**
 * Source formats variants are made of. SVG and PDF are refused: rasterizing untrusted vector
 * documents is a larger attack surface, and a user's photo is never one.
 */
const SOURCE_FORMATS = new Set(['jpeg', 'png', 'webp', 'avif', 'heif', 'gif', 'tiff']);
/** Background of `contain` letterboxing: transparent, except JPEG which has no alpha. */
const TRANSPARENT = { r: 0, g: 0, b: 0, alpha: 0 };
const WHITE = { r: 255, g: 255, b: 255, alpha: 1 };

/**
 * The renderer of image variants, with its own concurrency limit: make one per process.
 *
 * @example
 * const renderer = createVariantRenderer({ concurrency: 2 });
 * const { data, contentType } = await renderer.renderVariant(blobStream, decodeVariantSpec('w400-cover-q80.webp'));
 */
export function createVariantRenderer(options: VariantRendererOptions = {}): VariantRenderer {
  const maxInputPixels = options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  const maxInputBytes = options.maxInputBytes ?? DEFAULT_MAX_INPUT_BYTES;
  const limit: ConcurrencyLimit = createConcurrencyLimit(
    options.concurrency ?? availableParallelism(),
    options.maxQueued ?? DEFAULT_MAX_QUEUED,
    variantErrors.variantsBusy,
  );

  const render = async (input: Readable, spec: VariantSpec): Promise<RenderedVariant> => {
    const source = await readLimited(input, maxInputBytes);
    // Header only, no pixel decoded; the limit is lifted here so the check below can name the size.
    const header = await sharp(source, { limitInputPixels: false })
      .metadata()
      .catch((error: unknown) => {
        throw variantErrors.imageUnreadable(error);
      });
    if (!SOURCE_FORMATS.has(header.format)) throw variantErrors.imageUnsupported(header.format);
    // Only the first page of a multi-page source (animated GIF, TIFF) is decoded.
    const pixels = header.width * header.height;
    if (pixels > maxInputPixels) {
      throw variantErrors.imageTooLarge({ limit: 'pixels', maximum: maxInputPixels, actual: pixels });
    }
    const image = sharp(source, {
      autoOrient: true,
      limitInputPixels: maxInputPixels,
      failOn: 'error',
    }).resize({
      ...(spec.width === undefined ? {} : { width: spec.width }),
      ...(spec.height === undefined ? {} : { height: spec.height }),
      fit: spec.fit,
      withoutEnlargement: true,
      background: spec.format === 'jpeg' ? WHITE : TRANSPARENT,
    });
    // No keepMetadata()/withMetadata(): sharp writes none of the source's metadata.
    switch (spec.format) {
      case 'webp':
        image.webp({ quality: spec.quality });
        break;
      case 'avif':
        image.avif({ quality: spec.quality });
        break;
      case 'jpeg':
        image.flatten({ background: WHITE }).jpeg({ quality: spec.quality });
        break;
      case 'png':
        image.png();
        break;
    }
    try {
      const { data, info } = await image.toBuffer({ resolveWithObject: true });
      return { data, contentType: variantContentType(spec.format), width: info.width, height: info.height };
    } catch (error) {
      throw variantErrors.imageUnreadable(error);
    }
  };

  return {
    renderVariant: (input, spec) =>
      limit
        .run(() => render(input, spec))
        .catch((error: unknown) => {
          // Nobody else will read it: let its source (a file, an S3 response) close.
          input.destroy();
          throw error;
        }),
    load: {
      get active() {
        return limit.active;
      },
      get queued() {
        return limit.queued;
      },
    },
  };
}

/**
 * Where a variant is cached: sha256 of the source's sha256 and the canonical spec, hex. The same
 * bytes asked for the same variant share an entry whatever their key, bucket or tenant, and a
 * changed source gets a new entry instead of a stale one.
 */
export function variantCacheKey(sourceSha256: string, spec: VariantSpec): string {
  return createHash('sha256')
    .update(`socle.files.variant.v1\n${sourceSha256}\n${encodeVariantSpec(spec)}`)
    .digest('hex');
}

async function readLimited(input: Readable, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  // A failing source (a reset S3 response) is the server's problem, not the image's: its error
  // goes through as it is, a 500.
  for await (const chunk of input) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    total += buffer.length;
    if (total > maxBytes) throw variantErrors.imageTooLarge({ limit: 'bytes', maximum: maxBytes });
    chunks.push(buffer);
  }
  return Buffer.concat(chunks, total);
}
