import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, clearCredentials, loadCredentials, saveCredentials } from './api.js';
import { initialLanguage, type Language, languages } from './i18n.js';
import { connectLiveFeed, FEED_ROUTE, type FeedTarget, type LiveFeed, ORG_FEED_ROUTE } from './live.js';
import { Account } from './pages/account.js';
import { Audit } from './pages/audit.js';
import { Configuration } from './pages/configuration.js';
import { Files } from './pages/files.js';
import { Health } from './pages/health.js';
import { Jobs } from './pages/jobs.js';
import { Ledger } from './pages/ledger.js';
import { Organizations } from './pages/organizations.js';
import { Payments } from './pages/payments.js';
import { Realtime } from './pages/realtime.js';
import { SignIn } from './pages/sign-in.js';
import { Users } from './pages/users.js';
import { type Context, type Organization, WordsContext } from './shared.js';

const BASE = '/console/';
const PAGES = [
  'organizations',
  'users',
  'jobs',
  'realtime',
  'ledger',
  'payments',
  'files',
  'audit',
  'account',
  'health',
  'configuration',
] as const;
type Page = (typeof PAGES)[number];
/**
 * Pages of opt-in modules, each shown when the server has the module: when `/openapi.json` lists
 * the route the page starts from. The console works the same without them.
 */
const OPTIONAL_PAGES: Partial<Record<Page, string>> = {
  ledger: '/org/ledger/accounts',
  payments: '/org/payments/events',
  files: '/org/files/buckets',
};

function pageOfLocation(): Page {
  const name = location.pathname.slice(BASE.length).split('/')[0];
  return (PAGES as readonly string[]).includes(name ?? '') ? (name as Page) : 'organizations';
}

