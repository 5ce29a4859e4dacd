import type { Metrics } from '../../kernel/index.js';

/** Latency buckets of outbound calls, seconds: a 5 ms local server to a 2-minute transcription. */
const CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const CIRCUIT_VALUES = { closed: 0, 'half-open': 1, open: 2, isolated: 3 } as const;

/** What outbound calls report at `/metrics`, per provider and operation. */
export interface OutboundMetrics {
  /** One finished call (retries included): `outcome` is `ok` or the error's reason (`timeout`, `circuit_open`…). */
  observeCall(provider: string, operation: string, outcome: string, seconds: number): void;
  /** Time spent waiting for the shared rate limit. */
  rateLimitWait(provider: string, seconds: number): void;
  /** Reports the provider's circuit state on every scrape. */
  trackCircuit(provider: string, state: () => keyof typeof CIRCUIT_VALUES): void;
}

export function createOutboundMetrics(metrics: Metrics): OutboundMetrics {
  const calls = metrics.counter({
    name: 'socle_outbound_calls_total',
    help: 'Outbound calls by provider, operation and outcome (ok, timeout, unavailable, rejected, circuit_open, rate_limited, overloaded, bad_response)',
    labelNames: ['provider', 'operation', 'outcome'],
  });
  const duration = metrics.histogram({
    name: 'socle_outbound_call_duration_seconds',
    help: 'Outbound call duration, retries and waits included, by provider, operation and outcome',
    labelNames: ['provider', 'operation', 'outcome'],
    buckets: CALL_BUCKETS,
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
  // Each (provider, operation, outcome)'s labels and histogram series, looked up once: a call then
  // costs one map read, not a label hash per metric.
  const seriesOfCall = new Map<
    string,
    {
      labels: { provider: string; operation: string; outcome: string };
      duration: { observe(value: number): void };
    }
  >();
  return {
    observeCall(provider, operation, outcome, seconds) {
      const key = `${provider}\u0000${operation}\u0000${outcome}`;
      let series = seriesOfCall.get(key);
      if (series === undefined) {
        const labels = { provider, operation, outcome };
        series = { labels, duration: duration.series(labels) };
        seriesOfCall.set(key, series);
      }
      calls.inc(series.labels);
      series.duration.observe(seconds);
    },
    rateLimitWait(provider, seconds) {
      waits.inc({ provider }, seconds);
    },
    trackCircuit(provider, state) {
      circuits.set(provider, state);
    },
  };
}
