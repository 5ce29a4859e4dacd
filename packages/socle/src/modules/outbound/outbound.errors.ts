import { SocleError } from '../../kernel/index.js';

const seconds = (milliseconds: number) => Math.max(1, Math.ceil(milliseconds / 1000));

/** `Retry-After` and `retryAfterSeconds` when the wait is known. */
const retryAfter = (milliseconds: number | undefined) =>
  milliseconds === undefined
    ? {}
    : {
        headers: { 'retry-after': String(seconds(milliseconds)) },
        details: { retryAfterSeconds: seconds(milliseconds) },
      };

const withRetryAfter = (
  code: string,
  message: string,
  status: number,
  details: Record<string, unknown>,
  retryAfterMs: number | undefined,
  cause?: unknown,
) => {
  const wait = retryAfter(retryAfterMs);
  return new SocleError(code, message, {
    status,
    details: { ...details, ...wait.details },
    ...(wait.headers === undefined ? {} : { headers: wait.headers }),
    ...(cause === undefined ? {} : { cause }),
  });
};

/**
 * Errors of outbound calls. Each names the provider (and operation); none carries a URL's query,
 * a header or a body the provider sent, so no secret reaches a log or a client. A route that lets
 * one through answers 502/503/504 problem+json, with `Retry-After` when the wait is known.
 */
export const outboundErrors = {
  /** The provider did not answer in time (one attempt, or the whole call with its retries). */
  timeout: (provider: string, operation: string, timeoutMs: number, cause?: unknown) =>
    new SocleError('outbound.timeout', `${provider} did not answer ${operation} within ${timeoutMs} ms`, {
      status: 504,
      details: { provider, operation, timeoutMs },
      ...(cause === undefined ? {} : { cause }),
    }),
  /** The provider could not be reached, reset the connection or answered 5xx/429 (after retries). */
  unavailable: (
    provider: string,
    operation: string,
    reason: string,
    providerStatus?: number,
    retryAfterMs?: number,
    cause?: unknown,
  ) =>
    withRetryAfter(
      'outbound.unavailable',
      `${provider} failed ${operation}: ${reason}`,
      providerStatus === 429 || providerStatus === 503 ? 503 : 502,
      { provider, operation, ...(providerStatus === undefined ? {} : { providerStatus }) },
      retryAfterMs,
      cause,
    ),
  /** The provider refused the request itself (4xx other than 408/429): retrying cannot help. */
  rejected: (provider: string, operation: string, providerStatus: number, body: string) =>
    new SocleError('outbound.rejected', `${provider} refused ${operation} with status ${providerStatus}`, {
      status: 502,
      // The first bytes of the provider's error, for the developer: providers do not echo secrets back.
      details: { provider, operation, providerStatus, providerMessage: body.slice(0, 500) },
    }),
  /** The circuit breaker is open: calls fail at once until `retryAfterMs` has passed. */
  circuitOpen: (provider: string, operation: string, retryAfterMs: number) =>
    withRetryAfter(
      'outbound.circuit_open',
      `${provider} is failing; calls are suspended for ${seconds(retryAfterMs)} s`,
      503,
      { provider, operation },
      retryAfterMs,
    ),
  /** The shared rate limit would make this call wait longer than its time allows. */
  rateLimited: (provider: string, operation: string, retryAfterMs: number) =>
    withRetryAfter(
      'outbound.rate_limited',
      `The rate limit of ${provider} allows ${operation} again in ${seconds(retryAfterMs)} s`,
      503,
      { provider, operation },
      retryAfterMs,
    ),
  /** Every slot of the concurrency cap is busy and its queue is full. */
  overloaded: (provider: string, operation: string, concurrency: number) =>
    withRetryAfter(
      'outbound.overloaded',
      `${provider} already has ${concurrency} calls in flight and a full queue`,
      503,
      { provider, operation, concurrency },
      1000,
    ),
  /** The provider's answer is not what was expected: invalid JSON, unexpected shape. */
  badResponse: (provider: string, operation: string, reason: string, cause?: unknown) =>
    new SocleError('outbound.bad_response', `${provider} answered ${operation} with ${reason}`, {
      status: 502,
      details: { provider, operation, reason },
      ...(cause === undefined ? {} : { cause }),
    }),
  /** The provider's answer is larger than the provider's `maxResponseBytes`. */
  responseTooLarge: (provider: string, operation: string, maxResponseBytes: number) =>
    new SocleError(
      'outbound.response_too_large',
      `${provider} answered ${operation} with more than ${maxResponseBytes} bytes`,
      { status: 502, details: { provider, operation, maxResponseBytes } },
    ),
  /** A webhook said to come from the provider whose signature does not hold (or is too old). */
  webhookSignatureInvalid: (provider: string, reason: string) =>
    new SocleError('outbound.webhook_signature_invalid', `The ${provider} webhook is refused: ${reason}`, {
      status: 400,
      details: { provider, reason },
    }),
  /** The provider takes each organization's own key, and this one stored none. */
  credentialMissing: (provider: string) =>
    new SocleError(
      'outbound.credential_missing',
      `This organization has stored no key for ${provider}: an admin sets it with PUT /org/outbound/credentials/${provider}`,
      { status: 409, details: { provider } },
    ),
  /** The organization has no stored key for this provider. */
  credentialNotFound: (provider: string) =>
    new SocleError('outbound.credential_not_found', `No key is stored for ${provider}`, {
      status: 404,
      details: { provider },
    }),
  /** A provider declared twice with different settings, or a client asked for an undeclared one. */
  invalidProvider: (provider: string, reason: string) =>
    new SocleError('outbound.invalid_provider', `Provider ${provider}: ${reason}`, {
      details: { provider },
    }),
};
