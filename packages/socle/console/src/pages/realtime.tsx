import { useEffect, useState } from 'preact/hooks';
import { api } from '../api.js';
import { format } from '../i18n.js';
import type { LiveFeed } from '../live.js';
import { describeError, Messages, type PageProps, Pager, useLoad, useWords, when } from '../shared.js';

interface App {
  id: string;
  /** The operator's listing only: the organization the app belongs to. */
  orgId?: string;
  name: string;
  key: string;
  webhookUrl: string | null;
  createdAt: string;
  [limit: string]: unknown;
}
interface Activity {
  connections: number;
  channels: {
    name: string;
    subscriptions: number;
    memberCount?: number;
    members?: { userId: string; userInfo?: unknown }[];
  }[];
  truncated: boolean;
}
interface Job {
  id: string;
  name: string;
  state: string;
  attempts: number;
  maxAttempts: number;
  error: unknown;
  createdAt: string;
}
/** How often the activity of the app watched is read again when nothing pushes its changes. */
const ACTIVITY_REFRESH_MS = 2000;

/**
 * Where the page reads: the operator's routes (every organization's apps, the operator token), or
 * the current organization's (its admins, `X-Org-Id`).
 */
interface Source {
  readonly orgId: string | undefined;
  readonly activity: (appId: string) => string;
  readonly jobs: string;
}
const operatorSource: Source = {
  orgId: undefined,
  activity: (appId) => `/operator/realtime/apps/${appId}/activity`,
  jobs: '/operator/jobs?limit=200',
};
const orgSource = (orgId: string): Source => ({
  orgId,
  activity: (appId) => `/realtime/apps/${appId}/activity`,
  jobs: '/org/jobs?limit=200',
});

/**
 * The realtime apps: every organization's with the operator token (GET /operator/realtime/apps),
 * else the current organization's (GET /realtime/apps, admins); the activity of the one watched
 * (connections, channels, presence members), read again when the live feed says it changed, else
 * every 2 s; its webhook deliveries (the `realtime.deliverWebhook` jobs).
 */
