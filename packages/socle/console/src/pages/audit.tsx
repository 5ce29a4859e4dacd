import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Messages, type PageProps, useLoad, useWords, when } from '../shared.js';

interface AuditEvent {
  id: string;
  occurredAt: string;
  actorUserId: string | null;
  actorApiKeyId: string | null;
  action: string;
  target: Record<string, string> | null;
  changedFields: string[];
  status: number;
  ip: string | null;
}
interface Filters {
  actor: string;
  action: string;
  since: string;
  until: string;
}
const EMPTY: Filters = { actor: '', action: '', since: '', until: '' };

function query(filters: Filters, cursor: string | undefined): string {
  const params = new URLSearchParams({ limit: '50' });
  if (filters.actor) params.set('actor', filters.actor);
  if (filters.action) params.set('action', filters.action);
  if (filters.since) params.set('since', new Date(filters.since).toISOString());
  if (filters.until) params.set('until', new Date(filters.until).toISOString());
  if (cursor) params.set('cursor', cursor);
  return params.toString();
}

/** The current organization's audit log, newest first, with filters and pages. */
export function Audit({ context }: PageProps) {
  const words = useWords();
  const orgId = context.orgId;
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const { data, error } = useLoad(
    async () =>
      orgId === undefined
        ? undefined
        : api<{ events: AuditEvent[]; nextCursor: string | null }>(
            `/org/audit-events?${query(filters, cursor)}`,
            {
              orgId,
            },
          ),
    [orgId, filters, cursor],
  );
  if (orgId === undefined) return <p>{words.noOrganization}</p>;
  const field = (name: keyof Filters, label: string) => {
    const onInput = (event: { currentTarget: HTMLInputElement }) =>
      setDraft({ ...draft, [name]: event.currentTarget.value });
    const id = `audit-${name}`;
    return (
      <div class="field">
        <label for={id}>{label}</label>
        {name === 'since' || name === 'until' ? (
          <input id={id} name={name} type="datetime-local" value={draft[name]} onInput={onInput} />
        ) : (
          <input id={id} name={name} type="text" value={draft[name]} onInput={onInput} />
        )}
      </div>
    );
  };
  return (
    <>
      <form
        class="inline"
        onSubmit={(event) => {
          event.preventDefault();
          setCursor(undefined);
          setFilters(draft);
        }}
      >
        {field('actor', words.actor)}
        {field('action', words.action)}
        {field('since', words.since)}
        {field('until', words.until)}
        <button type="submit">{words.filter}</button>
      </form>
      <Messages error={error} />
      {data && data.events.length === 0 ? (
        <p>{words.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{words.when}</th>
              <th>{words.actor}</th>
              <th>{words.action}</th>
              <th>{words.target}</th>
              <th>{words.fields}</th>
              <th>{words.status}</th>
            </tr>
          </thead>
          <tbody>
            {data?.events.map((event) => (
              <tr key={event.id}>
                <td>{when(event.occurredAt)}</td>
                <td>{event.actorUserId ?? event.actorApiKeyId ?? '—'}</td>
                <td>{event.action}</td>
                <td>
                  {event.target
                    ? Object.entries(event.target)
                        .map(([k, v]) => `${k}=${v}`)
                        .join(' ')
                    : ''}
                </td>
                <td>{event.changedFields.join(', ')}</td>
                <td>{event.status}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {data?.nextCursor && (
        <button type="button" onClick={() => setCursor(data.nextCursor ?? undefined)}>
          {words.more}
        </button>
      )}
    </>
  );
}
