/** Outbound calls: declared providers with timeouts, retries, a breaker, a shared rate limit and fallbacks. */

export { createOutboundCredentialsModule, type OutboundCredentialsServices } from './credentials.module.js';
export type { CredentialsService, StoredCredential } from './credentials.service.js';
export {
  createOpenAiAudio,
  defineOpenAiProvider,
  multipartBody,
  OPENAI_BASE_URL,
  type OpenAiAudio,
  type OpenAiProviderOptions,
  openAiSdkOptions,
  type Transcription,
  type TranscriptionRequest,
} from './openai.provider.js';
export { outboundErrors } from './outbound.errors.js';
export { createOutboundModule, type OutboundModule, type OutboundServices } from './outbound.module.js';
export {
  type CreateOutboundOptions,
  createOutbound,
  jobIdempotencyKey,
  type Outbound,
} from './outbound.service.js';
export { type OutboundSettings, outboundSettings } from './outbound.settings.js';
export {
  type CircuitStateName,
  isProviderFailure,
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
export {
  createReplicatePredictions,
  defineReplicateProvider,
  isPredictionDone,
  type NewPrediction,
  type Prediction,
  type PredictionStatus,
  REPLICATE_API_URL,
  type ReplicatePredictions,
  type ReplicateProviderOptions,
} from './replicate.provider.js';
export {
  type StandardWebhookCheck,
  signStandardWebhook,
  type VerifiedWebhook,
  verifyStandardWebhook,
} from './webhook-signature.js';
export {
  createJitsiMeetings,
  createZoomMeetings,
  defineZoomProvider,
  type NewMeeting,
  type VideoMeeting,
  type VideoMeetings,
  withMeetingFallback,
  ZOOM_API_URL,
  ZOOM_TOKEN_URL,
  type ZoomProviderOptions,
} from './zoom.provider.js';
