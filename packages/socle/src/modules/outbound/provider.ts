import { outboundErrors } from './outbound.errors.js';

/** Retries of one call. Only safe calls are retried: see {@link ProviderOptions.retry}. */
export interface RetryOptions {
  /** Attempts in all, the first included; default 3. 1 disables retries. */
  readonly maxAttempts?: number;
  /** First backoff; doubled on every retry, with full jitter; default 200 ms. */
  readonly initialDelayMs?: number;
  /** Longest backoff (a `Retry-After` may ask more, within the call's timeout); default 5 s. */
  readonly maxDelayMs?: number;
}

/** When the circuit opens: a failure rate over a sliding window, once enough calls were seen. */
export interface BreakerOptions {
  /** Share of failed attempts (0–1) that opens the circuit; default 0.5. */
  readonly failureRate?: number;
  /** The sliding window the rate is measured over; default 30 s. */
  readonly windowMs?: number;
  /** Attempts in the window below which the circuit stays closed whatever the rate; default 10. */
  readonly minimumCalls?: number;
  /** How long the circuit stays open before one probe call is let through (half-open); default 30 s. */
  readonly halfOpenAfterMs?: number;
}

/** A rate limit shared by every node (GCRA in Redis when `REDIS_URL` is set, in process otherwise). */
export interface ProviderRateLimit {
  /** Requests allowed per `windowMs` (and the burst). */
  readonly limit: number;
  readonly windowMs: number;
}

/** How a call is authenticated. The secret comes from configuration; it is never logged. */
export type ProviderAuth =
  | { readonly type: 'bearer'; readonly token: string }
  | { readonly type: 'header'; readonly name: string; readonly value: string }
  | {
      /** OAuth2 client credentials (Zoom Server-to-Server OAuth): token fetched, cached, shared. */
      readonly type: 'client-credentials';
      readonly tokenUrl: string;
      readonly clientId: string;
      readonly clientSecret: string;
      /** Extra form fields of the token request (`grant_type=account_credentials`, `account_id`). */
      readonly form?: Readonly<Record<string, string>>;
      /** Renew the token this long before it expires; default 60 s. */
      readonly refreshBeforeMs?: number;
    }
  | {
      /**
       * OAuth2 JWT bearer grant (RFC 7523) of a service account (Google APIs): a JWT signed RS256
       * with the account's private key is exchanged at `tokenUrl`; the token is cached and shared.
       */
      readonly type: 'service-account';
      readonly tokenUrl: string;
      /** The account's email (`client_email` of its JSON key): the JWT's issuer. */
      readonly clientEmail: string;
      /** The account's private key, PKCS#8 PEM (`private_key` of its JSON key). */
      readonly privateKey: string;
      /** Space-separated scopes (`https://www.googleapis.com/auth/androidpublisher`). */
      readonly scope: string;
      readonly refreshBeforeMs?: number;
    }
  | {
      /**
       * The key the calling organization stored for this provider (sealed at rest; see the
       * `outbound_credentials` module), sent as `<header>: <prefix><key>` on the calls made for it.
       */
      readonly type: 'tenant-key';
      /** Default `authorization`. */
      readonly header?: string;
      /** Default `Bearer ` (with `authorization`), none otherwise. */
      readonly prefix?: string;
      /** Used when the organization stored no key (the app's own account); without it such calls fail. */
      readonly otherwise?: Exclude<ProviderAuth, { readonly type: 'tenant-key' }>;
    };

