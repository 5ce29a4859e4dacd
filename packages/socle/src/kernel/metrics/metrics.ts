import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { PoolStatistics } from '../db/index.js';
import { SeriesHistogram } from './series-histogram.js';

/** Seconds; spans a 1 ms cache hit to a 10 s slow request. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds; from a free session (tens of microseconds) to the connect timeout. */
const POOL_WAIT_BUCKETS = [
  0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];
const DB_BUCKETS = [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/**
 * One Prometheus registry per Socle instance (never prom-client's global one, so several
 * instances in one process, as in tests, do not collide). Modules add their own metrics to it.
 */
export interface Metrics {
  readonly registry: Registry;
  observeHttpRequest(method: string, route: string, statusCode: number, durationSeconds: number): void;
  observeQuery(durationSeconds: number, outcome: 'ok' | 'error'): void;
  /**
   * How long a caller waited for a session of `pool` (`request`: the routes' pool; `background`:
   * the job handlers'): the queue in front of the database that statement timings do not include.
   */
  observePoolWait(pool: 'request' | 'background', waitSeconds: number): void;
  /** Reports the database pool's usage on every scrape. */
  trackPool(read: () => PoolStatistics): void;
  /**
   * Adds a counter to this instance's registry (served at `/metrics`): how modules and apps count
   * things without depending on prom-client. Name it `<app>_<what>_total`.
   *
   * @example
   * const refused = context.metrics.counter({ name: 'quiz_answers_refused_total', help: 'Answers after the deadline' });
   * refused.inc();
   */
  counter(options: MetricOptions): MetricCounter;
  /**
   * Adds a histogram (seconds, or whatever `buckets` measure) to this instance's registry.
   *
   * @example
   * const latency = context.metrics.histogram({ name: 'crm_transcription_seconds', help: '…', labelNames: ['model'] });
   * latency.observe({ model: 'whisper-1' }, 12.5);
   */
  histogram(options: HistogramOptions): MetricHistogram;
  /**
   * Adds a gauge whose values `collect` sets on every scrape (a state read from elsewhere).
   *
   * @example
   * context.metrics.gauge({ name: 'crm_queue_depth', help: '…', labelNames: ['queue'], collect: (set) => set({ queue: 'high' }, depth()) });
   */
  gauge(options: GaugeOptions): void;
}

/** Name and help text of a metric, as Prometheus shows them, and its label names if any. */
export interface MetricOptions {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
}

/** Label values of one series. */
export type MetricLabels = Readonly<Record<string, string>>;

/** A monotonic count. */
export interface MetricCounter {
  /** Adds `count` (default 1), to the series of `labels` when the counter has labels. */
  inc(count?: number): void;
  inc(labels: MetricLabels, count?: number): void;
}

export interface HistogramOptions extends MetricOptions {
  /** Upper bounds of the buckets; default: 1 ms to 10 s. */
  readonly buckets?: readonly number[];
  /**
   * Also exposes each series' observation count as a counter (`calls_total` next to
   * `call_duration_seconds`): one `observe` counts and times, where a separate counter costs a
   * label lookup per call.
   */
  readonly countedAs?: { readonly name: string; readonly help: string };
}

/** A distribution of observed values. */
export interface MetricHistogram {
  observe(labels: MetricLabels, value: number): void;
  /**
   * The series of `labels`, looked up once: keep it and `observe(value)` on it (on a hot path,
   * `observe(labels, value)` costs a lookup per call).
   */
  series(labels: MetricLabels): { observe(value: number): void };
}

export interface GaugeOptions extends MetricOptions {
  /** Called on every scrape: sets the value of each series. */
  collect(set: (labels: MetricLabels, value: number) => void): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  // prom-client names these gauges `*_total`, which Prometheus reserves for counters (promtool
  // rejects them); the per-type gauges `nodejs_active_{handles,requests,resources}` carry the same data.
  for (const misnamed of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(misnamed);
  }

  const httpDuration = new SeriesHistogram(
    'socle_http_request_duration_seconds',
    'Time from request received to response sent, by route template and status code',
    HTTP_BUCKETS,
  );
  const queryDuration = new SeriesHistogram(
    'socle_db_query_duration_seconds',
    'Database statement duration as seen by Socle, including queueing in the driver',
    DB_BUCKETS,
  );
  const poolWait = new SeriesHistogram(
    'socle_db_pool_wait_seconds',
    'Time a caller waited for a database session of the pool (request or background), before its statements ran',
    POOL_WAIT_BUCKETS,
  );
  registry.registerMetric(httpDuration.asMetric());
  registry.registerMetric(queryDuration.asMetric());
  registry.registerMetric(poolWait.asMetric());
  let readPool: (() => PoolStatistics) | undefined;
  new Gauge({
    name: 'socle_db_pool_connections',
    help: 'Database pool connections by state (total, idle, waiting callers, max)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      if (!readPool) return;
      const statistics = readPool();
      this.set({ state: 'total' }, statistics.total);
      this.set({ state: 'idle' }, statistics.idle);
      this.set({ state: 'waiting' }, statistics.waiting);
      this.set({ state: 'max' }, statistics.max);
    },
  });

  const queryOk = queryDuration.series('ok', () => ({ outcome: 'ok' }));
  const queryError = queryDuration.series('error', () => ({ outcome: 'error' }));
  const requestPoolWait = poolWait.series('request', () => ({ pool: 'request' }));
  const backgroundPoolWait = poolWait.series('background', () => ({ pool: 'background' }));

  return {
    registry,
    observeHttpRequest(method, route, statusCode, durationSeconds) {
      httpDuration
        .series(`${method} ${statusCode} ${route}`, () => ({
          method,
          route,
          status_code: String(statusCode),
        }))
        .observe(durationSeconds);
    },
    observeQuery(durationSeconds, outcome) {
      (outcome === 'ok' ? queryOk : queryError).observe(durationSeconds);
    },
    observePoolWait(pool, waitSeconds) {
      (pool === 'request' ? requestPoolWait : backgroundPoolWait).observe(waitSeconds);
    },
    trackPool(read) {
      readPool = read;
    },
    counter({ name, help, labelNames = [] }) {
      return new Counter({ name, help, labelNames: [...labelNames], registers: [registry] });
    },
    histogram({ name, help, labelNames = [], buckets = HTTP_BUCKETS, countedAs }) {
      const histogram = new SeriesHistogram(name, help, [...buckets]);
      registry.registerMetric(histogram.asMetric());
      if (countedAs !== undefined)
        registry.registerMetric(histogram.countsAsCounter(countedAs.name, countedAs.help));
      const series = (labels: MetricLabels) =>
        histogram.series(labelNames.map((label) => labels[label] ?? '').join('\u0000'), () =>
          Object.fromEntries(labelNames.map((label) => [label, labels[label] ?? ''])),
        );
      return { observe: (labels, value) => series(labels).observe(value), series };
    },
    gauge({ name, help, labelNames = [], collect }) {
      new Gauge({
        name,
        help,
        labelNames: [...labelNames],
        registers: [registry],
        collect() {
          collect((labels, value) => this.set(labels, value));
        },
      });
    },
  };
}
