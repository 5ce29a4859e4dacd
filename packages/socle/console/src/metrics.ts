/** Reading Prometheus text (`GET /metrics`) into the few numbers the console charts. */

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = LINE.exec(line);
    if (!match?.[1] || !match[3]) continue;
    const value = Number(match[3]);
    if (!Number.isFinite(value) && match[3] !== '+Inf') continue;
    const labels: Record<string, string> = {};
    for (const [, name, raw] of (match[2] ?? '').matchAll(LABEL)) if (name) labels[name] = raw ?? '';
    samples.push({ name: match[1], labels, value });
  }
  return samples;
}

/** Every family summed over its labels. */
export function sums(samples: readonly Sample[]): Map<string, number> {
  const totals = new Map<string, number>();
  for (const sample of samples) totals.set(sample.name, (totals.get(sample.name) ?? 0) + sample.value);
  return totals;
}

/** The counters the charts are made of, at one instant. */
export interface Reading {
  readonly at: number;
  readonly requests: number;
  readonly errors: number;
  /** Cumulative HTTP duration bucket counts by upper bound (seconds), every route summed. */
  readonly buckets: ReadonlyMap<number, number>;
  readonly jobsFinished: number;
  readonly connections: number;
}

export function readingOf(samples: readonly Sample[], at: number): Reading {
  let requests = 0;
  let errors = 0;
  let jobsFinished = 0;
  let connections = 0;
  const buckets = new Map<number, number>();
  for (const sample of samples) {
    if (sample.name === 'socle_http_request_duration_seconds_count') {
      requests += sample.value;
      if (Number(sample.labels.status_code) >= 500) errors += sample.value;
    } else if (sample.name === 'socle_http_request_duration_seconds_bucket') {
      const bound = sample.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(sample.labels.le);
      buckets.set(bound, (buckets.get(bound) ?? 0) + sample.value);
    } else if (sample.name === 'socle_jobs_finished_total') jobsFinished += sample.value;
    else if (sample.name === 'socle_realtime_connections') connections += sample.value;
  }
  return { at, requests, errors, buckets, jobsFinished, connections };
}

/** One point of each chart, from two readings: rates per second, p99 of the requests between. */
export interface Point {
  readonly requestRate: number;
  readonly errorRate: number;
  /** Milliseconds; null without requests between the readings. */
  readonly p99: number | null;
  readonly jobRate: number;
  readonly connections: number;
}

/** One point of each chart, from two readings: rates per second, p99 of the requests between. */
export function pointBetween(before: Reading, after: Reading): Point {
  return fleetPoint([[before, after]]);
}

/**
 * One point for several nodes, each from two readings of its own: rates and connections summed,
 * p99 of every node's requests between its two readings (their histograms' differences summed).
 */
export function fleetPoint(pairs: readonly (readonly [Reading, Reading])[]): Point {
  let requestRate = 0;
  let errorRate = 0;
  let jobRate = 0;
  let connections = 0;
  const between = new Map<number, number>();
  for (const [before, after] of pairs) {
    const seconds = Math.max((after.at - before.at) / 1000, 0.001);
    const rate = (a: number, b: number) => Math.max(b - a, 0) / seconds;
    requestRate += rate(before.requests, after.requests);
    errorRate += rate(before.errors, after.errors);
    jobRate += rate(before.jobsFinished, after.jobsFinished);
    connections += after.connections;
    for (const [bound, count] of after.buckets)
      between.set(bound, (between.get(bound) ?? 0) + Math.max(count - (before.buckets.get(bound) ?? 0), 0));
  }
  return { requestRate, errorRate, p99: p99Of(between), jobRate, connections };
}

/** The upper bound (ms) under which 99 % of the requests of a cumulative histogram fall; null: none. */
function p99Of(buckets: ReadonlyMap<number, number>): number | null {
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Number.POSITIVE_INFINITY) ?? 0;
  if (total <= 0) return null;
  for (const bound of bounds)
    if ((buckets.get(bound) ?? 0) >= total * 0.99)
      return Number.isFinite(bound) ? bound * 1000 : (bounds.at(-2) ?? 0) * 1000;
  return null;
}

/** A node's report (`GET /operator/health/nodes`), as the console reads it. */
export interface NodeReport {
  readonly node: string;
  readonly host: string;
  readonly pid: number;
  readonly at: number;
  readonly gone: boolean;
  readonly self: boolean;
  readonly requests: number;
  readonly errors: number;
  /** Finite upper bounds only: the +Inf bucket is `requests`. */
  readonly buckets: readonly (readonly [number, number])[];
  readonly jobsFinished: number;
  readonly connections: number;
}

export function readingOfReport(report: NodeReport): Reading {
  return {
    at: report.at,
    requests: report.requests,
    errors: report.errors,
    buckets: new Map([...report.buckets, [Number.POSITIVE_INFINITY, report.requests] as const]),
    jobsFinished: report.jobsFinished,
    connections: report.connections,
  };
}
