/**
 * Image variants: a spec carried in a signed URL, rendered with sharp under a concurrency limit,
 * cached once as a blob. Self-contained: the files module wires it into its download route.
 */
export {
  createVariantRenderer,
  type RenderedVariant,
  type VariantRenderer,
  type VariantRendererOptions,
  variantCacheKey,
} from './render-variant.js';
export {
  type CachedVariant,
  createVariantCache,
  VARIANT_KEY_PREFIX,
  type VariantBlobStore,
  type VariantCache,
  type VariantCacheOptions,
  type VariantCacheOutcome,
  type VariantRequest,
  variantBlobDirectory,
} from './variant-cache.js';
export {
  createVariantSigner,
  type SignedVariantParameters,
  type VariantRequestParameters,
  type VariantSigner,
  type VariantSignerOptions,
} from './variant-signature.js';
export {
  DEFAULT_VARIANT_QUALITY,
  decodeVariantSpec,
  encodeVariantSpec,
  MAX_VARIANT_DIMENSION,
  parseVariantSpec,
  VARIANT_FITS,
  VARIANT_FORMATS,
  type VariantFit,
  type VariantFormat,
  type VariantSpec,
  type VariantSpecInput,
  variantContentType,
} from './variant-spec.js';
export { variantErrors } from './variants.errors.js';
