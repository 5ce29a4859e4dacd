import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { format } from '../i18n.js';
import { ListTable, Messages, type PageProps, Pager, TextField, useLoad, useWords, when } from '../shared.js';

interface Member {
  userId: string;
  email: string;
  name: string | null;
  role: string;
  joinedAt: string;
}
interface Invitation {
  id: string;
  email: string;
  role: string;
  expiresAt: string;
}
const GRANTABLE = ['admin', 'member', 'viewer'] as const;

/** The organizations of the signed-in account, then the chosen one's members and invitations. */
export function Organizations({ context }: PageProps) {
  const words = useWords();
  const [query, setQuery] = useState('');
  const found = context.organizations.filter((org) =>
    `${org.name} ${org.slug}`.toLowerCase().includes(query.trim().toLowerCase()),
  );
  return (
    <>
      <TextField label={words.search} type="search" name="search" value={query} onValue={setQuery} />
      <ListTable rows={found} headers={[words.name, words.slug, words.role, words.created, words.actions]}>
        {found.map((org) => (
          <tr key={org.id} aria-selected={org.id === context.orgId}>
            <td>{org.name}</td>
            <td>{org.slug}</td>
            <td>{org.role}</td>
            <td>{when(org.createdAt)}</td>
            <td>
              <button
                type="button"
                onClick={() => context.selectOrg(org.id)}
                aria-label={`${words.open} ${org.name}`}
              >
                {words.open}
              </button>
            </td>
          </tr>
        ))}
      </ListTable>
      {context.orgId && context.organization && (
        <Members key={context.orgId} source={adminSource(context.orgId)} name={context.organization.name} />
      )}
      {context.operator && <EveryOrganization context={context} />}
    </>
  );
}

interface OrganizationSummary {
  id: string;
  name: string;
  slug: string;
  members: number;
  createdAt: string;
}

/** Every organization of the server (operator token: `GET /operator/organizations`), page by page. */
function EveryOrganization({ context }: PageProps) {
  const words = useWords();
  const [draft, setDraft] = useState('');
  const [search, setSearch] = useState('');
  const [after, setAfter] = useState<string | undefined>(undefined);
  const [shown, setShown] = useState<OrganizationSummary | undefined>(undefined);
  const { data, error } = useLoad(async () => {
    const params = new URLSearchParams({ limit: '50' });
    if (search) params.set('search', search);
    if (after) params.set('after', after);
    return api<{ organizations: OrganizationSummary[]; next: string | null }>(
      `/operator/organizations?${params}`,
    );
  }, [search, after]);
  return (
    <section aria-labelledby="every-organization-title">
      <h3 id="every-organization-title">{words.everyOrganization}</h3>
      <form
        class="inline"
        onSubmit={(event) => {
          event.preventDefault();
          setAfter(undefined);
          setSearch(draft.trim());
        }}
      >
        <TextField
          label={words.searchEveryOrganization}
          type="search"
          name="organizationSearch"
          value={draft}
          onValue={setDraft}
        />
        <button type="submit">{words.search}</button>
      </form>
      <Messages error={error} />
      <ListTable
        rows={data?.organizations}
        headers={[words.name, words.slug, words.members, words.created, words.actions]}
      >
        {data?.organizations.map((org) => (
          <tr key={org.id}>
            <td>{org.name}</td>
            <td>{org.slug}</td>
            <td>{org.members}</td>
            <td>{when(org.createdAt)}</td>
            <td>
              {context.organizations.some((mine) => mine.id === org.id) ? (
                <button
                  type="button"
                  onClick={() => context.selectOrg(org.id)}
                  aria-label={`${words.open} ${org.name}`}
                >
                  {words.open}
                </button>
              ) : (
                <span class="muted">{words.notAMember}</span>
              )}{' '}
              <button
                type="button"
                aria-label={format(words.membersOfOrganization, { name: org.name })}
                aria-pressed={shown?.id === org.id}
                onClick={() => setShown(org)}
              >
                {words.members}
              </button>
            </td>
          </tr>
        ))}
      </ListTable>
      <Pager after={after} next={data?.next} onAfter={setAfter} />
      {shown && <OperatorMembers key={shown.id} organization={shown} />}
    </section>
  );
}

/**
 * Where the members and invitations of an organization are read and changed: its admins' routes
 * (`/org/…` with `X-Org-Id`), or the operator's (`/operator/organizations/:orgId/…`, the operator
 * token, audited in that organization's log with the operator as actor). The same page for both.
 */
