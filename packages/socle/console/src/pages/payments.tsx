import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { format } from '../i18n.js';
import { ListTable, Messages, type PageProps, TextField, useLoad, useWords, when } from '../shared.js';

interface PaymentEvent {
  provider: string;
  eventId: string;
  orgId: string;
  paymentId: string | null;
  type: string;
  status: 'applied' | 'failed';
  outcome: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  failedAttempts: number;
  firstSeenAt: string;
  lastSeenAt: string;
}
interface RetryResult {
  status: 'applied' | 'failed';
  outcome?: string;
  errorMessage?: string;
}
interface Filter {
  provider: string;
  status: '' | 'applied' | 'failed';
  /** yyyy-mm-dd, the browser's day. */
  since: string;
  until: string | undefined;
}

/**
 * Payment provider events (the payments module, when loaded): every organization's with the
 * operator token (`/operator/payments/events`), else the current organization's
 * (`/org/payments/events`, admins); filtered by provider, status and day; a failed one can be
 * retried (`POST …/events/{provider}/{eventId}/retry`, audited).
 */
export function Payments({ context }: PageProps) {
  const words = useWords();
  const base = context.operator ? '/operator/payments/events' : '/org/payments/events';
  const orgId = context.operator ? undefined : context.orgId;
  const usable = context.operator || orgId !== undefined;
  const [draft, setDraft] = useState<Filter>({ provider: '', status: '', since: '', until: undefined });
  const [filter, setFilter] = useState<Filter>(draft);
  const { data, error, notice, run, reload } = useLoad(async () => {
    if (!usable) return undefined;
    const query = new URLSearchParams();
    if (filter.provider.trim()) query.set('provider', filter.provider.trim());
    if (filter.status) query.set('status', filter.status);
    if (filter.since) query.set('since', new Date(`${filter.since}T00:00:00`).toISOString());
    if (filter.until) query.set('until', filter.until);
    const options = orgId === undefined ? {} : { orgId };
    return api<{ events: PaymentEvent[]; nextUntil: string | null }>(`${base}?${query}`, options);
  }, [base, orgId, filter]);
  // Pushed by the live feed (the operator's, or the organization's own): an event received,
  // applied or failed is read again without a reload; without the feed, the page reads when asked.
  const live = context.live;
  useEffect(() => live?.listen((event) => event === 'payments' && reload()), [live, reload]);
  if (!usable) return <p>{words.noOrganization}</p>;

  const retry = (event: PaymentEvent) =>
    run(
      () =>
        api<RetryResult>(
          `${base}/${encodeURIComponent(event.provider)}/${encodeURIComponent(event.eventId)}/retry`,
          { method: 'POST', ...(orgId === undefined ? {} : { orgId }) },
        ),
      (result) =>
        result.status === 'applied'
          ? format(words.retriedApplied, { id: event.eventId, outcome: result.outcome ?? '' })
          : format(words.retriedFailed, { id: event.eventId, error: result.errorMessage ?? '' }),
    );
  return (
    <section aria-labelledby="payment-events-title">
      <h3 id="payment-events-title">{words.paymentEvents}</h3>
      <p class="muted">
        {words.paymentsHint} {live ? words.updatedLive : ''}
      </p>
      <form
        class="inline"
        onSubmit={(event) => {
          event.preventDefault();
          setFilter({ ...draft, until: undefined });
        }}
      >
        <TextField
          label={words.provider}
          name="provider"
          value={draft.provider}
          onValue={(provider) => setDraft({ ...draft, provider })}
        />
        <label>
          <span>{words.status}</span>
          <select
            name="status"
            value={draft.status}
            onChange={(event) =>
              setDraft({ ...draft, status: event.currentTarget.value as Filter['status'] })
            }
          >
            <option value="">{words.anyStatus}</option>
            <option value="applied">{words.applied}</option>
            <option value="failed">{words.failed}</option>
          </select>
        </label>
        <label>
          <span>{words.seenSince}</span>
          <input
            type="date"
            name="since"
            value={draft.since}
            onInput={(event) => setDraft({ ...draft, since: event.currentTarget.value })}
          />
        </label>
        <button type="submit">{words.filter}</button>
      </form>
      <Messages error={error} notice={notice} />
      <ListTable
        rows={data?.events}
        caption={words.paymentEvents}
        headers={[
          words.event,
          words.provider,
          words.type,
          ...(context.operator ? [words.organization] : []),
          words.status,
          words.result,
          words.failedAttempts,
          words.firstSeen,
          words.lastSeen,
          words.actions,
        ]}
      >
        {data?.events.map((event) => (
          <tr key={`${event.provider}:${event.eventId}`} data-event-id={event.eventId}>
            <td>
              {event.eventId}
              {event.paymentId && (
                <>
                  <br />
                  <span class="muted">{event.paymentId}</span>
                </>
              )}
            </td>
            <td>{event.provider}</td>
            <td>{event.type}</td>
            {context.operator && <td class="muted">{event.orgId}</td>}
            <td class={event.status === 'failed' ? 'error' : undefined}>
              {event.status === 'failed' ? words.failed : words.applied}
            </td>
            <td>
              {event.status === 'applied'
                ? event.outcome
                : `${event.errorMessage ?? ''} (${event.errorCode ?? ''})`}
            </td>
            <td>{event.failedAttempts}</td>
            <td>{when(event.firstSeenAt)}</td>
            <td>{when(event.lastSeenAt)}</td>
            <td>
              {event.status === 'failed' && (
                <button
                  type="button"
                  aria-label={format(words.retryEvent, { id: event.eventId })}
                  onClick={() => void retry(event)}
                >
                  {words.retry}
                </button>
              )}
            </td>
          </tr>
        ))}
      </ListTable>
      {data?.nextUntil && (
        <button type="button" onClick={() => setFilter({ ...filter, until: data.nextUntil ?? undefined })}>
          {words.morePayments}
        </button>
      )}
    </section>
  );
}