function App() {
  const [language, setLanguage] = useState<Language>(initialLanguage);
  const [signedIn, setSignedIn] = useState(() => {
    const credentials = loadCredentials();
    return Boolean(credentials.accessToken || credentials.operatorToken);
  });
  const [page, setPage] = useState<Page>(pageOfLocation);
  const [organizations, setOrganizations] = useState<Organization[]>([]);
  const [orgId, setOrgId] = useState<string | undefined>(undefined);
  const [paths, setPaths] = useState<ReadonlySet<string>>(new Set());
  const [live, setLive] = useState<LiveFeed | undefined>(undefined);
  const words = languages[language];

  useEffect(() => {
    document.documentElement.lang = language;
    document.title = words.title;
  }, [language, words]);
  useEffect(() => {
    const onPop = () => setPage(pageOfLocation());
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => {
    if (!signedIn) return;
    api<{ paths?: Record<string, unknown> }>('/openapi.json').then(
      (document) => setPaths(new Set(Object.keys(document.paths ?? {}))),
      () => setPaths(new Set()),
    );
  }, [signedIn]);
  useEffect(() => {
    if (!signedIn || !loadCredentials().accessToken) return;
    api<Organization[]>('/orgs').then(
      (list) => {
        setOrganizations(list);
        setOrgId(
          (current) => current ?? list.find((org) => org.role === 'owner' || org.role === 'admin')?.id,
        );
      },
      () => setOrganizations([]),
    );
  }, [signedIn]);

  // Live updates through Socle's own realtime gateway when the server has the realtime module (its
  // feed routes are in /openapi.json): the operator's feed with the operator token, else the
  // current organization's for its admins (its own data only); pages poll while there is none.
  const operatorSignedIn = signedIn && Boolean(loadCredentials().operatorToken);
  const adminOf = organizations.find(
    (org) => org.id === orgId && (org.role === 'owner' || org.role === 'admin'),
  );
  const feedKey = operatorSignedIn
    ? paths.has(FEED_ROUTE)
      ? 'operator'
      : undefined
    : signedIn && adminOf !== undefined && paths.has(ORG_FEED_ROUTE)
      ? `org:${adminOf.id}`
      : undefined;
  useEffect(() => {
    if (feedKey === undefined) return;
    const target: FeedTarget =
      feedKey === 'operator' ? { operator: true } : { operator: false, orgId: feedKey.slice('org:'.length) };
    let open = true;
    let connection: Awaited<ReturnType<typeof connectLiveFeed>> | undefined;
    connectLiveFeed(target, (connected) => {
      if (open) setLive(connected ? connection?.feed : undefined);
    }).then(
      (connected) => {
        connection = connected;
        if (open) setLive(connected.feed);
        else connected.close();
      },
      // Pages keep polling; the failure is not the operator's to act on.
      () => undefined,
    );
    return () => {
      open = false;
      connection?.close();
      setLive(undefined);
    };
  }, [feedKey]);

  const signOut = async () => {
    if (loadCredentials().accessToken) await api('/auth/sign-out', { method: 'POST' }).catch(() => undefined);
    clearCredentials();
    setOrganizations([]);
    setOrgId(undefined);
    setSignedIn(false);
  };
  const go = (next: Page) => (event: Event) => {
    event.preventDefault();
    history.pushState(null, '', `${BASE}${next}`);
    setPage(next);
  };
  const chooseLanguage = (next: Language) => {
    localStorage.setItem('socle.console.language', next);
    setLanguage(next);
  };
  const languagePicker = (
    <label class="language">
      <span>{words.language}</span>
      <select value={language} onChange={(event) => chooseLanguage(event.currentTarget.value as Language)}>
        <option value="en">English</option>
        <option value="fr">Français</option>
      </select>
    </label>
  );

  if (!signedIn) {
    return (
      <WordsContext.Provider value={words}>
        <header>
          <h1>{words.title}</h1>
          <span class="spacer" />
          {languagePicker}
        </header>
        <SignIn
          onSignedIn={(credentials) => {
            saveCredentials(credentials);
            setSignedIn(true);
          }}
        />
      </WordsContext.Provider>
    );
  }

  const visible = PAGES.filter((name) => {
    const needs = OPTIONAL_PAGES[name];
    return needs === undefined || paths.has(needs);
  });
  const shownPage: Page = visible.includes(page) ? page : 'organizations';
  const credentials = loadCredentials();
  const context: Context = {
    orgId,
    organization: organizations.find((org) => org.id === orgId),
    organizations,
    operator: Boolean(credentials.operatorToken),
    user: Boolean(credentials.accessToken),
    live,
    selectOrg: setOrgId,
    signOut,
  };
  const Current = {
    organizations: Organizations,
    users: Users,
    jobs: Jobs,
    realtime: Realtime,
    ledger: Ledger,
    payments: Payments,
    files: Files,
    audit: Audit,
    account: Account,
    health: Health,
    configuration: Configuration,
  }[shownPage];
  return (
    <WordsContext.Provider value={words}>
      <header>
        <h1>{words.title}</h1>
        <span class="spacer" />
        {organizations.length > 0 && (
          <label>
            <span>{words.organization}</span>
            <select
              value={orgId ?? ''}
              onChange={(event) => setOrgId(event.currentTarget.value || undefined)}
            >
              {organizations.map((org) => (
                <option key={org.id} value={org.id}>
                  {org.name} ({org.role})
                </option>
              ))}
            </select>
          </label>
        )}
        {(context.operator || adminOf !== undefined) && (
          <span class="muted" role="status">
            {live ? words.liveOn : words.liveOff}
          </span>
        )}
        {languagePicker}
        <button type="button" onClick={signOut}>
          {words.signOut}
        </button>
      </header>
      <div class="layout">
        <nav aria-label={words.nav}>
          <ul>
            {visible.map((name) => (
              <li key={name}>
                <a
                  href={`${BASE}${name}`}
                  aria-current={name === shownPage ? 'page' : undefined}
                  onClick={go(name)}
                >
                  {words[name]}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main>
          <h2>{words[shownPage]}</h2>
          <Current key={`${shownPage}:${orgId ?? ''}`} context={context} />
        </main>
      </div>
    </WordsContext.Provider>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
