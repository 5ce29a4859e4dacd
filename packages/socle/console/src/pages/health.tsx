import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { format } from '../i18n.js';
import {
  fleetPoint,
  type NodeReport,
  type Point,
  parseMetrics,
  pointBetween,
  type Reading,
  readingOf,
  readingOfReport,
  sums,
} from '../metrics.js';
import { describeError, Messages, type PageProps, useWords } from '../shared.js';

interface Check {
  status: string;
  detail?: string;
  durationMs: number;
}
/** Metric families shown, summed over their labels (from the Prometheus text of /metrics). */
const KEY_METRICS = [
  'socle_http_request_duration_seconds_count',
  'socle_jobs_finished_total',
  'socle_realtime_connections',
  'socle_db_pool_connections',
  'process_resident_memory_bytes',
  'nodejs_eventloop_lag_p99_seconds',
];
/** How often the page reads /readyz and /metrics again, and how many points each chart keeps. */
const REFRESH_MS = 5000;
const POINTS_KEPT = 36;

interface Snapshot {
  ready: { status: string; checks: Record<string, Check> };
  totals: Map<string, number>;
  /** With the operator token: every node's last report and its latest point (none yet: undefined). */
  nodes?: { report: NodeReport; point: Point | undefined }[];
  fleet?: Point;
}

/**
 * Points from the nodes' reports: a node's point needs two of its reports (rates between them);
 * a report read twice (the console polls as often as nodes report) leaves its last point as it is.
 */
function createFleetReader() {
  const last = new Map<string, Reading>();
  const pairs = new Map<string, readonly [Reading, Reading]>();
  return (reports: readonly NodeReport[]) => {
    for (const report of reports) {
      const reading = readingOfReport(report);
      const previous = last.get(report.node);
      if (previous !== undefined && previous.at < reading.at) pairs.set(report.node, [previous, reading]);
      if (previous === undefined || previous.at < reading.at) last.set(report.node, reading);
    }
    const live = reports.filter((report) => !report.gone);
    const livePairs = live.flatMap((report) => {
      const pair = pairs.get(report.node);
      return pair === undefined ? [] : [pair];
    });
    return {
      nodes: reports.map((report) => {
        const pair = pairs.get(report.node);
        return { report, point: pair === undefined || report.gone ? undefined : pointBetween(...pair) };
      }),
      fleet: livePairs.length === 0 ? undefined : fleetPoint(livePairs),
    };
  };
}

/**
 * Readiness checks (/readyz), key metrics (/metrics) and small charts of the last three minutes
 * (request rate, p99, errors, job throughput, connections), read again every 5 s. With the operator
 * token, the charts are the fleet's (every node's report, `GET /operator/health/nodes`, summed)
 * and a table shows each node; otherwise they are this node's.
 */
