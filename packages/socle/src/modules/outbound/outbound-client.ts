import type { Readable } from 'node:stream';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  bulkhead,
  CircuitState,
  circuitBreaker,
  DelegateBackoff,
  handleWhen,
  retry,
  SamplingBreaker,
  TaskCancelledError,
} from 'cockatiel';
import type { Dispatcher, FormData } from 'undici';
import {
  type Clock,
  isSocleError,
  type Logger,
  postponeJob,
  type RateLimiter,
  type SocleError,
} from '../../kernel/index.js';
import { AttemptSignal } from './attempt-signal.js';
import { operationOfPath } from './operation-name.js';
import { outboundErrors } from './outbound.errors.js';
import type { CallSeries, OutboundMetrics } from './outbound-metrics.js';
import type { ProviderDefinition } from './provider.js';
import { type AuthHeaders, createAuthHeaders } from './provider-auth.js';

/** The signal of a call nobody can cancel and that has no timer of its own. */
const NEVER_ABORTED = new AbortController().signal;

/** The attempts in flight that a caller's signal cancels, and the one listener doing it. */
interface Followers {
  readonly attempts: Set<AttemptSignal>;
  readonly onAbort: () => void;
}
const followersOf = new WeakMap<AbortSignal, Followers>();

/**
 * Aborts `attempt` when `signal` aborts, until the returned function is called. A signal shared by
 * many calls (a job's, a worker's, or the "never" signal of calls without one) gets **one**
 * `abort` listener for all of their attempts, removed with the last: a listener per attempt put as
 * many listeners on it as calls in flight (Node warns past 10: MaxListenersExceededWarning).
 */
function abortWith(signal: AbortSignal, attempt: AttemptSignal): () => void {
  if (signal === NEVER_ABORTED) return noopRelease;
  let followers = followersOf.get(signal);
  if (followers === undefined) {
    const attempts = new Set<AttemptSignal>();
    const onAbort = () => {
      followersOf.delete(signal);
      for (const controller of attempts) controller.abort();
    };
    followers = { attempts, onAbort };
    followersOf.set(signal, followers);
    signal.addEventListener('abort', onAbort, { once: true });
  }
  const { attempts, onAbort } = followers;
  attempts.add(attempt);
  return () => {
    if (!attempts.delete(attempt) || attempts.size > 0) return;
    signal.removeEventListener('abort', onAbort);
    if (followersOf.get(signal)?.attempts === attempts) followersOf.delete(signal);
  };
}
const noopRelease = () => undefined;

const abortAttempt = (attempt: AttemptSignal) => attempt.abort();

/** Methods a repeat of which has the effect of one call (RFC 9110 §9.2.2). */
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

export type OutboundMethod = 'GET' | 'HEAD' | 'OPTIONS' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One call to a provider. */
export interface OutboundRequest {
  readonly method: OutboundMethod;
  /** Relative to the provider's `baseUrl`: `meetings/123` (a leading `/` is dropped). */
  readonly path: string;
  /**
   * Names the call in metrics and logs (`meetings.create`); default the method. Keep it to a few
   * values per provider: it is a metric label.
   */
  readonly operation?: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as JSON (`content-type: application/json`). */
  readonly json?: unknown;
  /**
   * A raw body. A stream is sent once: a call with a stream body is never retried nor sent to a
   * fallback. A function opening the body anew (a file read from disk) is called once per attempt:
   * such a call is retried and falls back like any other, and the bytes are never held in memory.
   */
  readonly body?: string | Uint8Array | Readable | FormData | (() => Readable);
  /**
   * The call has no effect that a repeat would duplicate (a transcription, a search sent as a
   * POST): it is retried like an idempotent method, without an idempotency key.
   */
  readonly repeatable?: boolean;
  /**
   * Makes a non-idempotent call (POST, PATCH) safe to retry: sent in the provider's idempotency
   * header. From a job, derive it from the job (`jobIdempotencyKey(job, 'step')`) so every attempt
   * of the job sends the same key.
   */
  readonly idempotencyKey?: string;
  /** Cancels the call (a client that went away, a job's signal). */
  readonly signal?: AbortSignal;
  /**
   * Returns the provider's refusals (4xx other than 408/429) as responses instead of throwing
   * `outbound.rejected`: for an SDK that reads its provider's error bodies (see `fetch`).
   */
  readonly refusalsAsResponses?: boolean;
}

