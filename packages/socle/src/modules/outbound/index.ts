/** Outbound calls: declared providers with timeouts, retries, a breaker, a shared rate limit and fallbacks. */

export { outboundErrors } from './outbound.errors.js';
export { createOutboundModule, type OutboundModule, type OutboundServices } from './outbound.module.js';
export {
  type CreateOutboundOptions,
  createOutbound,
  jobIdempotencyKey,
  type Outbound,
} from './outbound.service.js';
export {
  type CircuitStateName,
  type JsonValidator,
  type OutboundClient,
  type OutboundMethod,
  type OutboundRequest,
  type OutboundResponse,
  parseRetryAfter,
} from './outbound-client.js';
export {
  type BreakerOptions,
  defineProvider,
  type ProviderAuth,
  type ProviderDefinition,
  type ProviderOptions,
  type ProviderRateLimit,
  type RetryOptions,
} from './provider.js';
