import { useState } from 'preact/hooks';
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
const STATES = ['created', 'retry', 'active', 'completed', 'cancelled', 'failed'] as const;
const WAITING = new Set(['created', 'retry']);

function errorText(error: unknown): string {
  if (error == null) return '';
  if (typeof error === 'object' && 'message' in error) return String((error as { message: unknown }).message);
  return JSON.stringify(error);
}

/**
 * Every job with the operator token (`/operator/jobs`), else the current organization's
 * (`/org/jobs`). Queue depth and age are counted from the waiting jobs listed (at most 200).
 */
export function Jobs({ context }: PageProps) {
  const words = useWords();
  const [state, setState] = useState<string>('failed');
  const base = context.operator ? '/operator/jobs' : '/org/jobs';
  const orgId = context.operator ? undefined : context.orgId;
  const usable = context.operator || orgId !== undefined;
  const { data, error, notice, run } = useLoad(async () => {
    if (!usable) return undefined;
    const [listed, waiting, running] = await Promise.all([
      api<{ jobs: Job[] }>(`${base}?limit=200${state ? `&state=${state}` : ''}`, { orgId }),
      Promise.all(
        ['created', 'retry'].map((s) => api<{ jobs: Job[] }>(`${base}?limit=200&state=${s}`, { orgId })),
      ),
      api<{ jobs: Job[] }>(`${base}?limit=200&state=active`, { orgId }),
    ]);
    const queues = new Map<string, { depth: number; oldest: string; running: number }>();
    for (const job of [...waiting.flatMap((page) => page.jobs), ...running.jobs]) {
      const entry = queues.get(job.queue) ?? { depth: 0, oldest: job.createdAt, running: 0 };
      if (WAITING.has(job.state)) {
        entry.depth += 1;
        if (job.createdAt < entry.oldest) entry.oldest = job.createdAt;
      } else entry.running += 1;
      queues.set(job.queue, entry);
    }
    return { jobs: listed.jobs, queues: [...queues.entries()] };
  }, [state, base, orgId]);
  if (!usable) return <p>{words.operatorOnly}</p>;
  return (
    <>
      <p class="muted">
        {context.operator
          ? words.operatorScope
          : format(words.orgScope, { name: context.organization?.name ?? '' })}
      </p>
      <Messages error={error} notice={notice} />
      <h3>{words.queues}</h3>
      <table>
        <thead>
          <tr>
            <th>{words.queue}</th>
            <th>{words.depth}</th>
            <th>{words.oldest}</th>
            <th>{words.running}</th>
          </tr>
        </thead>
        <tbody>
          {data?.queues.map(([queue, entry]) => (
            <tr key={queue}>
              <td>{queue}</td>
              <td>{entry.depth}</td>
              <td>{entry.depth > 0 ? when(entry.oldest) : '—'}</td>
              <td>{entry.running}</td>
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
      {data && data.jobs.length === 0 ? (
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
            {data?.jobs.map((job) => (
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
