import type { FieldError } from '../../../kernel/index.js';
import { variantErrors } from './variants.errors.js';

/** Output formats of a variant. */
export const VARIANT_FORMATS = ['webp', 'avif', 'jpeg', 'png'] as const;
export type VariantFormat = (typeof VARIANT_FORMATS)[number];

/** How the image fits the box, as sharp's `fit` (https://sharp.pixelplumbing.com/api-resize). */
export const VARIANT_FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
export type VariantFit = (typeof VARIANT_FITS)[number];

/** Largest width or height of a variant, in pixels: a variant is a thumbnail or a screen image. */
export const MAX_VARIANT_DIMENSION = 4096;

/** Quality used when a lossy variant names none: sharp's defaults. */
export const DEFAULT_VARIANT_QUALITY: Readonly<Record<Exclude<VariantFormat, 'png'>, number>> = {
  webp: 80,
  avif: 50,
  jpeg: 80,
};

/** A variant with every default filled in: what is signed, rendered and cached. */
export interface VariantSpec {
  readonly width?: number;
  readonly height?: number;
  readonly fit: VariantFit;
  readonly format: VariantFormat;
  /** 1–100; absent for PNG, which is lossless. */
  readonly quality?: number;
}

/** What a caller may write: `fit` defaults to `cover`, `format` to `webp`, `quality` per format. */
export interface VariantSpecInput {
  readonly width?: number;
  readonly height?: number;
  readonly fit?: VariantFit;
  readonly format?: VariantFormat;
  readonly quality?: number;
}

const SPEC_FIELDS = new Set(['width', 'height', 'fit', 'format', 'quality']);

/**
 * Checks a variant written by a caller and fills in its defaults. At least one of `width` and
 * `height` is required, each an integer from 1 to {@link MAX_VARIANT_DIMENSION}. Throws
 * `files.variant_invalid` (400) naming every bad field as `<field>/<name>`.
 *
 * @example
 * parseVariantSpec({ width: 400, format: 'webp' });
 * // { width: 400, fit: 'cover', format: 'webp', quality: 80 }
 */
export function parseVariantSpec(input: unknown, field = 'variant'): VariantSpec {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw variantErrors.variantInvalid([{ field, message: 'must be an object' }]);
  }
  const record = input as Record<string, unknown>;
  const errors: FieldError[] = [];
  for (const name of Object.keys(record)) {
    if (!SPEC_FIELDS.has(name)) errors.push({ field: `${field}/${name}`, message: 'is not a variant field' });
  }
  const width = readDimension(record.width, `${field}/width`, errors);
  const height = readDimension(record.height, `${field}/height`, errors);
  if (record.width === undefined && record.height === undefined) {
    errors.push({ field: `${field}/width`, message: 'or height is required' });
  }
  const fit = readChoice(record.fit ?? 'cover', VARIANT_FITS, `${field}/fit`, errors);
  const format = readChoice(record.format ?? 'webp', VARIANT_FORMATS, `${field}/format`, errors);
  let quality: number | undefined;
  if (format === 'png') {
    if (record.quality !== undefined) {
      errors.push({ field: `${field}/quality`, message: 'does not apply to png, which is lossless' });
    }
  } else if (record.quality === undefined) {
    quality = format === undefined ? undefined : DEFAULT_VARIANT_QUALITY[format];
  } else if (isIntegerBetween(record.quality, 1, 100)) {
    quality = record.quality;
  } else {
    errors.push({ field: `${field}/quality`, message: 'must be an integer from 1 to 100' });
  }
  if (errors.length > 0 || fit === undefined || format === undefined) {
    throw variantErrors.variantInvalid(errors);
  }
  return {
    ...(width === undefined ? {} : { width }),
    ...(height === undefined ? {} : { height }),
    fit,
    format,
    ...(quality === undefined ? {} : { quality }),
  };
}

/**
 * The one text form of a variant, safe in a URL path or query without escaping:
 * `w400-h300-cover-q80.webp`, `w64-inside.png`. Equal variants encode equally, so a variant has
 * one URL (one CDN entry, one signature, one cache key).
 */
export function encodeVariantSpec(spec: VariantSpec): string {
  const parts: string[] = [];
  if (spec.width !== undefined) parts.push(`w${spec.width}`);
  if (spec.height !== undefined) parts.push(`h${spec.height}`);
  parts.push(spec.fit);
  if (spec.quality !== undefined) parts.push(`q${spec.quality}`);
  return `${parts.join('-')}.${spec.format}`;
}

const ENCODED_SPEC = /^(?:w(\d{1,5})-)?(?:h(\d{1,5})-)?([a-z]{1,10})(?:-q(\d{1,3}))?\.([a-z]{1,5})$/;

/**
 * Reads the form {@link encodeVariantSpec} writes, and only that form: a text that is not the
 * canonical encoding of a valid variant (leading zeros, a default spelled differently, fields out
 * of order) throws `files.variant_invalid` naming `field`.
 */
export function decodeVariantSpec(text: string, field = 'variant'): VariantSpec {
  const match = ENCODED_SPEC.exec(text);
  if (match === null) {
    throw variantErrors.variantInvalid([{ field, message: 'must look like w400-h300-cover-q80.webp' }]);
  }
  const [, width, height, fit, quality, format] = match;
  const spec = parseVariantSpec(
    {
      ...(width === undefined ? {} : { width: Number(width) }),
      ...(height === undefined ? {} : { height: Number(height) }),
      fit,
      format,
      ...(quality === undefined ? {} : { quality: Number(quality) }),
    },
    field,
  );
  if (encodeVariantSpec(spec) !== text) {
    throw variantErrors.variantInvalid([
      { field, message: `is not in canonical form (expected ${encodeVariantSpec(spec)})` },
    ]);
  }
  return spec;
}

/** The Content-Type of a variant's bytes. */
export function variantContentType(format: VariantFormat): string {
  return `image/${format}`;
}

function readDimension(value: unknown, field: string, errors: FieldError[]): number | undefined {
  if (value === undefined) return undefined;
  if (isIntegerBetween(value, 1, MAX_VARIANT_DIMENSION)) return value;
  errors.push({ field, message: `must be an integer from 1 to ${MAX_VARIANT_DIMENSION}` });
  return undefined;
}

function readChoice<T extends string>(
  value: unknown,
  choices: readonly T[],
  field: string,
  errors: FieldError[],
): T | undefined {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return value as T;
  errors.push({ field, message: `must be one of ${choices.join(', ')}` });
  return undefined;
}

function isIntegerBetween(value: unknown, minimum: number, maximum: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= minimum && value <= maximum;
}
