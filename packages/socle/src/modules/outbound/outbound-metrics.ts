import type { Metrics } from '../../kernel/index.js';

/** Latency buckets of outbound calls, seconds: a 5 ms local server to a 2-minute transcription. */
const CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const CIRCUIT_VALUES = { closed: 0, 'half-open': 1, open: 2, isolated: 3 } as const;

/** One (provider, operation, outcome) series: a finished call counted and timed. */
export interface CallSeries {
  observe(seconds: number): void;
}

/** What outbound calls report at `/metrics`, per provider and operation. */
export interface OutboundMetrics {
  /**
   * The series of calls of `provider` and `operation` that ended in `outcome` (`ok` or the
   * error's reason: `timeout`, `circuit_open`…), looked up once: keep it, and `observe` each
   * finished call (retries included) on it.
   */
  callSeries(provider: string, operation: string, outcome: string): CallSeries;
  /** Time spent waiting for the shared rate limit. */
  rateLimitWait(provider: string, seconds: number): void;
  /** Reports the provider's circuit state on every scrape. */
  trackCircuit(provider: string, state: () => keyof typeof CIRCUIT_VALUES): void;
}

export function createOutboundMetrics(metrics: Metrics): OutboundMetrics {
  // One histogram series per (provider, operation, outcome) counts and times each call:
  // `socle_outbound_calls_total` is its count, so a call costs one observation on a kept handle.
  const duration = metrics.histogram({
    name: 'socle_outbound_call_duration_seconds',
    help: 'Outbound call duration, retries and waits included, by provider, operation and outcome',
    labelNames: ['provider', 'operation', 'outcome'],
    buckets: CALL_BUCKETS,
    countedAs: {
      name: 'socle_outbound_calls_total',
      help: 'Outbound calls by provider, operation and outcome (ok, timeout, unavailable, rejected, circuit_open, rate_limited, overloaded, bad_response)',
    },
  });
  const waits = metrics.counter({
    name: 'socle_outbound_rate_limit_wait_seconds_total',
    help: 'Time outbound calls waited for the shared rate limit of their provider',
    labelNames: ['provider'],
  });
  const circuits = new Map<string, () => keyof typeof CIRCUIT_VALUES>();
  metrics.gauge({
    name: 'socle_outbound_circuit_state',
    help: 'Circuit breaker of each outbound provider: 0 closed, 1 half-open, 2 open, 3 isolated',
    labelNames: ['provider'],
    collect(set) {
      for (const [provider, state] of circuits) set({ provider }, CIRCUIT_VALUES[state()]);
    },
  });
  return {
    callSeries: (provider, operation, outcome) => duration.series({ provider, operation, outcome }),
    rateLimitWait(provider, seconds) {
      waits.inc({ provider }, seconds);
    },
    trackCircuit(provider, state) {
      circuits.set(provider, state);
    },
  };
}