export function Realtime({ context }: PageProps) {
  const words = useWords();
  const operator = context.operator;
  const orgId = context.orgId;
  const [watched, setWatched] = useState<string | undefined>(undefined);
  const [after, setAfter] = useState<string | undefined>(undefined);
  const { data: page, error } = useLoad(async () => {
    if (operator) {
      const params = new URLSearchParams({ limit: '50' });
      if (after) params.set('after', after);
      return api<{ apps: App[]; next: string | null }>(`/operator/realtime/apps?${params}`);
    }
    return orgId === undefined
      ? undefined
      : { apps: await api<App[]>('/realtime/apps', { orgId }), next: null };
  }, [operator, orgId, after]);
  if (!operator && orgId === undefined) return <p>{words.noOrganization}</p>;
  const source = operator ? operatorSource : orgSource(orgId as string);
  const data = page?.apps;
  const current = data?.find((app) => app.id === (watched ?? data[0]?.id));
  return (
    <>
      <Messages error={error} />
      <h3>{words.apps}</h3>
      {operator && <p class="muted">{words.everyOrganizationApps}</p>}
      {data && data.length === 0 ? (
        <p>{words.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{words.name}</th>
              {operator && <th>{words.organization}</th>}
              <th>Id</th>
              <th>{words.key}</th>
              <th>{words.webhook}</th>
              <th>{words.created}</th>
              <th>{words.actions}</th>
            </tr>
          </thead>
          <tbody>
            {data?.map((app) => (
              <tr key={app.id} aria-selected={app.id === current?.id}>
                <td>{app.name}</td>
                {operator && <td>{app.orgId}</td>}
                <td>{app.id}</td>
                <td>{app.key}</td>
                <td>{app.webhookUrl ?? '—'}</td>
                <td>{when(app.createdAt)}</td>
                <td>
                  <button
                    type="button"
                    aria-label={`${words.watch} ${app.name}`}
                    aria-pressed={app.id === current?.id}
                    onClick={() => setWatched(app.id)}
                  >
                    {words.watch}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager after={after} next={page?.next} onAfter={setAfter} />
      {current && <AppActivity key={current.id} source={source} app={current} live={context.live} />}
      {current && <WebhookDeliveries source={source} />}
    </>
  );
}

function AppActivity({ source, app, live }: { source: Source; app: App; live: LiveFeed | undefined }) {
  const words = useWords();
  const [activity, setActivity] = useState<Activity | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    let open = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let reading = false;
    let again = false;
    const read = async () => {
      // One read at a time; a change pushed meanwhile is read once this one is done.
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        const next = await api<Activity>(source.activity(app.id), { orgId: source.orgId });
        if (open) {
          setActivity(next);
          setError(undefined);
        }
      } catch (failure) {
        if (open) setError(describeError(failure));
      }
      reading = false;
      if (again) {
        again = false;
        void read();
      } else if (open && live === undefined) timer = setTimeout(read, ACTIVITY_REFRESH_MS);
    };
    void read();
    const stopListening = live?.listen((event, data) => {
      const apps = event === 'realtime' ? (data as { apps?: { appId: string }[] }).apps : undefined;
      if (apps?.some((changed) => changed.appId === app.id)) void read();
    });
    return () => {
      open = false;
      stopListening?.();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [source.orgId, app.id, live]);
  return (
    <section aria-labelledby="activity-title">
      <h3 id="activity-title">{format(words.activityOf, { name: app.name })}</h3>
      <p class="muted">{live ? words.updatedLive : words.refreshedEvery}</p>
      <Messages error={error} />
      {activity && (
        <>
          <p>
            {words.connections}: <strong data-testid="connections">{activity.connections}</strong>
          </p>
          {activity.channels.length === 0 ? (
            <p>{words.noChannels}</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>{words.channel}</th>
                  <th>{words.subscriptions}</th>
                  <th>{words.presenceMembers}</th>
                </tr>
              </thead>
              <tbody>
                {activity.channels.map((channel) => (
                  <tr key={channel.name}>
                    <td>{channel.name}</td>
                    <td>{channel.subscriptions}</td>
                    <td>
                      {channel.members === undefined ? (
                        '—'
                      ) : (
                        <ul aria-label={format(words.membersOf, { channel: channel.name })}>
                          {channel.members.map((member) => (
                            <li key={member.userId}>
                              {member.userId}
                              {member.userInfo === undefined ? '' : ` ${JSON.stringify(member.userInfo)}`}
                            </li>
                          ))}
                        </ul>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {activity.truncated && <p class="muted">{words.truncated}</p>}
        </>
      )}
    </section>
  );
}

/** Webhook deliveries are jobs (`realtime.deliverWebhook`): the organization's, or every one's for the operator. */
function WebhookDeliveries({ source }: { source: Source }) {
  const words = useWords();
  const { data, error } = useLoad(async () => {
    const { jobs } = await api<{ jobs: Job[] }>(source.jobs, { orgId: source.orgId });
    return jobs.filter((job) => job.name === 'realtime.deliverWebhook');
  }, [source.jobs, source.orgId]);
  return (
    <section aria-labelledby="deliveries-title">
      <h3 id="deliveries-title">{words.webhookDeliveries}</h3>
      <Messages error={error} />
      {data && data.length === 0 ? (
        <p>{words.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{words.job}</th>
              <th>{words.state}</th>
              <th>{words.attempts}</th>
              <th>{words.created}</th>
              <th>{words.error}</th>
            </tr>
          </thead>
          <tbody>
            {data?.map((job) => (
              <tr key={job.id}>
                <td>{job.id}</td>
                <td>{job.state}</td>
                <td>
                  {job.attempts}/{job.maxAttempts}
                </td>
                <td>{when(job.createdAt)}</td>
                <td>{job.error == null ? '' : JSON.stringify(job.error)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
