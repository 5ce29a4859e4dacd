import { type FieldError, SocleError } from '../../../kernel/index.js';

/** Errors of image variants: stable codes clients branch on. */
export const variantErrors = {
  /** The variant asked for is not one Socle makes; `errors` names each bad field. */
  variantInvalid: (errors: readonly FieldError[]) =>
    new SocleError(
      'files.variant_invalid',
      `The image variant is invalid: ${errors.map((error) => `${error.field} ${error.message}`).join('; ')}`,
      { status: 400, errors },
    ),
  /** Missing, malformed or tampered signature: the URL was not made by this server as it stands. */
  signatureInvalid: () =>
    new SocleError('files.signature_invalid', 'The signature of this URL is missing or does not match', {
      status: 403,
    }),
  /** A genuine signature past its expiry. */
  signatureExpired: (expiredAt: Date) =>
    new SocleError('files.signature_expired', `This URL expired at ${expiredAt.toISOString()}`, {
      status: 403,
      details: { expiredAt: expiredAt.toISOString() },
    }),
  /**
   * The stored image is bigger than variants are made of. 422, not 413: the request itself is
   * small and well-formed; it is the stored object that this server refuses to decode.
   */
  imageTooLarge: (details: {
    readonly limit: 'pixels' | 'bytes';
    readonly maximum: number;
    readonly actual?: number;
  }) =>
    new SocleError(
      'files.image_too_large',
      details.limit === 'pixels'
        ? `The image has ${details.actual} pixels; variants are made of images up to ${details.maximum} pixels`
        : `The image exceeds ${details.maximum} bytes; variants are made of smaller images only`,
      { status: 422, details },
    ),
  /** The stored object is not an image format variants are made of (SVG, PDF, unknown bytes…). */
  imageUnsupported: (format: string) =>
    new SocleError(
      'files.image_unsupported',
      `Variants are made of JPEG, PNG, WebP, AVIF/HEIF, GIF and TIFF images, not ${format}`,
      { status: 422, details: { format } },
    ),
  /** The stored object claims an image format but cannot be decoded. */
  imageUnreadable: (cause: unknown) =>
    new SocleError('files.image_unreadable', 'The image cannot be decoded', { status: 422, cause }),
  /** Too many variants are being made already; the client retries. */
  variantsBusy: () =>
    new SocleError('files.variants_busy', 'Too many image variants are being generated; retry shortly', {
      status: 503,
      headers: { 'retry-after': '1' },
    }),
};
