import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { format } from '../i18n.js';
import { describeError, ListTable, Messages, type PageProps, useLoad, useWords, when } from '../shared.js';

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
  const reconciliation = context.operator && <Reconciliation />;
  if (orgId === undefined)
    return (
      <>
        {reconciliation}
        <p>{words.noOrganization}</p>
      </>
    );
  const scaleOf = new Map(data?.accounts.map((account) => [account.id, account.scale]));
  return (
    <>
      {reconciliation}
      <Messages error={error} />
      <h3>{words.accounts}</h3>
      <ListTable
        rows={data?.accounts}
        headers={['Id', words.owner, words.unit, words.posted, words.available, words.pending, words.created]}
      >
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
      </ListTable>
      <h3>{words.transfers}</h3>
      <ListTable
        rows={data?.transfers}
        headers={['Id', words.kind, words.debit, words.credit, words.amount, words.when]}
      >
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
      </ListTable>
    </>
  );
}

interface Sums {
  debitsPending: string;
  debitsPosted: string;
  creditsPending: string;
  creditsPosted: string;
}
interface ReconciliationReport {
  checkedAt: string;
  trigger: 'schedule' | 'operator';
  ok: boolean;
  accounts: { accountId: string; orgId: string; unit: string; stored: Sums; computed: Sums }[];
  units: { orgId: string; unit: string; posted: string; pending: string }[];
}

const sumsText = (sums: Sums) =>
  `${sums.debitsPosted} / ${sums.creditsPosted} (${sums.debitsPending} / ${sums.creditsPending})`;

/**
 * Every organization's reconciliation: the latest result kept by the server (the hourly job's or
 * an operator's, `GET /operator/ledger/reconciliation`), or one run now
 * (`POST /operator/ledger/reconciliation`, audited): drifted accounts and unbalanced units.
 */
function Reconciliation() {
  const words = useWords();
  const last = useLoad(
    () => api<{ last: ReconciliationReport | null }>('/operator/ledger/reconciliation'),
    [],
  );
  const [fresh, setReport] = useState<ReconciliationReport | undefined>(undefined);
  const report = fresh ?? last.data?.last ?? undefined;
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const reconcile = async () => {
    setBusy(true);
    try {
      setReport(await api<ReconciliationReport>('/operator/ledger/reconciliation', { method: 'POST' }));
      setError(undefined);
    } catch (failure) {
      setError(describeError(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="reconciliation-title">
      <h3 id="reconciliation-title">{words.reconciliation}</h3>
      <p class="muted">{words.reconciliationHint}</p>
      <button type="button" disabled={busy} onClick={() => void reconcile()}>
        {words.reconcileNow}
      </button>
      <Messages error={error ?? last.error} />
      {last.data?.last === null && fresh === undefined && <p>{words.noReconciliationYet}</p>}
      {report && (
        <div role="status" aria-label={words.lastReconciliation}>
          <p class={report.ok ? 'notice' : 'error'}>
            {format(report.ok ? words.reconciledOk : words.reconciledDrift, {
              when: when(report.checkedAt),
              count: report.accounts.length + report.units.length,
            })}{' '}
            <span class="muted">({words[`ranBy_${report.trigger}`]})</span>
          </p>
          {report.accounts.length > 0 && (
            <table>
              <caption>{words.driftedAccounts}</caption>
              <thead>
                <tr>
                  <th>Id</th>
                  <th>{words.organization}</th>
                  <th>{words.unit}</th>
                  <th>{words.storedSums}</th>
                  <th>{words.computedSums}</th>
                </tr>
              </thead>
              <tbody>
                {report.accounts.map((account) => (
                  <tr key={account.accountId}>
                    <td>{account.accountId}</td>
                    <td class="muted">{account.orgId}</td>
                    <td>{account.unit}</td>
                    <td>{sumsText(account.stored)}</td>
                    <td>{sumsText(account.computed)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {report.units.length > 0 && (
            <table>
              <caption>{words.unbalancedUnits}</caption>
              <thead>
                <tr>
                  <th>{words.organization}</th>
                  <th>{words.unit}</th>
                  <th>{words.posted}</th>
                  <th>{words.pending}</th>
                </tr>
              </thead>
              <tbody>
                {report.units.map((unit) => (
                  <tr key={`${unit.orgId}:${unit.unit}`}>
                    <td class="muted">{unit.orgId}</td>
                    <td>{unit.unit}</td>
                    <td>{unit.posted}</td>
                    <td>{unit.pending}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      )}
    </section>
  );
}
