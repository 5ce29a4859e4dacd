import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { format } from '../i18n.js';
import { Messages, type PageProps, useLoad, useWords, when } from '../shared.js';

interface Job {
  id: string;
  name: string;
  queue: string;
  state: string;
  attempts: number;
  maxAttempts: number;
  tenantId: string | null;
  error: unknown;
  createdAt: string;
  startedAt: string | null;
}
interface QueueCounts {
  queue: string;
  created: number;
  retry: number;
  active: number;
  failed: number;
  oldestWaitingAt: string | null;
}
const STATES = ['created', 'retry', 'active', 'completed', 'cancelled', 'failed'] as const;
const WAITING = new Set(['created', 'retry']);
/** How often counts and jobs are read again when nothing pushes them (no realtime module). */
const POLL_MS = 5000;

function errorText(error: unknown): string {
  if (error == null) return '';
  if (typeof error === 'object' && 'message' in error) return String((error as { message: unknown }).message);
  return JSON.stringify(error);
}

/**
 * Every job with the operator token (`/operator/jobs`), else the current organization's
 * (`/org/jobs`): counts by queue and state (`…/jobs/counts`), jobs of a state. With the operator
 * feed the counts are pushed as they change (and the list is read again then); without it both
 * are read every 5 s.
 */
export function Jobs({ context }: PageProps) {
  const words = useWords();
  const [state, setState] = useState<string>('failed');
  const [pushed, setPushed] = useState<QueueCounts[] | undefined>(undefined);
  const base = context.operator ? '/operator/jobs' : '/org/jobs';
  const orgId = context.operator ? undefined : context.orgId;
  const usable = context.operator || orgId !== undefined;
  // The operator's feed, or the organization's own (its admins): the same `jobs` event, scoped by the server.
  const live = context.live;
  const counts = useLoad(async () => {
    if (!usable) return undefined;
    return (await api<{ queues: QueueCounts[] }>(`${base}/counts`, { orgId })).queues;
  }, [base, orgId, live]);
  const { data, error, notice, run, reload } = useLoad(async () => {
    if (!usable) return undefined;
    const query = `${base}?limit=200${state ? `&state=${state}` : ''}`;
    return (await api<{ jobs: Job[] }>(query, { orgId })).jobs;
  }, [state, base, orgId]);
  const reloadCounts = counts.reload;
  useEffect(() => {
    if (!usable) return;
    setPushed(undefined);
    if (live)
      return live.listen((event, pushedData) => {
        if (event !== 'jobs') return;
        setPushed((pushedData as { queues: QueueCounts[] }).queues);
        reload();
      });
    const timer = setInterval(() => {
      reloadCounts();
      reload();
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [usable, live, reload, reloadCounts]);
  if (!usable) return <p>{words.operatorOnly}</p>;
  const queues = pushed ?? counts.data;
  return (
    <>
      <p class="muted">
        {context.operator
          ? words.operatorScope
          : format(words.orgScope, { name: context.organization?.name ?? '' })}{' '}
        {live ? words.updatedLive : words.updatedEvery}
      </p>
      <Messages error={error ?? counts.error} notice={notice} />
      <h3>{words.queues}</h3>
      <table>
        <thead>
          <tr>
            <th>{words.queue}</th>
            <th>{words.depth}</th>
            <th>{words.oldest}</th>
            <th>{words.running}</th>
            <th>{words.failedJobs}</th>
          </tr>
        </thead>
        <tbody>
          {queues?.map((entry) => (
            <tr key={entry.queue} data-queue={entry.queue}>
              <td>{entry.queue}</td>
              <td data-testid={`waiting-${entry.queue}`}>{entry.created + entry.retry}</td>
              <td>{when(entry.oldestWaitingAt)}</td>
              <td>{entry.active}</td>
              <td data-testid={`failed-${entry.queue}`}>{entry.failed}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <label>
        <span>{words.state}</span>
        <select name="state" value={state} onChange={(event) => setState(event.currentTarget.value)}>
          <option value="">{words.all}</option>
          {STATES.map((value) => (
            <option key={value} value={value}>
              {value}
            </option>
          ))}
        </select>
      </label>
      {data && data.length === 0 ? (
        <p>{words.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{words.job}</th>
              <th>{words.queue}</th>
              <th>{words.state}</th>
              <th>{words.attempts}</th>
              <th>{words.created}</th>
              <th>{words.error}</th>
              <th>{words.actions}</th>
            </tr>
          </thead>
          <tbody>
            {data?.map((job) => (
              <tr key={job.id} data-job-id={job.id}>
                <td>
                  {job.name}
                  <br />
                  <span class="muted">{job.id}</span>
                </td>
                <td>{job.queue}</td>
                <td>{job.state}</td>
                <td>
                  {job.attempts}/{job.maxAttempts}
                </td>
                <td>{when(job.createdAt)}</td>
                <td>
                  <pre>{errorText(job.error)}</pre>
                </td>
                <td>
                  {(job.state === 'failed' || job.state === 'cancelled') && (
                    <button
                      type="button"
                      aria-label={`${words.retry} ${job.name} ${job.id}`}
                      onClick={() =>
                        void run(
                          () => api(`${base}/${job.id}/retry`, { method: 'POST', orgId }),
                          format(words.retried, { id: job.id }),
                        )
                      }
                    >
                      {words.retry}
                    </button>
                  )}
                  {(WAITING.has(job.state) || job.state === 'active') && (
                    <button
                      type="button"
                      aria-label={`${words.cancel} ${job.name} ${job.id}`}
                      onClick={() =>
                        void run(() => api(`${base}/${job.id}/cancel`, { method: 'POST', orgId }))
                      }
                    >
                      {words.cancel}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
