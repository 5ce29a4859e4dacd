import { createHmac, timingSafeEqual } from 'node:crypto';
import { type Clock, systemClock } from '../../../kernel/index.js';
import {
  decodeVariantSpec,
  encodeVariantSpec,
  parseVariantSpec,
  type VariantSpec,
  type VariantSpecInput,
} from './variant-spec.js';
import { variantErrors } from './variants.errors.js';

/**
 * What a variant URL carries besides the object key, as query parameters of the same names:
 * `?variant=w400-cover-q80.webp&expires=1767225600&signature=…`.
 */
export interface SignedVariantParameters {
  /** The canonical spec ({@link encodeVariantSpec}). */
  readonly variant: string;
  /** Unix time in seconds after which the URL is refused. */
  readonly expires: number;
  /** base64url HMAC-SHA256 of the object key, the variant and the expiry. */
  readonly signature: string;
}

/** The three parameters as they arrive in a request, unchecked. */
export interface VariantRequestParameters {
  readonly variant?: unknown;
  readonly expires?: unknown;
  readonly signature?: unknown;
}

export interface VariantSigner {
  /**
   * Signs `spec` of the object `objectKey` until `expiresAt`. The spec is checked first
   * (`files.variant_invalid`), so a signed URL always names a variant Socle makes.
   */
  sign(objectKey: string, spec: VariantSpecInput, expiresAt: Date): SignedVariantParameters;
  /**
   * Checks a request's parameters for `objectKey` and returns its variant. Throws
   * `files.signature_invalid` (403) when a parameter is missing, malformed or altered (another
   * key, another size, a later expiry), and `files.signature_expired` (403) when a genuine
   * signature is past its expiry.
   */
  verify(objectKey: string, parameters: VariantRequestParameters): VariantSpec;
}

export interface VariantSignerOptions {
  /** HMAC key, at least 32 bytes. Keep it secret: whoever holds it can ask for any variant. */
  readonly key: Uint8Array;
  readonly clock?: Clock;
}

const MINIMUM_KEY_BYTES = 32;
const SIGNATURE_BYTES = 32;
/** Domain separation: a download signature made with the same key is never a variant signature. */
const PURPOSE = 'socle.files.variant.v1';
const EXPIRES_PATTERN = /^\d{1,12}$/;

/**
 * Signs and verifies variant URLs, so nobody can ask the server to render a size it did not hand
 * out. The signature covers the object key, the canonical spec and the expiry; comparison is in
 * constant time.
 *
 * @example
 * const signer = createVariantSigner({ key: variantKey });
 * const { variant, expires, signature } = signer.sign('avatars/42.jpg', { width: 128 }, inOneDay);
 * // later, in the download route:
 * const spec = signer.verify('avatars/42.jpg', request.query);
 */
export function createVariantSigner(options: VariantSignerOptions): VariantSigner {
  if (options.key.byteLength < MINIMUM_KEY_BYTES) {
    throw new TypeError(`A variant signing key has at least ${MINIMUM_KEY_BYTES} bytes`);
  }
  const key = Buffer.from(options.key);
  const clock = options.clock ?? systemClock;
  const mac = (objectKey: string, variant: string, expires: string): Buffer =>
    createHmac('sha256', key)
      .update(JSON.stringify([PURPOSE, objectKey, variant, expires]))
      .digest();

  return {
    sign(objectKey, input, expiresAt) {
      const variant = encodeVariantSpec(parseVariantSpec(input));
      const expires = Math.floor(expiresAt.getTime() / 1000);
      if (!Number.isSafeInteger(expires) || expires * 1000 <= clock.now().getTime()) {
        throw new TypeError('A variant URL expires in the future');
      }
      const signature = mac(objectKey, variant, String(expires)).toString('base64url');
      return { variant, expires, signature };
    },

    verify(objectKey, parameters) {
      const { variant, signature } = parameters;
      const expires =
        typeof parameters.expires === 'number' ? String(parameters.expires) : parameters.expires;
      if (
        typeof variant !== 'string' ||
        typeof expires !== 'string' ||
        typeof signature !== 'string' ||
        !EXPIRES_PATTERN.test(expires)
      ) {
        throw variantErrors.signatureInvalid();
      }
      const given = Buffer.from(signature, 'base64url');
      // Buffer.from drops characters outside the alphabet: compare the round trip, so that one
      // signature has one spelling.
      if (given.length !== SIGNATURE_BYTES || given.toString('base64url') !== signature) {
        throw variantErrors.signatureInvalid();
      }
      if (!timingSafeEqual(given, mac(objectKey, variant, expires))) {
        throw variantErrors.signatureInvalid();
      }
      const expiresAt = new Date(Number(expires) * 1000);
      if (clock.now().getTime() >= expiresAt.getTime()) throw variantErrors.signatureExpired(expiresAt);
      // Signed by this server, so valid when signed; it fails only if the limits have changed since.
      return decodeVariantSpec(variant, 'query/variant');
    },
  };
}
