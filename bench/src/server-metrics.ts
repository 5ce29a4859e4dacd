/**
 * What a Socle server says about itself during a load, read from its Prometheus `/metrics` (as an
 * operator's scraper would): where requests wait when its CPU is not the limit. Pool wait and
 * HTTP time are histograms, compared between a scrape before and one after the load; the pool's
 * queue and the event loop's lag are sampled during it (prom-client resets its event-loop
 * histogram on every scrape, so each sample covers the time since the previous one).
 */
import { readFile } from 'node:fs/promises';

export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** The samples of a Prometheus text exposition (comments skipped). */
export function parsePrometheusText(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(LABEL))
      labels[name as string] = (value as string).replace(/\\(.)/g, (_, escaped) =>
        escaped === 'n' ? '\n' : escaped,
      );
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

export async function scrapeMetrics(url: string): Promise<MetricSample[]> {
  const response = await fetch(`${url}/metrics`);
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
  return parsePrometheusText(await response.text());
}

type LabelFilter = Readonly<Record<string, string>>;
const matches = (labels: Readonly<Record<string, string>>, filter: LabelFilter) =>
  Object.entries(filter).every(([name, value]) => labels[name] === value);

/** The first sample of `name` whose labels include `filter`. */
export function sampleValue(samples: readonly MetricSample[], name: string, filter: LabelFilter = {}) {
  return samples.find((sample) => sample.name === name && matches(sample.labels, filter))?.value;
}

/** Observations of a histogram between two scrapes, its series matching `filter` summed. */
export interface HistogramDelta {
  readonly count: number;
  readonly sum: number;
  /** Cumulative counts by upper bound, ascending (+Inf last). */
  readonly buckets: readonly (readonly [number, number])[];
}

export function histogramDelta(
  before: readonly MetricSample[],
  after: readonly MetricSample[],
  name: string,
  filter: LabelFilter = {},
): HistogramDelta {
  const total = (samples: readonly MetricSample[], suffix: string, extra: (labels: LabelFilter) => boolean) =>
    samples
      .filter(
        (sample) =>
          sample.name === `${name}${suffix}` && matches(sample.labels, filter) && extra(sample.labels),
      )
      .reduce((sum, sample) => sum + sample.value, 0);
  const any = () => true;
  const bounds = [
    ...new Set(
      after
        .filter((sample) => sample.name === `${name}_bucket` && matches(sample.labels, filter))
        .map((sample) => sample.labels.le as string),
    ),
  ]
    .map((le) => (le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le)))
    .sort((a, b) => a - b);
  const atBound = (bound: number) => (labels: LabelFilter) =>
    (labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le)) === bound;
  return {
    count: total(after, '_count', any) - total(before, '_count', any),
    sum: total(after, '_sum', any) - total(before, '_sum', any),
    buckets: bounds.map(
      (bound) =>
        [bound, total(after, '_bucket', atBound(bound)) - total(before, '_bucket', atBound(bound))] as const,
    ),
  };
}

/** The upper bound of the bucket holding quantile `q` (what a histogram can tell), NaN when empty. */
export function histogramQuantile(delta: HistogramDelta, q: number): number {
  if (delta.count <= 0) return Number.NaN;
  const rank = q * delta.count;
  for (const [bound, cumulative] of delta.buckets) if (cumulative >= rank) return bound;
  return Number.POSITIVE_INFINITY;
}

/** What the samples taken during a load saw. */
export interface ServerWatch {
  readonly samples: number;
  /** Callers queued for a session of the request pool: mean and max over the samples. */
  readonly poolWaitingMean: number;
  readonly poolWaitingMax: number;
  /** Event-loop delay: the median of the samples' p99 and the largest max, in milliseconds. */
  readonly eventLoopP99Ms: number;
  readonly eventLoopMaxMs: number;
  /** How long the scrapes took to be answered (the server's own queue, plus the machine's). */
  readonly scrapeP50Ms: number;
}

/** Scrapes `url` every `intervalMs` (one at a time) until `stop`. */
export function watchServer(url: string, intervalMs: number) {
  const waiting: number[] = [];
  const lagP99: number[] = [];
  const lagMax: number[] = [];
  const scrapeMs: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const started = performance.now();
      try {
        const samples = await scrapeMetrics(url);
        scrapeMs.push(performance.now() - started);
        waiting.push(sampleValue(samples, 'socle_db_pool_connections', { state: 'waiting' }) ?? Number.NaN);
        lagP99.push((sampleValue(samples, 'nodejs_eventloop_lag_p99_seconds') ?? Number.NaN) * 1000);
        lagMax.push((sampleValue(samples, 'nodejs_eventloop_lag_max_seconds') ?? Number.NaN) * 1000);
      } catch {
        // A scrape that fails (the server overloaded) is a sample missing, not a failed run.
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  const median = (values: readonly number[]) =>
    [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
  return {
    async stop(): Promise<ServerWatch> {
      stopped = true;
      await loop;
      return {
        samples: waiting.length,
        poolWaitingMean: waiting.reduce((sum, value) => sum + value, 0) / Math.max(1, waiting.length),
        poolWaitingMax: Math.max(0, ...waiting),
        eventLoopP99Ms: median(lagP99),
        eventLoopMaxMs: Math.max(0, ...lagMax),
        scrapeP50Ms: median(scrapeMs),
      };
    },
  };
}

/** Busy and total CPU time of the whole machine so far (`/proc/stat`), in clock ticks; undefined off Linux. */
export async function machineCpuTicks(): Promise<{ busy: number; total: number } | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, value) => sum + value, 0);
    // idle and iowait are the 4th and 5th fields.
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}
