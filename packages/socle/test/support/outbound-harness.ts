import { createLogger, createManualClock, createOutbound, type Outbound } from '../../src/index.js';
import { createMetrics, type Metrics } from '../../src/kernel/metrics/index.js';
import { createRateLimiter, type RateLimiter } from '../../src/kernel/rate-limit/index.js';

/** A log line as the outbound client writes it. */
export type LogLine = Record<string, unknown> & { msg: string };

/**
 * The outbound service alone (no database): its own metrics registry, a rate limiter on a manual
 * clock, and the log lines it wrote.
 */
export function createOutboundHarness(options: { rateLimiter?: RateLimiter; requestId?: () => string } = {}) {
  const clock = createManualClock(new Date());
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const log = createLogger(
    { logLevel: 'info', logFormat: 'json' },
    {
      write(line: string) {
        raw.push(line);
        lines.push(JSON.parse(line) as LogLine);
      },
    },
  );
  const metrics: Metrics = createMetrics();
  const rateLimiter = options.rateLimiter ?? createRateLimiter({ clock });
  const outbound: Outbound = createOutbound({
    rateLimiter,
    metrics,
    log,
    clock,
    ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
  });
  return {
    clock,
    lines,
    /** Everything logged, as written: for "this secret never appears". */
    logText: () => raw.join(''),
    metrics,
    outbound,
    rateLimiter,
    async metricsText() {
      return metrics.registry.metrics();
    },
    async close() {
      await outbound.close();
      await rateLimiter.close();
    },
  };
}