/** What the provider answered: a success (2xx/3xx), read in full. */
export interface OutboundResponse {
  /** The provider that answered: this one, or a fallback. */
  readonly provider: string;
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
  text(): string;
  /**
   * The body parsed as JSON, checked by `validator` when given (a TypeBox schema compiled with
   * `Compile` from `typebox/compile`): invalid JSON or another shape throws `outbound.bad_response`
   * naming the provider.
   */
  json<T = unknown>(validator?: JsonValidator): T;
}

/** What checks a JSON answer's shape: `Compile(schema)` from `typebox/compile` is one. */
export interface JsonValidator {
  Check(value: unknown): boolean;
}

export type CircuitStateName = 'closed' | 'open' | 'half-open' | 'isolated';

/** A declared provider's client: one per provider and node, shared by every call site. */
export interface OutboundClient {
  readonly provider: ProviderDefinition;
  /** Calls the provider under its policies; falls back in order when it fails for a reason of its own. */
  request(request: OutboundRequest): Promise<OutboundResponse>;
  /** The circuit breaker's state, for an operator's view (it never affects `/readyz`). */
  circuitState(): CircuitStateName;
  /**
   * A `fetch` for an official SDK (`new OpenAI({ baseURL: provider's baseUrl, fetch: client.fetch,
   * maxRetries: 0 })`): its requests go through this provider's policies. URLs must be under the
   * provider's `baseUrl`. Refusals come back as responses (the SDK makes its own errors of them);
   * what the policies give up on is thrown as the `outbound.*` error (the SDK's connection error
   * carries it as its cause). Turn the SDK's own retries off: the client's retry them.
   */
  fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
}

/** What every client of the service shares. */
export interface ClientDependencies {
  readonly dispatcher: Dispatcher;
  readonly rateLimiter: RateLimiter;
  readonly metrics: OutboundMetrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** The id of the inbound request being served, if any: logged with each failed attempt. */
  readonly requestId: () => string | undefined;
  /** The client of a fallback provider (the same per node). */
  readonly clientOf: (provider: ProviderDefinition) => ProviderClient;
  /** The calling organization's stored key for a provider (`tenant-key` auth). */
  readonly tenantKey: (provider: string) => Promise<string | undefined>;
}

/** A client as the service keeps it: with the call that skips the fallbacks (a fallback's own). */
export interface ProviderClient extends OutboundClient {
  callAlone(request: OutboundRequest, operation: string): Promise<OutboundResponse>;
}

/** One call in progress: what decides whether its failures may be retried. */
class CallState {
  attempt = 0;
  /** Sent once: a stream cannot be replayed. */
  readonly safe: boolean;

  constructor(
    readonly request: OutboundRequest,
    readonly operation: string,
    /** `performance.now()` past which the call has failed. */
    readonly deadline: number,
    /** Cancels the call: the caller's signal (with the total time, under a concurrency cap). */
    readonly signal: AbortSignal,
  ) {
    this.safe =
      !isStream(request.body) &&
      (IDEMPOTENT_METHODS.has(request.method) ||
        request.idempotencyKey !== undefined ||
        request.repeatable === true);
  }

  /** Marks `failure` as this call's (the shared retry policy asks it whether to retry). */
  claim(failure: AttemptFailure): AttemptFailure {
    failure.call = this;
    return failure;
  }

  /**
   * Transient, and safe to repeat (idempotent method or key; or refused before being acted on, a
   * 401 with a stale token), and its `Retry-After` fits in the time left.
   */
  retryable(failure: AttemptFailure): boolean {
    return (
      failure.transient &&
      (this.safe || failure.retryAfterMs === 0) &&
      performance.now() + (failure.retryAfterMs ?? 0) < this.deadline
    );
  }
}

/** An attempt's answer, read in full. */
interface AttemptResult {
  readonly status: number;
  readonly headers: Dispatcher.ResponseData['headers'];
  readonly data: Buffer;
}

const isStream = (body: OutboundRequest['body']) =>
  body !== undefined && typeof body === 'object' && 'pipe' in body;

/** Why one attempt failed, and what the policies do about it. */
class AttemptFailure extends Error {
  /** The call it belongs to, once claimed. */
  call: CallState | undefined;

  constructor(
    readonly error: SocleError,
    /** Worth another attempt (connection error, timeout, 408/429/5xx). */
    readonly transient: boolean,
    /** Counts as a failure of the provider for the breaker (not a 429, nor a refusal). */
    readonly providerFault: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(error.message);
  }
}

