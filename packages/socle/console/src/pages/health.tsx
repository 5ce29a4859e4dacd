import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { format } from '../i18n.js';
import { type Point, parseMetrics, pointBetween, type Reading, readingOf, sums } from '../metrics.js';
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
}

/**
 * Readiness checks (/readyz), key metrics (/metrics) and small charts of the last three minutes
 * (request rate, p99, errors, job throughput, connections), read again every 5 s.
 */
export function Health(_props: PageProps) {
  const words = useWords();
  const [snapshot, setSnapshot] = useState<Snapshot | undefined>(undefined);
  const [points, setPoints] = useState<Point[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let previous: Reading | undefined;
    const read = async () => {
      try {
        const [ready, text] = await Promise.all([
          api<Snapshot['ready']>('/readyz'),
          api<string>('/metrics', { text: true }),
        ]);
        if (!live) return;
        const samples = parseMetrics(text);
        const reading = readingOf(samples, Date.now());
        if (previous !== undefined) {
          const point = pointBetween(previous, reading);
          setPoints((kept) => [...kept, point].slice(-POINTS_KEPT));
        }
        previous = reading;
        setSnapshot({ ready, totals: sums(samples) });
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
  }, [version]);
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
      <p class="muted">{words.chartsHint}</p>
      <ul class="charts">
        {charts.map((chart) => (
          <li key={chart.label}>
            <Sparkline {...chart} />
          </li>
        ))}
      </ul>
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
