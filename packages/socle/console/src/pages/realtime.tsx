import { api } from '../api.js';
import { Messages, type PageProps, useLoad, useWords, when } from '../shared.js';

interface App {
  id: string;
  name: string;
  key: string;
  webhookUrl: string | null;
  createdAt: string;
  [limit: string]: unknown;
}

/** The current organization's realtime apps (GET /realtime/apps, admins). */
export function Realtime({ context }: PageProps) {
  const words = useWords();
  const orgId = context.orgId;
  const { data, error } = useLoad(
    async () => (orgId === undefined ? undefined : api<App[]>('/realtime/apps', { orgId })),
    [orgId],
  );
  if (orgId === undefined) return <p>{words.noOrganization}</p>;
  return (
    <>
      <Messages error={error} />
      <h3>{words.apps}</h3>
      {data && data.length === 0 ? (
        <p>{words.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{words.name}</th>
              <th>Id</th>
              <th>{words.key}</th>
              <th>{words.webhook}</th>
              <th>{words.created}</th>
            </tr>
          </thead>
          <tbody>
            {data?.map((app) => (
              <tr key={app.id}>
                <td>{app.name}</td>
                <td>{app.id}</td>
                <td>{app.key}</td>
                <td>{app.webhookUrl ?? '—'}</td>
                <td>{when(app.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
