import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Messages, type PageProps, useLoad, useWords, when } from '../shared.js';

interface AuditEvent {
  id: string;
  tenantId: string | null;
  occurredAt: string;
  actorUserId: string | null;
  actorApiKeyId: string | null;
  actorOperator: boolean;
  action: string;
  target: Record<string, string> | null;
  changedFields: string[];
  status: number;
  ip: string | null;
}
interface Filters {
  /** The operator's listing only: one organization's events. */
  org: string;
  actor: string;
  action: string;
  since: string;
  until: string;
}
const EMPTY: Filters = { org: '', actor: '', action: '', since: '', until: '' };

function query(filters: Filters, cursor: string | undefined): string {
  const params = new URLSearchParams({ limit: '50' });
  if (filters.org) params.set('org', filters.org.trim());
  if (filters.actor) params.set('actor', filters.actor);
  if (filters.action) params.set('action', filters.action);
  if (filters.since) params.set('since', new Date(filters.since).toISOString());
  if (filters.until) params.set('until', new Date(filters.until).toISOString());
  if (cursor) params.set('cursor', cursor);
  return params.toString();
}

/**
 * The audit log, newest first, with filters and pages: with the operator token, every
 * organization's and those of none (`GET /operator/audit-events`, filtered by organization too);
 * else the current organization's (`GET /org/audit-events`, its admins).
 */
export function Audit({ context }: PageProps) {
  const words = useWords();
  const operator = context.operator;
  const orgId = context.orgId;
  const [draft, setDraft] = useState<Filters>(EMPTY);
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const { data, error } = useLoad(async () => {
    type Page = { events: AuditEvent[]; nextCursor: string | null };
    if (operator) return api<Page>(`/operator/audit-events?${query(filters, cursor)}`);
    if (orgId === undefined) return undefined;
    return api<Page>(`/org/audit-events?${query({ ...filters, org: '' }, cursor)}`, { orgId });
  }, [operator, orgId, filters, cursor]);
  if (!operator && orgId === undefined) return <p>{words.noOrganization}</p>;
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
      {operator && <p class="muted">{words.everyOrganizationAudit}</p>}
      <form
        class="inline"
        onSubmit={(event) => {
          event.preventDefault();
          setCursor(undefined);
          setFilters(draft);
        }}
      >
        {operator && field('org', words.organizationId)}
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
              {operator && <th>{words.organization}</th>}
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
                {operator && <td>{event.tenantId ?? '—'}</td>}
                <td>
                  {event.actorOperator
                    ? [words.theOperator, event.actorUserId].filter(Boolean).join(' · ')
                    : (event.actorUserId ?? event.actorApiKeyId ?? '—')}
                </td>
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