interface MembersSource {
  /** The prefix of `/members` and `/invitations`. */
  readonly base: string;
  /** `X-Org-Id`, for an admin's routes. */
  readonly options: { orgId?: string };
  readonly readMembers: () => Promise<Member[]>;
  /** The operator's routes (the section is named "Members of …"). */
  readonly operator: boolean;
}
const adminSource = (orgId: string): MembersSource => ({
  base: '/org',
  options: { orgId },
  operator: false,
  readMembers: () => api<Member[]>('/org/members', { orgId }),
});
const operatorSource = (orgId: string): MembersSource => ({
  base: `/operator/organizations/${orgId}`,
  options: {},
  operator: true,
  readMembers: async () =>
    (await api<{ members: Member[] }>(`/operator/organizations/${orgId}/members`)).members,
});

/** Any organization's members and invitations, for the operator, who need not belong to it. */
function OperatorMembers({ organization }: { organization: OrganizationSummary }) {
  return <Members source={operatorSource(organization.id)} name={organization.name} />;
}

function Members({ source, name }: { source: MembersSource; name: string }) {
  const words = useWords();
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<string>('member');
  const { base, options } = source;
  const { data, error, notice, run } = useLoad(
    async () => ({
      members: await source.readMembers(),
      invitations: await api<Invitation[]>(`${base}/invitations`, options),
    }),
    [base],
  );
  const invite = (event: Event) => {
    event.preventDefault();
    const who = email;
    void run(
      async () => {
        await api(`${base}/invitations`, { ...options, method: 'POST', body: { email: who, role } });
        setEmail('');
      },
      format(words.invited, { who }),
    );
  };
  return (
    <section
      aria-label={
        source.operator ? format(words.membersOfOrganization, { name }) : `${words.members} — ${name}`
      }
    >
      <h3>
        {words.members} — {name}
      </h3>
      <Messages error={error} notice={notice} />
      <table>
        <thead>
          <tr>
            <th>{words.email}</th>
            <th>{words.name}</th>
            <th>{words.role}</th>
            <th>{words.joined}</th>
            <th>{words.actions}</th>
          </tr>
        </thead>
        <tbody>
          {data?.members.map((member) => (
            <tr key={member.userId}>
              <td>{member.email}</td>
              <td>{member.name ?? ''}</td>
              <td>
                {member.role === 'owner' ? (
                  member.role
                ) : (
                  <select
                    aria-label={format(words.changeRole, { who: member.email })}
                    value={member.role}
                    onChange={(event) => {
                      const next = event.currentTarget.value;
                      void run(() =>
                        api(`${base}/members/${member.userId}`, {
                          ...options,
                          method: 'PATCH',
                          body: { role: next },
                        }),
                      );
                    }}
                  >
                    {GRANTABLE.map((value) => (
                      <option key={value} value={value}>
                        {value}
                      </option>
                    ))}
                  </select>
                )}
              </td>
              <td>{when(member.joinedAt)}</td>
              <td>
                {member.role !== 'owner' && (
                  <button
                    type="button"
                    class="danger"
                    onClick={() => {
                      if (confirm(format(words.removeConfirm, { who: member.email })))
                        void run(() =>
                          api(`${base}/members/${member.userId}`, { ...options, method: 'DELETE' }),
                        );
                    }}
                  >
                    {words.remove}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="inline" onSubmit={invite}>
        <TextField
          label={words.inviteEmail}
          type="email"
          name="inviteEmail"
          required
          value={email}
          onValue={setEmail}
        />
        <label>
          <span>{words.role}</span>
          <select name="inviteRole" value={role} onChange={(event) => setRole(event.currentTarget.value)}>
            {GRANTABLE.map((value) => (
              <option key={value} value={value}>
                {value}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">{words.invite}</button>
      </form>
      <h4>{words.invitations}</h4>
      <ListTable rows={data?.invitations} headers={[words.email, words.role, words.expires, words.actions]}>
        {data?.invitations.map((invitation) => (
          <tr key={invitation.id}>
            <td>{invitation.email}</td>
            <td>{invitation.role}</td>
            <td>{when(invitation.expiresAt)}</td>
            <td>
              <button
                type="button"
                onClick={() =>
                  void run(() =>
                    api(`${base}/invitations/${invitation.id}`, { ...options, method: 'DELETE' }),
                  )
                }
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
