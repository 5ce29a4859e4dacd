import { api } from '../api.js';
import { Messages, type PageProps, useLoad, useWords, when } from '../shared.js';

interface Balance {
  posted: string;
  available: string;
  debitsPending: string;
  creditsPending: string;
}
interface Account {
  id: string;
  owner: { kind: string; userId?: string };
  unit: string;
  scale: number;
  code: string | null;
  rule: string | null;
  createdAt: string;
  balance: Balance;
}
interface Transfer {
  id: string;
  kind: string;
  debitAccountId: string;
  creditAccountId: string;
  amount: string;
  unit: string;
  code: string | null;
  createdAt: string;
}

/** Minor units as the unit writes them: "12345" with scale 2 → "123.45". */
function inUnits(minor: string, scale: number): string {
  if (scale <= 0) return minor;
  const negative = minor.startsWith('-');
  const digits = (negative ? minor.slice(1) : minor).padStart(scale + 1, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/**
 * The current organization's ledger (the ledger module, when loaded): accounts with their
 * balances, and the latest transfers (`/org/ledger/…`, admins).
 */
export function Ledger({ context }: PageProps) {
  const words = useWords();
  const orgId = context.orgId;
  const { data, error } = useLoad(async () => {
    if (orgId === undefined) return undefined;
    const [accounts, transfers] = await Promise.all([
      api<{ accounts: Account[] }>('/org/ledger/accounts?limit=200', { orgId }),
      api<{ transfers: Transfer[] }>('/org/ledger/transfers?limit=50', { orgId }),
    ]);
    return { accounts: accounts.accounts, transfers: transfers.transfers };
  }, [orgId]);
  if (orgId === undefined) return <p>{words.noOrganization}</p>;
  const scaleOf = new Map(data?.accounts.map((account) => [account.id, account.scale]));
  return (
    <>
      <Messages error={error} />
      <h3>{words.accounts}</h3>
      {data && data.accounts.length === 0 ? (
        <p>{words.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Id</th>
              <th>{words.owner}</th>
              <th>{words.unit}</th>
              <th>{words.posted}</th>
              <th>{words.available}</th>
              <th>{words.pending}</th>
              <th>{words.created}</th>
            </tr>
          </thead>
          <tbody>
            {data?.accounts.map((account) => (
              <tr key={account.id}>
                <td>
                  {account.code ?? ''}
                  <br />
                  <span class="muted">{account.id}</span>
                </td>
                <td>
                  {account.owner.kind} {account.owner.userId ?? ''}
                </td>
                <td>{account.unit}</td>
                <td>{inUnits(account.balance.posted, account.scale)}</td>
                <td>{inUnits(account.balance.available, account.scale)}</td>
                <td>
                  −{inUnits(account.balance.debitsPending, account.scale)} / +
                  {inUnits(account.balance.creditsPending, account.scale)}
                </td>
                <td>{when(account.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>{words.transfers}</h3>
      {data && data.transfers.length === 0 ? (
        <p>{words.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Id</th>
              <th>{words.kind}</th>
              <th>{words.debit}</th>
              <th>{words.credit}</th>
              <th>{words.amount}</th>
              <th>{words.when}</th>
            </tr>
          </thead>
          <tbody>
            {data?.transfers.map((transfer) => (
              <tr key={transfer.id}>
                <td>{transfer.id}</td>
                <td>{transfer.kind}</td>
                <td class="muted">{transfer.debitAccountId}</td>
                <td class="muted">{transfer.creditAccountId}</td>
                <td>
                  {inUnits(transfer.amount, scaleOf.get(transfer.debitAccountId) ?? 0)} {transfer.unit}
                </td>
                <td>{when(transfer.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
