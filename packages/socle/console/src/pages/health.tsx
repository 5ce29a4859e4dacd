import { api } from '../api.js';
import { Messages, type PageProps, useLoad, useWords } from '../shared.js';

interface Check {
  status: string;
  detail?: string;
  durationMs: number;
}
/** Metric families shown, summed over their labels (from the Prometheus text of /metrics). */
const KEY_METRICS = [
  'socle_http_request_duration_seconds_count',
  'socle_jobs_finished_total',
  'socle_db_pool_connections',
  'process_resident_memory_bytes',
  'nodejs_eventloop_lag_p99_seconds',
];

function sums(text: string): Map<string, number> {
  const totals = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!match?.[1] || !match[3]) continue;
    const value = Number(match[3]);
    if (Number.isFinite(value)) totals.set(match[1], (totals.get(match[1]) ?? 0) + value);
  }
  return totals;
}

/** Readiness checks (/readyz) and a few metrics (/metrics). */
export function Health(_props: PageProps) {
  const words = useWords();
  const { data, error, reload } = useLoad(
    async () => ({
      ready: await api<{ status: string; checks: Record<string, Check> }>('/readyz'),
      metrics: sums(await api<string>('/metrics', { text: true })),
    }),
    [],
  );
  const shown = data ? KEY_METRICS.filter((name) => data.metrics.has(name)) : [];
  const others = data
    ? [...data.metrics.keys()].filter(
        (name) => name.startsWith('socle_') && !name.endsWith('_bucket') && !KEY_METRICS.includes(name),
      )
    : [];
  return (
    <>
      <button type="button" onClick={reload}>
        {words.refresh}
      </button>
      <Messages error={error} />
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
          {data &&
            Object.entries(data.ready.checks).map(([name, check]) => (
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
              <td>{Math.round((data?.metrics.get(name) ?? 0) * 1000) / 1000}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
