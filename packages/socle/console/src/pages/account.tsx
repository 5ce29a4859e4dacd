import { useRef, useState } from 'preact/hooks';
import { api, clearCredentials } from '../api.js';
import { format } from '../i18n.js';
import {
  describeError,
  ListTable,
  Messages,
  type PageProps,
  TextField,
  useLoad,
  useWords,
  when,
} from '../shared.js';

interface User {
  id: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  createdAt: string;
}
interface Session {
  id: string;
  current: boolean;
  createdAt: string;
  lastRefreshedAt: string;
  userAgent: string | null;
  ip: string | null;
}

/** The signed-in account: profile, sessions (revoke), export, erase after a typed confirmation. */
export function Account({ context }: PageProps) {
  const words = useWords();
  const dialog = useRef<HTMLDialogElement>(null);
  const [typed, setTyped] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [eraseError, setEraseError] = useState<string | undefined>(undefined);
  const { data, error, notice, run } = useLoad(
    async () =>
      context.user
        ? { me: await api<User>('/me'), sessions: await api<Session[]>('/auth/sessions') }
        : undefined,
    [context.user],
  );
  if (!context.user) return <p>{words.operatorOnly}</p>;
  const erase = async (event: Event) => {
    event.preventDefault();
    try {
      await api('/me/erase', { method: 'POST', body: { password, ...(code ? { code } : {}) } });
      dialog.current?.close();
      clearCredentials();
      alert(words.erased);
      await context.signOut();
    } catch (failure) {
      setEraseError(describeError(failure));
    }
  };
  const me = data?.me;
  return (
    <>
      <Messages error={error} notice={notice} />
      {me && (
        <dl>
          <dt>{words.email}</dt>
          <dd>{me.email}</dd>
          <dt>{words.name}</dt>
          <dd>{me.name ?? '—'}</dd>
          <dt>{words.emailVerified}</dt>
          <dd>{me.emailVerified ? words.yes : words.no}</dd>
          <dt>{words.created}</dt>
          <dd>{when(me.createdAt)}</dd>
        </dl>
      )}
      <h3>{words.sessions}</h3>
      <ListTable rows={data?.sessions} headers={[words.created, words.lastUsed, words.client, words.actions]}>
        {data?.sessions.map((session) => (
          <tr key={session.id}>
            <td>
              {when(session.createdAt)} {session.current && <strong>({words.current})</strong>}
            </td>
            <td>{when(session.lastRefreshedAt)}</td>
            <td>
              {session.userAgent ?? ''} {session.ip ?? ''}
            </td>
            <td>
              {!session.current && (
                <button
                  type="button"
                  onClick={() => void run(() => api(`/auth/sessions/${session.id}`, { method: 'DELETE' }))}
                >
                  {words.revoke}
                </button>
              )}
            </td>
          </tr>
        ))}
      </ListTable>
      <p>
        <button
          type="button"
          onClick={() =>
            void run(
              () => api<string>('/me/export', { text: true }),
              (archive) => format(words.exported, { size: new TextEncoder().encode(archive).length }),
            )
          }
        >
          {words.exportData}
        </button>{' '}
        <button
          type="button"
          class="danger"
          onClick={() => {
            setTyped('');
            setPassword('');
            setEraseError(undefined);
            dialog.current?.showModal();
          }}
        >
          {words.erase}
        </button>
      </p>
      <dialog ref={dialog} aria-labelledby="erase-title">
        <form onSubmit={erase}>
          <h3 id="erase-title">{format(words.eraseTitle, { who: me?.email ?? '' })}</h3>
          <p>{words.eraseWarning}</p>
          <TextField label={words.eraseConfirmLabel} name="confirmEmail" value={typed} onValue={setTyped} />
          <TextField
            label={words.password}
            name="erasePassword"
            type="password"
            autocomplete="current-password"
            value={password}
            onValue={setPassword}
          />
          <TextField
            label={words.eraseCode}
            name="eraseCode"
            autocomplete="one-time-code"
            value={code}
            onValue={setCode}
          />
          {eraseError && (
            <p class="error" role="alert">
              {eraseError}
            </p>
          )}
          <p>
            <button type="button" onClick={() => dialog.current?.close()}>
              {words.cancel}
            </button>{' '}
            <button
              type="submit"
              class="danger"
              disabled={!me || typed.trim().toLowerCase() !== me.email.toLowerCase() || !password}
            >
              {words.erase}
            </button>
          </p>
        </form>
      </dialog>
    </>
  );
}