/** The declaration of a provider: where it is and how calls to it behave. */
export interface ProviderOptions {
  /** `https://api.zoom.us/v2`: request paths are appended to it. */
  readonly baseUrl: string;
  /**
   * `attemptMs`: one attempt (connect, headers and body); `totalMs`: the whole call, backoffs and
   * retries included. A number sets both. Default 10 s per attempt, 30 s in all.
   */
  readonly timeoutMs?: number | { readonly attemptMs?: number; readonly totalMs?: number };
  /**
   * Retries with exponential backoff and full jitter, **only** for calls that are safe to repeat:
   * GET, HEAD, OPTIONS, PUT, DELETE, or any call given an `idempotencyKey`. A 429 or 503 with
   * `Retry-After` waits what the provider asked (when the call's time allows). Retried: connection
   * errors, timeouts, 408, 429 and 5xx. `false`: never.
   */
  readonly retry?: RetryOptions | false;
  /** Circuit breaker over attempts that failed (5xx, timeouts, connection errors); `false`: none. */
  readonly breaker?: BreakerOptions | false;
  readonly rateLimit?: ProviderRateLimit;
  /** Calls in flight at once on this node (bulkhead); more wait in a queue of the same size. */
  readonly concurrency?: number;
  /** Providers speaking the same API, tried in order when this one fails for a reason of its own. */
  readonly fallback?: readonly ProviderDefinition[];
  readonly auth?: ProviderAuth;
  /** Header carrying `idempotencyKey`; default `Idempotency-Key`. */
  readonly idempotencyHeader?: string;
  /** Largest answer read into memory; default 10 MiB. */
  readonly maxResponseBytes?: number;
  /** Headers sent with every call (a version header, a user agent). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A provider as `defineProvider` checked it, every default applied. */
export interface ProviderDefinition {
  readonly name: string;
  readonly baseUrl: URL;
  readonly attemptTimeoutMs: number;
  readonly totalTimeoutMs: number;
  readonly retry: Required<RetryOptions>;
  readonly breaker: Required<BreakerOptions> | undefined;
  readonly rateLimit: ProviderRateLimit | undefined;
  readonly concurrency: number | undefined;
  readonly fallback: readonly ProviderDefinition[];
  readonly auth: ProviderAuth | undefined;
  readonly idempotencyHeader: string;
  readonly maxResponseBytes: number;
  readonly headers: Readonly<Record<string, string>>;
}

const PROVIDER_NAME = /^[a-z][a-z0-9_-]{0,62}$/;

const positive = (provider: string, field: string, value: number | undefined, fallback: number) => {
  const result = value ?? fallback;
  if (!Number.isFinite(result) || result <= 0)
    throw outboundErrors.invalidProvider(provider, `${field} must be a positive number, got ${value}`);
  return result;
};

const positiveInteger = (provider: string, field: string, value: number | undefined, fallback: number) => {
  const result = positive(provider, field, value, fallback);
  if (!Number.isSafeInteger(result))
    throw outboundErrors.invalidProvider(provider, `${field} must be a whole number, got ${value}`);
  return result;
};

/**
 * Declares an outbound provider: one place says where it is and how calls to it retry, time out,
 * break, queue and fall back. Checked here, so a bad declaration fails at start. Get its client
 * from the outbound module (`outbound.client(definition)`): every call site then shares one
 * breaker, one rate limit, one concurrency cap and one cached OAuth token per node.
 *
 * @example
 * export const zoom = defineProvider('zoom', {
 *   baseUrl: 'https://api.zoom.us/v2',
 *   timeoutMs: { attemptMs: 2_000, totalMs: 5_000 },
 *   retry: { maxAttempts: 3 },
 *   breaker: { failureRate: 0.5, windowMs: 30_000, halfOpenAfterMs: 15_000 },
 *   rateLimit: { limit: 30, windowMs: 1_000 },
 *   concurrency: 20,
 *   fallback: [jitsi],
 *   auth: { type: 'client-credentials', tokenUrl: 'https://zoom.us/oauth/token', clientId, clientSecret },
 * });
 */
export function defineProvider(name: string, options: ProviderOptions): ProviderDefinition {
  if (!PROVIDER_NAME.test(name))
    throw outboundErrors.invalidProvider(name, 'names are lower case letters, digits, _ or -');
  let baseUrl: URL;
  try {
    baseUrl = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
  } catch {
    throw outboundErrors.invalidProvider(name, `baseUrl ${JSON.stringify(options.baseUrl)} is not a URL`);
  }
  if (baseUrl.protocol !== 'http:' && baseUrl.protocol !== 'https:')
    throw outboundErrors.invalidProvider(name, 'baseUrl must be http: or https:');
  if (baseUrl.username !== '' || baseUrl.password !== '' || baseUrl.search !== '')
    throw outboundErrors.invalidProvider(name, 'baseUrl must carry no credentials or query: use auth');
  const timeouts =
    typeof options.timeoutMs === 'number'
      ? { attemptMs: options.timeoutMs, totalMs: options.timeoutMs }
      : (options.timeoutMs ?? {});
  const attemptTimeoutMs = positive(name, 'timeoutMs.attemptMs', timeouts.attemptMs, 10_000);
  const totalTimeoutMs = positive(
    name,
    'timeoutMs.totalMs',
    timeouts.totalMs,
    Math.max(30_000, attemptTimeoutMs),
  );
  if (totalTimeoutMs < attemptTimeoutMs)
    throw outboundErrors.invalidProvider(name, 'timeoutMs.totalMs must be at least timeoutMs.attemptMs');
  const retry = options.retry === false ? { maxAttempts: 1 } : (options.retry ?? {});
  const breaker = options.breaker === false ? undefined : (options.breaker ?? {});
  const failureRate = breaker?.failureRate ?? 0.5;
  if (!(failureRate > 0 && failureRate <= 1))
    throw outboundErrors.invalidProvider(name, `breaker.failureRate must be in (0, 1], got ${failureRate}`);
  if (options.rateLimit !== undefined) {
    positiveInteger(name, 'rateLimit.limit', options.rateLimit.limit, 1);
    positive(name, 'rateLimit.windowMs', options.rateLimit.windowMs, 1);
  }
  const fallback = options.fallback ?? [];
  if (fallback.some((other) => other.name === name))
    throw outboundErrors.invalidProvider(name, 'a provider cannot fall back to itself');
  if (
    (options.auth?.type === 'client-credentials' || options.auth?.type === 'service-account') &&
    !URL.canParse(options.auth.tokenUrl)
  )
    throw outboundErrors.invalidProvider(name, 'auth.tokenUrl is not a URL');
  return Object.freeze({
    name,
    baseUrl,
    attemptTimeoutMs,
    totalTimeoutMs,
    retry: {
      maxAttempts: positiveInteger(name, 'retry.maxAttempts', retry.maxAttempts, 3),
      initialDelayMs: positive(name, 'retry.initialDelayMs', retry.initialDelayMs, 200),
      maxDelayMs: positive(name, 'retry.maxDelayMs', retry.maxDelayMs, 5_000),
    },
    breaker:
      breaker === undefined
        ? undefined
        : {
            failureRate,
            windowMs: positive(name, 'breaker.windowMs', breaker.windowMs, 30_000),
            minimumCalls: positiveInteger(name, 'breaker.minimumCalls', breaker.minimumCalls, 10),
            halfOpenAfterMs: positive(name, 'breaker.halfOpenAfterMs', breaker.halfOpenAfterMs, 30_000),
          },
    rateLimit: options.rateLimit,
    concurrency:
      options.concurrency === undefined
        ? undefined
        : positiveInteger(name, 'concurrency', options.concurrency, 1),
    fallback: [...fallback],
    auth: options.auth,
    idempotencyHeader: (options.idempotencyHeader ?? 'Idempotency-Key').toLowerCase(),
    maxResponseBytes: positiveInteger(name, 'maxResponseBytes', options.maxResponseBytes, 10 * 1024 * 1024),
    headers: Object.fromEntries(
      Object.entries(options.headers ?? {}).map(([key, value]) => [key.toLowerCase(), value]),
    ),
  });
}