/** Outcomes that say the provider itself is failing: a fallback may do better. */
const FALLBACK_CODES = new Set([
  'outbound.unavailable',
  'outbound.timeout',
  'outbound.circuit_open',
  'outbound.rate_limited',
  'outbound.overloaded',
]);

/**
 * True when `error` says the provider itself failed (unreachable, 5xx, timeout, open circuit,
 * throttled, overloaded), so another provider may do better; false for refusals and bad answers.
 */
export function isProviderFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && FALLBACK_CODES.has(code);
}

/** `Retry-After` in milliseconds (seconds or an HTTP date), if any. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || text === '') return undefined;
  if (/^\d+$/.test(text.trim())) return Number(text.trim()) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const CIRCUIT_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/** Reads `body` whole, refusing more than `limit` bytes. */
function readLimited(
  body: Dispatcher.ResponseData['body'],
  limit: number,
  contentLength: string | string[] | undefined,
): Promise<Buffer | undefined> {
  const announced = typeof contentLength === 'string' ? Number(contentLength) : Number.NaN;
  if (Number.isSafeInteger(announced) && announced <= limit)
    // Announced within the limit: undici reads it in one go, as a bare `body.json()` does; undici
    // never delivers more than the announced length.
    return body.bytes().then((bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  // Chunked or too long: counted as it arrives. Listeners, not `for await`: the async iterator
  // costs a promise per chunk and a stream-finished watcher per answer (measured on the bench's
  // chunked answers: see docs/outbound.md#benchmark).
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (!settled) {
        settled = true;
        body.destroy();
        resolve(undefined);
      }
    });
    body.on('end', () => {
      settled = true;
      resolve(Buffer.concat(chunks, size));
    });
    body.on('error', (error) => {
      settled = true;
      reject(error);
    });
    body.on('close', () => {
      // The body stopped without an end or an error (the error is made only then: its stack costs).
      if (!settled)
        reject(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
  });
}

/**
 * The client of one provider: `undici` for the wire, `cockatiel` for the policies. A call runs
 * retry → circuit breaker → shared rate limit → concurrency cap → per-attempt timeout → request,
 * all under the call's total timeout; then, if it failed for a reason of the provider's, the
 * fallback providers in order.
 */
export function createOutboundClient(
  provider: ProviderDefinition,
  dependencies: ClientDependencies,
): ProviderClient {
  const { dispatcher, rateLimiter, metrics, clock } = dependencies;
  const log = dependencies.log.child({ provider: provider.name });
  const auth: AuthHeaders = createAuthHeaders(
    provider,
    provider.auth,
    dispatcher,
    clock,
    dependencies.tenantKey,
  );
  const origin = provider.baseUrl.origin;
  const basePath = provider.baseUrl.pathname;
  /** The headers of a call that adds none (no headers, key nor JSON), when the auth's never change. */
  const fixedHeaders =
    auth.fixed === undefined ? undefined : Object.freeze({ ...provider.headers, ...auth.fixed });

  // Circuit breaker: opens when the failure rate over the window passes the threshold, once the
  // window saw `minimumCalls`; after `halfOpenAfterMs` one probe decides whether it closes.
  let openedAt = 0;
  const breaker =
    provider.breaker === undefined
      ? undefined
      : circuitBreaker(
          handleWhen((error) => error instanceof AttemptFailure && error.providerFault),
          {
            halfOpenAfter: provider.breaker.halfOpenAfterMs,
            breaker: new SamplingBreaker({
              threshold: provider.breaker.failureRate,
              duration: provider.breaker.windowMs,
              minimumRps: provider.breaker.minimumCalls / (provider.breaker.windowMs / 1000),
            }),
          },
        );
  if (breaker !== undefined) {
    const breakerWindow = provider.breaker;
    breaker.onBreak(() => {
      // cockatiel stamps the opening with Date.now() in the same tick.
      openedAt = Date.now();
      log.warn(
        { halfOpenAfterMs: breakerWindow?.halfOpenAfterMs },
        'Outbound circuit opened: calls fail fast',
      );
    });
    breaker.onHalfOpen(() => log.info('Outbound circuit half-open: one probe call goes through'));
    breaker.onReset(() => log.info('Outbound circuit closed'));
  }
  const circuitState = (): CircuitStateName =>
    breaker === undefined ? 'closed' : CIRCUIT_NAMES[breaker.state];
  metrics.trackCircuit(provider.name, circuitState);

  const concurrencyCap =
    provider.concurrency === undefined ? undefined : bulkhead(provider.concurrency, provider.concurrency);
  /** The call's deadline or the attempt's own time stopped it: `outbound.timeout` saying which. */
  const timedOut = (call: CallState) =>
    call.claim(
      new AttemptFailure(
        outboundErrors.timeout(
          provider.name,
          call.operation,
          performance.now() >= call.deadline - 1 ? provider.totalTimeoutMs : provider.attemptTimeoutMs,
        ),
        true,
        true,
      ),
    );

  /**
   * One attempt under its own timeout: a signal of its own, aborted by one timer (stopping at the
   * earlier of the attempt's limit and the call's deadline) or by the call's signal. undici and
   * the body reader honour it, so a timer and one listener do what cockatiel's TimeoutPolicy did
   * with a derived controller, two raced promises and three listeners per attempt (measured: see
   * docs/outbound.md#benchmark).
   */
  const attemptWithin = async (call: CallState): Promise<AttemptResult> => {
    const callSignal = call.signal;
    if (callSignal.aborted) throw new TaskCancelledError();
    const attempt = new AttemptSignal();
    const timer = setTimeout(
      abortAttempt,
      Math.max(0, Math.min(provider.attemptTimeoutMs, call.deadline - performance.now())),
      attempt,
    );
    const release = abortWith(callSignal, attempt);
    try {
      return await attemptOnce(call.request, call.operation, attempt);
    } catch (error) {
      if (error instanceof AttemptFailure) throw call.claim(error);
      if (attempt.aborted && !callSignal.aborted) throw timedOut(call);
      throw error;
    } finally {
      clearTimeout(timer);
      release();
    }
  };

  /** Waits for the shared rate limit, at most until `deadline`; refuses when the wait is longer. */
  const takeRateLimit = async (operation: string, deadline: number) => {
    const rule = provider.rateLimit;
    if (rule === undefined) return;
    let waitedMs = 0;
    try {
      for (;;) {
        const result = await rateLimiter.consume(`outbound:${provider.name}`, rule);
        if (result.allowed) return;
        if (performance.now() + result.retryAfterMs > deadline)
          throw new AttemptFailure(
            outboundErrors.rateLimited(provider.name, operation, result.retryAfterMs),
            false,
            false,
          );
        await new Promise((resolve) => setTimeout(resolve, result.retryAfterMs));
        waitedMs += result.retryAfterMs;
      }
    } finally {
      if (waitedMs > 0) metrics.rateLimitWait(provider.name, waitedMs / 1000);
    }
  };

  const urlPath = (request: OutboundRequest) => {
    const path = basePath + (request.path.startsWith('/') ? request.path.slice(1) : request.path);
    if (request.query === undefined) return path;
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(request.query))
      if (value !== undefined) query.set(key, String(value));
    const search = query.toString();
    return search === '' ? path : `${path}?${search}`;
  };

  /** One HTTP exchange; any failure is an AttemptFailure saying what the policies should do. */
  const attemptOnce = async (
    request: OutboundRequest,
    operation: string,
    signal: AttemptSignal,
  ): Promise<AttemptResult> => {
    let headers: Readonly<Record<string, string>>;
    let json: string | undefined;
    if (
      fixedHeaders !== undefined &&
      request.headers === undefined &&
      request.idempotencyKey === undefined &&
      request.json === undefined
    )
      // Nothing of the call's own: the provider's headers, merged once (undici only reads them).
      headers = fixedHeaders;
    else {
      let authHeaders: Readonly<Record<string, string>>;
      try {
        const pending = auth.headers(signal);
        // Static headers (none, bearer, header) are not awaited: a call spends no extra tick on them.
        authHeaders = pending instanceof Promise ? await pending : pending;
      } catch (error) {
        const socleError = error as SocleError;
        if (socleError.code === 'outbound.credential_missing')
          throw new AttemptFailure(socleError, false, false);
        throw new AttemptFailure(socleError, socleError.code !== 'outbound.rejected', true);
      }
      const merged: Record<string, string> = { ...provider.headers, ...request.headers, ...authHeaders };
      if (request.idempotencyKey !== undefined) merged[provider.idempotencyHeader] = request.idempotencyKey;
      if (request.json !== undefined) {
        json = JSON.stringify(request.json);
        merged['content-type'] = 'application/json';
      }
      headers = merged;
    }
    const body = json ?? (typeof request.body === 'function' ? request.body() : request.body);
    let response: Dispatcher.ResponseData;
    try {
      response = await dispatcher.request({
        origin,
        path: urlPath(request),
        method: request.method,
        headers,
        body: body as Dispatcher.DispatchOptions['body'],
        signal: signal.forDispatcher(),
      });
    } catch (error) {
      if (signal.aborted) throw error; // the timeout policy or the caller: handled above
      const code = (error as { code?: string }).code ?? 'error';
      throw new AttemptFailure(
        outboundErrors.unavailable(
          provider.name,
          operation,
          `connection failed (${code})`,
          undefined,
          undefined,
          error,
        ),
        true,
        true,
      );
    }
    const status = response.statusCode;
    if (
      status < 400 ||
      (request.refusalsAsResponses === true && status !== 408 && status !== 429 && status < 500)
    ) {
      const data = await readLimited(
        response.body,
        provider.maxResponseBytes,
        response.headers['content-length'],
      );
      if (data === undefined)
        throw new AttemptFailure(
          outboundErrors.responseTooLarge(provider.name, operation, provider.maxResponseBytes),
          false,
          false,
        );
      return { status, headers: response.headers, data };
    }
    // An error answer: only its first bytes matter.
    const data =
      (await readLimited(response.body, 64 * 1024, response.headers['content-length']).catch(
        () => undefined,
      )) ?? Buffer.alloc(0);
    if (status === 401 && auth.invalidate()) {
      // A cached token the provider no longer takes: the request was refused, so sending it again is safe.
      throw new AttemptFailure(
        outboundErrors.rejected(provider.name, operation, status, data.toString('utf8')),
        true,
        false,
        0,
      );
    }
    if (status === 408 || status === 429 || status >= 500) {
      const retryAfterMs =
        status === 429 || status === 503
          ? parseRetryAfter(response.headers['retry-after'], clock.now().getTime())
          : undefined;
      throw new AttemptFailure(
        outboundErrors.unavailable(provider.name, operation, `status ${status}`, status, retryAfterMs),
        true,
        status !== 429,
        retryAfterMs,
      );
    }
    throw new AttemptFailure(
      outboundErrors.rejected(provider.name, operation, status, data.toString('utf8')),
      false,
      false,
    );
  };

  /**
   * The retry policy, one per client: whether a failure is retried was decided when it was
   * thrown (it depends on the call: its method, key and deadline), and travels on it.
   */
  const retryPolicy = retry(
    handleWhen((error) => error instanceof AttemptFailure && error.call?.retryable(error) === true),
    {
      maxAttempts: provider.retry.maxAttempts - 1,
      backoff: new DelegateBackoff((context) => {
        const failure = (context.result as { error?: unknown }).error as AttemptFailure;
        const exponential = Math.min(
          provider.retry.maxDelayMs,
          provider.retry.initialDelayMs * 2 ** (context.attempt - 1),
        );
        const delay = failure.retryAfterMs ?? Math.random() * exponential;
        return Math.max(0, Math.min(delay, (failure.call?.deadline ?? 0) - performance.now()));
      }),
    },
  );
  retryPolicy.onRetry((event) => {
    const failure = 'error' in event ? (event.error as AttemptFailure) : undefined;
    const call = failure?.call;
    if (call !== undefined)
      logAttempt(call.request, call.operation, call.attempt, failure, Math.round(event.delay));
  });

  /**
   * Each (outcome, operation)'s metric series, looked up once: a call then costs two map reads of
   * strings it already has (no label object, no key built).
   */
  const seriesByOutcome = new Map<string, Map<string, CallSeries>>();
  const observeCall = (operation: string, outcome: string, started: number) => {
    let byOperation = seriesByOutcome.get(outcome);
    if (byOperation === undefined) {
      byOperation = new Map();
      seriesByOutcome.set(outcome, byOperation);
    }
    let series = byOperation.get(operation);
    if (series === undefined) {
      series = metrics.callSeries(provider.name, operation, outcome);
      byOperation.set(operation, series);
    }
    series.observe((performance.now() - started) / 1000);
  };

  /** Rate limit, concurrency cap, then the attempt: what the breaker runs. */
  const limited = async (call: CallState): Promise<AttemptResult> => {
    if (provider.rateLimit !== undefined)
      try {
        await takeRateLimit(call.operation, call.deadline);
      } catch (error) {
        throw error instanceof AttemptFailure ? call.claim(error) : error;
      }
    if (concurrencyCap === undefined) return attemptWithin(call);
    try {
      return await concurrencyCap.execute(() => attemptWithin(call));
    } catch (error) {
      if (error instanceof TaskCancelledError && !call.signal.aborted) throw timedOut(call);
      throw error;
    }
  };
  /** Without a rate limit nor a cap, the attempt itself: no async layer that only passes it on. */
  const guarded = provider.rateLimit === undefined && concurrencyCap === undefined ? attemptWithin : limited;

  /** One call on this provider alone (no fallback). */
  const callAlone = async (request: OutboundRequest, operation: string): Promise<OutboundResponse> => {
    const started = performance.now();
    // Open and not yet due for a probe: refused before any timer or signal is made for the call.
    if (
      breaker?.state === CircuitState.Open &&
      Date.now() - openedAt < (provider.breaker?.halfOpenAfterMs ?? 0)
    ) {
      const refused = circuitOpenError(operation);
      observeCall(operation, 'circuit_open', started);
      throw refused;
    }
    // The total time is enforced where a call spends it: each attempt's timer stops at the
    // deadline, backoffs and rate-limit waits are cut to it. Only a wait in the concurrency queue
    // needs a timer of its own (a timeout signal per call costs as much as an attempt's timer).
    const signal =
      provider.concurrency === undefined
        ? (request.signal ?? NEVER_ABORTED)
        : request.signal === undefined
          ? AbortSignal.timeout(provider.totalTimeoutMs)
          : AbortSignal.any([request.signal, AbortSignal.timeout(provider.totalTimeoutMs)]);
    const call = new CallState(request, operation, started + provider.totalTimeoutMs, signal);
    const run = () => guarded(call);
    const attempt = () => {
      call.attempt += 1;
      return breaker === undefined ? run() : breaker.execute(run, signal);
    };
    try {
      let result: AttemptResult;
      try {
        // Most calls succeed at once: the first attempt runs outside the retry policy, which only
        // a failure enters (cockatiel's execution costs a few objects and promises per call).
        result = await attempt();
      } catch (first) {
        // The policy then decides as if it had run the first attempt: its first execution
        // replays that failure (retried or given up on, waited for, logged as before).
        result = await retryPolicy.execute(
          ({ attempt: retries }) => (retries === 0 ? Promise.reject(first) : attempt()),
          signal,
        );
      }
      observeCall(operation, 'ok', started);
      return new ProviderAnswer(provider.name, operation, result.status, result.headers, result.data);
    } catch (error) {
      const final = finalError(error, operation, signal, request);
      const outcome = isSocleError(final) ? final.code.slice('outbound.'.length) : 'cancelled';
      // A call refused by an open circuit is not logged: there would be one line per call.
      if (outcome !== 'circuit_open') logAttempt(request, operation, call.attempt, error, undefined);
      observeCall(operation, outcome, started);
      throw final;
    }
  };

  /** `outbound.circuit_open`, postponing a job until the probe may go (one error made, no cockatiel one). */
  const circuitOpenError = (operation: string) => {
    const waitMs = Math.max(0, openedAt + (provider.breaker?.halfOpenAfterMs ?? 0) - Date.now());
    return postponeJob(outboundErrors.circuitOpen(provider.name, operation, waitMs), waitMs);
  };

  /** The error the caller sees; what a job should do with it travels on it (`postponeJob`). */
  const finalError = (
    error: unknown,
    operation: string,
    signal: AbortSignal | undefined,
    request: OutboundRequest,
  ): Error => {
    if (error instanceof AttemptFailure) {
      if (error.error.code === 'outbound.rate_limited')
        return postponeJob(error.error, Number(error.error.details.retryAfterSeconds) * 1000);
      return error.error;
    }
    if (error instanceof BrokenCircuitError) return circuitOpenError(operation);
    if (error instanceof BulkheadRejectedError)
      return outboundErrors.overloaded(provider.name, operation, provider.concurrency ?? 0);
    if (signal?.aborted === true && request.signal?.aborted !== true)
      return outboundErrors.timeout(provider.name, operation, provider.totalTimeoutMs, error);
    return error instanceof Error ? error : new Error(String(error));
  };

  /** One line per failed attempt: never a header, a body or a query string (they carry secrets). */
  const logAttempt = (
    request: OutboundRequest,
    operation: string,
    attempt: number,
    error: unknown,
    retryInMs: number | undefined,
  ) => {
    const failure = error instanceof AttemptFailure ? error.error : undefined;
    const line = {
      requestId: dependencies.requestId(),
      operation,
      method: request.method,
      path: request.path.split('?')[0],
      attempt,
      code: failure?.code ?? (error instanceof Error ? error.name : 'error'),
      ...(failure?.details.providerStatus === undefined
        ? {}
        : { providerStatus: failure.details.providerStatus }),
      ...(retryInMs === undefined ? {} : { retryInMs }),
    };
    log.warn(line, retryInMs === undefined ? 'Outbound call failed' : 'Outbound attempt failed; retrying');
  };

  const fetchThrough = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    if (typeof input === 'object' && 'method' in input && !(input instanceof URL))
      throw new TypeError('outbound fetch takes a URL and init, not a Request');
    const href = String(input);
    if (!href.startsWith(provider.baseUrl.href))
      throw outboundErrors.invalidProvider(provider.name, 'fetch of a URL outside its baseUrl');
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => {
      headers[key] = value;
    });
    delete headers['content-length'];
    const method = (init.method ?? 'GET').toUpperCase() as OutboundMethod;
    const path = href.slice(provider.baseUrl.href.length);
    const answer = await client.request({
      method,
      path,
      // An SDK names no operation: its method and path, ids taken out, name it in metrics and logs.
      operation: operationOfPath(method, path),
      headers,
      ...(init.body === undefined || init.body === null
        ? {}
        : { body: init.body as OutboundRequest['body'] }),
      ...(init.signal === undefined || init.signal === null ? {} : { signal: init.signal }),
      ...(headers[provider.idempotencyHeader] === undefined
        ? {}
        : { idempotencyKey: headers[provider.idempotencyHeader] }),
      refusalsAsResponses: true,
    });
    const responseHeaders = new Headers();
    for (const [key, value] of Object.entries(answer.headers)) {
      if (value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) responseHeaders.append(key, item);
    }
    const empty = answer.status === 204 || answer.status === 304;
    return new Response(empty ? null : new Uint8Array(answer.body), {
      status: answer.status,
      headers: responseHeaders,
    });
  };

  const client: ProviderClient = {
    provider,
    circuitState,
    fetch: fetchThrough,
    callAlone,
    request(request) {
      const operation = request.operation ?? request.method;
      // No async layer when there is no fallback: the call's own promise is the answer.
      return provider.fallback.length === 0
        ? callAlone(request, operation)
        : callWithFallbacks(request, operation);
    },
  };

  const callWithFallbacks = async (request: OutboundRequest, operation: string) => {
    const chain = [provider, ...provider.fallback];
    let lastError: unknown;
    for (const [index, candidate] of chain.entries()) {
      try {
        return index === 0
          ? await callAlone(request, operation)
          : await dependencies.clientOf(candidate).callAlone(request, operation);
      } catch (error) {
        lastError = error;
        const code = (error as { code?: unknown }).code;
        if (
          typeof code !== 'string' ||
          !FALLBACK_CODES.has(code) ||
          isStream(request.body) ||
          request.signal?.aborted
        )
          throw error;
        if (index + 1 < chain.length)
          log.warn(
            { requestId: dependencies.requestId(), operation, code, fallback: chain[index + 1]?.name },
            'Falling back to the next provider',
          );
      }
    }
    throw lastError;
  };
  return client;
}

/** A provider's answer: one object per call, its readers on the prototype. */
class ProviderAnswer implements OutboundResponse {
  constructor(
    readonly provider: string,
    private readonly operation: string,
    readonly status: number,
    readonly headers: Dispatcher.ResponseData['headers'],
    readonly body: Buffer,
  ) {}

  text(): string {
    return this.body.toString('utf8');
  }

  json<T>(validator?: JsonValidator): T {
    let value: unknown;
    try {
      value = JSON.parse(this.body.toString('utf8'));
    } catch (cause) {
      throw outboundErrors.badResponse(this.provider, this.operation, 'a body that is not JSON', cause);
    }
    if (validator !== undefined && !validator.Check(value))
      throw outboundErrors.badResponse(this.provider, this.operation, 'JSON of an unexpected shape');
    return value as T;
  }
}
