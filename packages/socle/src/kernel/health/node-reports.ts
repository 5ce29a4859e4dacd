import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Bus } from '../bus/index.js';
import type { Clock } from '../clock/index.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import { isRedisUnavailable } from '../redis/index.js';

/** Bus channel of the nodes' summaries. */
export const NODE_REPORTS_CHANNEL = 'socle.node-reports';

/**
 * What one node says of itself every few seconds: cumulative counters (since it started), so a
 * reader computes rates between two reports of the same node, and a report lost on the bus costs
 * a point of resolution, never a wrong rate.
 */
export interface NodeReport {
  /** Unique per process start: a restarted node is a new one (its counters start again at 0). */
  readonly node: string;
  readonly host: string;
  readonly pid: number;
  readonly startedAt: string;
  /** When the node read its counters (its own clock, milliseconds since the epoch). */
  readonly at: number;
  readonly requests: number;
  /** Requests answered 5xx. */
  readonly errors: number;
  /**
   * Cumulative HTTP duration histogram, every route summed: [upper bound in seconds, count], the
   * finite bounds only (the +Inf bucket is `requests`).
   */
  readonly buckets: readonly (readonly [number, number])[];
  readonly jobsFinished: number;
  readonly connections: number;
}

/** A node's last report as this node holds it. */
export interface NodeHealth extends NodeReport {
  /** Milliseconds since this node received the report (its own clock: immune to skew between nodes). */
  readonly ageMs: number;
  /** No report for longer than the timeout: stopped, crashed or cut off. */
  readonly gone: boolean;
  /** The node that holds this list (the one answering). */
  readonly self: boolean;
}

export interface NodeReportsOptions {
  readonly bus: Bus;
  readonly metrics: Metrics;
  readonly clock: Clock;
  readonly log: Logger;
  /** How often this node publishes its report; default 5 s (the console's refresh). */
  readonly intervalMs?: number;
  /** A node silent this long is shown as gone; default three intervals. */
  readonly goneAfterMs?: number;
  /** A gone node is forgotten this long after its last report; default 10 min. */
  readonly forgetAfterMs?: number;
}

export interface NodeReports {
  readonly node: string;
  /** Listens to the other nodes and publishes this one's report now and then every interval. */
  start(): Promise<void>;
  /** Publishes this node's report at once (start does; tests call it too). */
  publish(): Promise<void>;
  /** Every node heard from (this one included), by node id; gone ones flagged. */
  nodes(): NodeHealth[];
  stop(): Promise<void>;
}

const HTTP_DURATION = 'socle_http_request_duration_seconds';
const JOBS_FINISHED = 'socle_jobs_finished_total';
const CONNECTIONS = 'socle_realtime_connections';

/**
 * The fleet's health as each node sees it: every node publishes a small summary of its metrics on
 * the bus (Redis pub/sub on a fleet, in process when embedded) and keeps the last one of each
 * node, so any node answers for all without a scrape of each, and without a table written every
 * few seconds. A node that stops publishing is flagged gone after `goneAfterMs`.
 */
export function createNodeReports(options: NodeReportsOptions): NodeReports {
  const { bus, metrics, clock, log } = options;
  const intervalMs = options.intervalMs ?? 5000;
  const goneAfterMs = options.goneAfterMs ?? intervalMs * 3;
  const forgetAfterMs = options.forgetAfterMs ?? 10 * 60_000;
  const node = randomUUID();
  const identity = { node, host: hostname(), pid: process.pid, startedAt: clock.now().toISOString() };
  const heard = new Map<string, { report: NodeReport; receivedAt: number }>();
  let timer: NodeJS.Timeout | undefined;

  const receive = (message: string) => {
    const report = parseReport(message);
    if (report === undefined) return;
    heard.set(report.node, { report, receivedAt: clock.now().getTime() });
  };

  async function read(): Promise<NodeReport> {
    let requests = 0;
    let errors = 0;
    let jobsFinished = 0;
    let connections = 0;
    const buckets = new Map<number, number>();
    const values = async (name: string) =>
      (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
    for (const value of await values(HTTP_DURATION)) {
      // A histogram's values name their series (`_bucket`, `_sum`, `_count`); prom-client's type omits it.
      const metricName = (value as { metricName?: string }).metricName;
      if (metricName === `${HTTP_DURATION}_count`) {
        requests += value.value;
        if (Number(value.labels.status_code) >= 500) errors += value.value;
      } else if (metricName === `${HTTP_DURATION}_bucket`) {
        const bound = Number(value.labels.le);
        if (Number.isFinite(bound)) buckets.set(bound, (buckets.get(bound) ?? 0) + value.value);
      }
    }
    for (const value of await values(JOBS_FINISHED)) jobsFinished += value.value;
    for (const value of await values(CONNECTIONS)) connections += value.value;
    return {
      ...identity,
      at: clock.now().getTime(),
      requests,
      errors,
      buckets: [...buckets],
      jobsFinished,
      connections,
    };
  }

  async function publish(): Promise<void> {
    const report = await read();
    // This node's own report is kept even when the bus is down, so it always answers for itself.
    heard.set(node, { report, receivedAt: clock.now().getTime() });
    await bus.publish(NODE_REPORTS_CHANNEL, JSON.stringify(report));
  }

  return {
    node,
    async start() {
      await bus.subscribe(NODE_REPORTS_CHANNEL, receive);
      // One warning per run of failures, none for Redis being unreachable: the Redis outage log
      // says that once per outage, and a line every interval would bury it.
      let failing = false;
      const tick = () =>
        publish().then(
          () => {
            failing = false;
          },
          (error: unknown) => {
            if (!failing && !isRedisUnavailable(error)) log.warn({ err: error }, 'Node report not published');
            else log.debug({ err: error }, 'Node report not published');
            failing = true;
          },
        );
      await tick();
      timer = setInterval(tick, intervalMs);
      timer.unref();
    },
    publish,
    nodes() {
      const now = clock.now().getTime();
      const nodes: NodeHealth[] = [];
      for (const [id, { report, receivedAt }] of heard) {
        const ageMs = Math.max(now - receivedAt, 0);
        if (ageMs > forgetAfterMs) {
          heard.delete(id);
          continue;
        }
        nodes.push({ ...report, ageMs, gone: ageMs > goneAfterMs, self: id === node });
      }
      return nodes.sort((a, b) => a.host.localeCompare(b.host) || a.startedAt.localeCompare(b.startedAt));
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await bus.unsubscribe(NODE_REPORTS_CHANNEL, receive).catch(() => undefined);
    },
  };
}

const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0;

/** A report read back from the bus, or undefined for anything else (checked: the bus is shared). */
function parseReport(message: string): NodeReport | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const report = parsed as Record<string, unknown>;
  const buckets = report.buckets;
  if (
    typeof report.node !== 'string' ||
    typeof report.host !== 'string' ||
    typeof report.startedAt !== 'string' ||
    !isCount(report.pid) ||
    !isCount(report.at) ||
    !isCount(report.requests) ||
    !isCount(report.errors) ||
    !isCount(report.jobsFinished) ||
    !isCount(report.connections) ||
    !Array.isArray(buckets) ||
    !buckets.every(
      (bucket) => Array.isArray(bucket) && bucket.length === 2 && isCount(bucket[0]) && isCount(bucket[1]),
    )
  )
    return undefined;
  return parsed as NodeReport;
}
