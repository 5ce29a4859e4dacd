import autocannon from 'autocannon';
import type { BenchRequest } from './scenario.js';

/** One measured load run against one server. */
export interface LoadMeasurement {
  /** Responses per second over the run (2xx and others; see `non2xx`). */
  readonly requestsPerSecond: number;
  /** Latency of 2xx responses, in milliseconds, at microsecond resolution. */
  readonly latencyMs: {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly max: number;
  };
  readonly totalRequests: number;
  readonly non2xx: number;
  /** Connection errors and timeouts: a run with any is not comparable. */
  readonly errors: number;
  readonly timeouts: number;
  readonly durationSeconds: number;
}

export interface LoadOptions {
  readonly url: string;
  readonly connections: number;
  readonly durationSeconds: number;
  /** The next request, called for every request (e.g. a random id). */
  readonly nextRequest: () => BenchRequest;
  /**
   * Instead of `nextRequest`: what each connection sends in turn, as a client's session does
   * (a write, then reads), starting over at the end.
   */
  readonly session?: readonly (() => BenchRequest)[];
  /**
   * Response headers a client sends back on its next requests of the session, as a request header
   * of the same name (`socle-lsn`: read-your-writes pinning). Forgotten when the session starts over.
   */
  readonly echoHeaders?: readonly string[];
  readonly signal: AbortSignal;
}

/** What one connection remembers between the requests of its session (autocannon's context). */
interface SessionContext {
  echoed?: Record<string, string>;
}

/** autocannon's request steps for `options`: one per session request (or the single `nextRequest`). */
function requestSteps(options: LoadOptions): autocannon.Request[] {
  const echo = (options.echoHeaders ?? []).map((name) => name.toLowerCase());
  return (options.session ?? [options.nextRequest]).map(
    (make): autocannon.Request => ({
      setupRequest: (request, context) => {
        const next = make();
        request.method = next.method;
        request.path = next.path;
        request.headers = { ...request.headers, ...next.headers, ...(context as SessionContext).echoed };
        if (next.body !== undefined) request.body = next.body;
        return request;
      },
      ...(echo.length === 0
        ? {}
        : {
            onResponse: (_status, _body, context, headers) => {
              const session = context as SessionContext;
              for (const [name, value] of Object.entries(headers ?? {})) {
                if (!echo.includes(name.toLowerCase()) || typeof value !== 'string') continue;
                session.echoed = { ...session.echoed, [name.toLowerCase()]: value };
              }
            },
          }),
    }),
  );
}

/** Value at quantile `q` of ascending `sorted` (nearest rank). */
function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/**
 * Loads `url` with autocannon in this process for a fixed time. Latencies are recorded here from
 * each response's high-resolution time: autocannon's own histogram keeps whole milliseconds,
 * too coarse for a 2 ms p50. Stops early, with what was measured, when `signal` aborts.
 */
export async function measureLoad(options: LoadOptions): Promise<LoadMeasurement> {
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let finish: (error: unknown, result: autocannon.Result) => void = () => undefined;
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (error, result) => (error ? reject(error) : resolve(result));
  });
  // The callback form returns the instance, which `stop()` and the response events need.
  const instance = autocannon(
    {
      url: options.url,
      connections: options.connections,
      duration: options.durationSeconds,
      requests: requestSteps(options),
    },
    (error: unknown, result) => finish(error, result),
  );
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    if (statusCode < 200 || statusCode > 299) return;
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[count++] = responseTime;
  });
  const onAbort = () => instance.stop();
  if (options.signal.aborted) instance.stop();
  else options.signal.addEventListener('abort', onAbort, { once: true });
  const result = await finished.finally(() => options.signal.removeEventListener('abort', onAbort));

  const sorted = latencies.subarray(0, count).sort();
  return {
    requestsPerSecond: result.requests.total / result.duration,
    latencyMs: {
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      p99: quantile(sorted, 0.99),
      max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] ?? Number.NaN),
    },
    totalRequests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationSeconds: result.duration,
  };
}