export function Health({ context }: PageProps) {
  const operator = context.operator;
  const words = useWords();
  const [snapshot, setSnapshot] = useState<Snapshot | undefined>(undefined);
  const [points, setPoints] = useState<Point[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let previous: Reading | undefined;
    const readFleet = createFleetReader();
    const read = async () => {
      try {
        const [ready, text, fleetReports] = await Promise.all([
          api<Snapshot['ready']>('/readyz'),
          api<string>('/metrics', { text: true }),
          operator ? api<{ nodes: NodeReport[] }>('/operator/health/nodes') : undefined,
        ]);
        if (!live) return;
        const samples = parseMetrics(text);
        const reading = readingOf(samples, Date.now());
        const fleet = fleetReports === undefined ? undefined : readFleet(fleetReports.nodes);
        const point =
          fleet !== undefined
            ? fleet.fleet
            : previous === undefined
              ? undefined
              : pointBetween(previous, reading);
        if (point !== undefined) setPoints((kept) => [...kept, point].slice(-POINTS_KEPT));
        previous = reading;
        setSnapshot({ ready, totals: sums(samples), ...fleet });
        setError(undefined);
      } catch (failure) {
        if (live) setError(describeError(failure));
      }
      if (live) timer = setTimeout(read, REFRESH_MS);
    };
    void read();
    return () => {
      live = false;
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [version, operator]);
  const totals = snapshot?.totals;
  const shown = totals ? KEY_METRICS.filter((name) => totals.has(name)) : [];
  const others = totals
    ? [...totals.keys()].filter(
        (name) => name.startsWith('socle_') && !name.endsWith('_bucket') && !KEY_METRICS.includes(name),
      )
    : [];
  const charts: { label: string; values: (number | null)[]; unit: string }[] = [
    { label: words.requestRate, values: points.map((point) => point.requestRate), unit: '/s' },
    { label: words.p99, values: points.map((point) => point.p99), unit: ' ms' },
    { label: words.errorRate, values: points.map((point) => point.errorRate), unit: '/s' },
    { label: words.jobRate, values: points.map((point) => point.jobRate), unit: '/s' },
    { label: words.connections, values: points.map((point) => point.connections), unit: '' },
  ];
  return (
    <>
      <button type="button" onClick={() => setVersion((value) => value + 1)}>
        {words.refresh}
      </button>
      <Messages error={error} />
      <h3>{words.charts}</h3>
      <p class="muted">{operator ? words.chartsHintFleet : words.chartsHint}</p>
      <ul class="charts">
        {charts.map((chart) => (
          <li key={chart.label}>
            <Sparkline {...chart} />
          </li>
        ))}
      </ul>
      {snapshot?.nodes && <FleetNodes nodes={snapshot.nodes} fleet={snapshot.fleet} />}
      <h3>{words.readiness}</h3>
      <table>
        <thead>
          <tr>
            <th>{words.check}</th>
            <th>{words.status}</th>
            <th>{words.duration}</th>
          </tr>
        </thead>
        <tbody>
          {snapshot &&
            Object.entries(snapshot.ready.checks).map(([name, check]) => (
              <tr key={name}>
                <td>{name}</td>
                <td>
                  {check.status} {check.detail ?? ''}
                </td>
                <td>{check.durationMs}</td>
              </tr>
            ))}
        </tbody>
      </table>
      <h3>{words.metrics}</h3>
      <table>
        <thead>
          <tr>
            <th>{words.metric}</th>
            <th>{words.value}</th>
          </tr>
        </thead>
        <tbody>
          {[...shown, ...others].map((name) => (
            <tr key={name}>
              <td>{name}</td>
              <td>{round(totals?.get(name) ?? 0)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

const round = (value: number) => Math.round(value * 1000) / 1000;

/** Each node's latest point, and the fleet's (the live nodes summed). */
function FleetNodes({ nodes, fleet }: { nodes: NonNullable<Snapshot['nodes']>; fleet: Point | undefined }) {
  const words = useWords();
  const cells = (point: Point | undefined) =>
    point === undefined ? (
      <td colSpan={5}>{words.noData}</td>
    ) : (
      <>
        <td>{round(point.requestRate)}/s</td>
        <td>{point.p99 === null ? '—' : `${round(point.p99)} ms`}</td>
        <td>{round(point.errorRate)}/s</td>
        <td>{round(point.jobRate)}/s</td>
        <td>{point.connections}</td>
      </>
    );
  return (
    <section aria-labelledby="fleet-title">
      <h3 id="fleet-title">{words.fleetNodes}</h3>
      <table>
        <thead>
          <tr>
            <th>{words.node}</th>
            <th>{words.status}</th>
            <th>{words.requestRate}</th>
            <th>{words.p99}</th>
            <th>{words.errorRate}</th>
            <th>{words.jobRate}</th>
            <th>{words.connectedSockets}</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map(({ report, point }) => (
            <tr key={report.node} data-node={report.node}>
              <td>
                {report.host} · {report.pid}
                <br />
                <span class="muted">{report.node}</span>
              </td>
              <td>{report.gone ? words.nodeGone : report.self ? words.nodeSelf : words.nodeLive}</td>
              {cells(point)}
            </tr>
          ))}
          <tr>
            <th scope="row">
              {format(words.fleetTotal, { count: nodes.filter((node) => !node.report.gone).length })}
            </th>
            <td />
            {cells(fleet)}
          </tr>
        </tbody>
      </table>
    </section>
  );
}

/** A small line chart (inline SVG: no script, no style) with its last value in words. */
function Sparkline({ label, values, unit }: { label: string; values: (number | null)[]; unit: string }) {
  const words = useWords();
  const width = 160;
  const height = 36;
  const known = values.filter((value): value is number => value !== null);
  const top = Math.max(...known, 1e-9);
  const step = width / Math.max(POINTS_KEPT - 1, 1);
  const offset = (POINTS_KEPT - values.length) * step;
  const line = values
    .map((value, index) =>
      value === null
        ? undefined
        : `${(offset + index * step).toFixed(1)},${(height - 2 - (value / top) * (height - 4)).toFixed(1)}`,
    )
    .filter((point) => point !== undefined)
    .join(' ');
  const last = values.at(-1);
  const said = last === undefined || last === null ? words.noData : `${round(last)}${unit}`;
  return (
    <figure>
      <figcaption>
        {label}: <strong>{said}</strong>
      </figcaption>
      <svg
        viewBox={`0 0 ${width} ${height}`}
        width={width}
        height={height}
        role="img"
        aria-label={format(words.chartOf, { label, value: said })}
      >
        <polyline points={line} fill="none" stroke="currentColor" stroke-width="1.5" />
      </svg>
    </figure>
  );
}
