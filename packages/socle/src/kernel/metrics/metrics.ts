import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStatistics } from '../db/index.js';

/** Seconds; spans a 1 ms cache hit to a 10 s slow request. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DB_BUCKETS = [0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/**
 * One Prometheus registry per Socle instance (never prom-client's global one, so several
 * instances in one process, as in tests, do not collide). Modules add their own metrics to it.
 */
export interface Metrics {
  readonly registry: Registry;
  observeHttpRequest(method: string, route: string, statusCode: number, durationSeconds: number): void;
  observeQuery(durationSeconds: number, outcome: 'ok' | 'error'): void;
  /** Reports the database pool's usage on every scrape. */
  trackPool(read: () => PoolStatistics): void;
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

  const httpDuration = new Histogram({
    name: 'socle_http_request_duration_seconds',
    help: 'Time from request received to response sent, by route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_BUCKETS,
    registers: [registry],
  });
  const queryDuration = new Histogram({
    name: 'socle_db_query_duration_seconds',
    help: 'Database statement duration as seen by Socle, including queueing in the driver',
    labelNames: ['outcome'] as const,
    buckets: DB_BUCKETS,
    registers: [registry],
  });
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

  // Label sets are few and fixed per route; binding them once saves hashing labels per request.
  const httpChildren = new Map<string, ReturnType<typeof httpDuration.labels>>();
  const queryChildren = {
    ok: queryDuration.labels({ outcome: 'ok' }),
    error: queryDuration.labels({ outcome: 'error' }),
  };

  return {
    registry,
    observeHttpRequest(method, route, statusCode, durationSeconds) {
      const key = `${method} ${statusCode} ${route}`;
      let child = httpChildren.get(key);
      if (child === undefined) {
        child = httpDuration.labels({ method, route, status_code: String(statusCode) });
        httpChildren.set(key, child);
      }
      child.observe(durationSeconds);
    },
    observeQuery(durationSeconds, outcome) {
      queryChildren[outcome].observe(durationSeconds);
    },
    trackPool(read) {
      readPool = read;
    },
  };
}
