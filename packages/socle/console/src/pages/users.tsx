import { useRef, useState } from 'preact/hooks';
import { api } from '../api.js';
import { format } from '../i18n.js';
import {
  describeError,
  ListTable,
  Messages,
  type PageProps,
  Pager,
  TextField,
  useLoad,
  useWords,
  when,
} from '../shared.js';

interface Account {
  id: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  twoFactor: boolean;
  activeSessions: number;
  createdAt: string;
}

/**
 * Every account (operator token: `GET /operator/users`), searched and page by page; export one
 * (`POST /operator/users/:id/export`) or erase one after typing its email again
 * (`POST /operator/users/:id/erase`). Both are audited by the API.
 */
export function Users({ context }: PageProps) {
  const words = useWords();
  const [draft, setDraft] = useState('');
  const [search, setSearch] = useState('');
  const [after, setAfter] = useState<string | undefined>(undefined);
  const [target, setTarget] = useState<Account | undefined>(undefined);
  const [typed, setTyped] = useState('');
  const [eraseError, setEraseError] = useState<string | undefined>(undefined);
  const [sessionsOf, setSessionsOf] = useState<Account | undefined>(undefined);
  const dialog = useRef<HTMLDialogElement>(null);
  const { data, error, notice, run } = useLoad(async () => {
    if (!context.operator) return undefined;
    const params = new URLSearchParams({ limit: '50' });
    if (search) params.set('search', search);
    if (after) params.set('after', after);
    return api<{ users: Account[]; next: string | null }>(`/operator/users?${params}`);
  }, [context.operator, search, after]);
  if (!context.operator) return <p>{words.operatorTokenNeeded}</p>;

  const erase = async (event: Event) => {
    event.preventDefault();
    if (target === undefined) return;
    const who = target.email;
    try {
      await api(`/operator/users/${target.id}/erase`, { method: 'POST', body: { confirmEmail: typed } });
      dialog.current?.close();
      setTarget(undefined);
      await run(async () => undefined, format(words.erasedUser, { who }));
    } catch (failure) {
      setEraseError(describeError(failure));
    }
  };
  return (
    <>
      <form
        class="inline"
        onSubmit={(event) => {
          event.preventDefault();
          setAfter(undefined);
          setSearch(draft.trim());
        }}
      >
        <TextField
          label={words.searchUsers}
          type="search"
          name="userSearch"
          value={draft}
          onValue={setDraft}
        />
        <button type="submit">{words.search}</button>
      </form>
      <Messages error={error} notice={notice} />
      <ListTable
        rows={data?.users}
        headers={[
          words.email,
          words.name,
          words.emailVerified,
          words.twoFactor,
          words.activeSessions,
          words.created,
          words.actions,
        ]}
      >
        {data?.users.map((user) => (
          <tr key={user.id} data-user-id={user.id}>
            <td>{user.email}</td>
            <td>{user.name ?? ''}</td>
            <td>{user.emailVerified ? words.yes : words.no}</td>
            <td>{user.twoFactor ? words.yes : words.no}</td>
            <td>{user.activeSessions}</td>
            <td>{when(user.createdAt)}</td>
            <td>
              <button
                type="button"
                aria-label={`${words.export} ${user.email}`}
                onClick={() =>
                  void run(
                    () => api<string>(`/operator/users/${user.id}/export`, { method: 'POST', text: true }),
                    (archive) =>
                      format(words.exportedUser, {
                        who: user.email,
                        size: new TextEncoder().encode(archive).length,
                      }),
                  )
                }
              >
                {words.export}
              </button>{' '}
              <button
                type="button"
                aria-label={format(words.sessionsOf, { who: user.email })}
                aria-pressed={sessionsOf?.id === user.id}
                onClick={() => setSessionsOf(user)}
              >
                {words.sessions}
              </button>{' '}
              <button
                type="button"
                class="danger"
                aria-label={`${words.eraseUser} ${user.email}`}
                onClick={() => {
                  setTarget(user);
                  setTyped('');
                  setEraseError(undefined);
                  dialog.current?.showModal();
                }}
              >
                {words.eraseUser}
              </button>
            </td>
          </tr>
        ))}
      </ListTable>
      <Pager after={after} next={data?.next} onAfter={setAfter} />
      {sessionsOf && <AccountSessions key={sessionsOf.id} account={sessionsOf} />}
      <dialog ref={dialog} aria-labelledby="erase-user-title">
        <form onSubmit={erase}>
          <h3 id="erase-user-title">{format(words.eraseTitle, { who: target?.email ?? '' })}</h3>
          <p>{words.eraseWarning}</p>
          <TextField
            label={words.eraseConfirmLabel}
            name="confirmUserEmail"
            value={typed}
            onValue={setTyped}
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
              disabled={!target || typed.trim().toLowerCase() !== target.email.toLowerCase()}
            >
              {words.eraseUser}
            </button>
          </p>
        </form>
      </dialog>
    </>
  );
}

interface Session {
  id: string;
  createdAt: string;
  lastRefreshedAt: string;
  expiresAt: string;
  userAgent: string | null;
  ip: string | null;
}

/**
 * Another account's live sessions (`GET /operator/users/:id/sessions`); revoking one
 * (`DELETE /operator/users/:userId/sessions/:id`, audited) asks for a confirmation first.
 */
function AccountSessions({ account }: { account: Account }) {
  const words = useWords();
  const { data, error, notice, run } = useLoad(
    () => api<{ sessions: Session[] }>(`/operator/users/${account.id}/sessions`),
    [account.id],
  );
  const title = format(words.sessionsOf, { who: account.email });
  return (
    <section aria-label={title}>
      <h3>{title}</h3>
      <Messages error={error} notice={notice} />
      <ListTable
        rows={data?.sessions}
        headers={[words.created, words.lastUsed, words.expires, words.client, words.actions]}
      >
        {data?.sessions.map((session) => (
          <tr key={session.id} data-session-id={session.id}>
            <td>{when(session.createdAt)}</td>
            <td>{when(session.lastRefreshedAt)}</td>
            <td>{when(session.expiresAt)}</td>
            <td>
              {session.userAgent ?? ''} {session.ip ?? ''}
            </td>
            <td>
              <button
                type="button"
                class="danger"
                aria-label={`${words.revoke} ${session.userAgent ?? ''} ${session.id}`}
                onClick={() => {
                  if (!confirm(format(words.confirmRevokeSession, { who: account.email }))) return;
                  void run(
                    () => api(`/operator/users/${account.id}/sessions/${session.id}`, { method: 'DELETE' }),
                    format(words.revokedSession, { who: account.email }),
                  );
                }}
              >
                {words.revoke}
              </button>
            </td>
          </tr>
        ))}
      </ListTable>
    </section>
  );
}
