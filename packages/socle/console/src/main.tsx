import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, clearCredentials, loadCredentials, saveCredentials } from './api.js';
import { initialLanguage, type Language, languages } from './i18n.js';
import { Account } from './pages/account.js';
import { Audit } from './pages/audit.js';
import { Health } from './pages/health.js';
import { Jobs } from './pages/jobs.js';
import { Organizations } from './pages/organizations.js';
import { Realtime } from './pages/realtime.js';
import { SignIn } from './pages/sign-in.js';
import { type Context, type Organization, WordsContext } from './shared.js';

const BASE = '/console/';
const PAGES = ['organizations', 'jobs', 'realtime', 'audit', 'account', 'health'] as const;
type Page = (typeof PAGES)[number];

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

  const credentials = loadCredentials();
  const context: Context = {
    orgId,
    organization: organizations.find((org) => org.id === orgId),
    organizations,
    operator: Boolean(credentials.operatorToken),
    user: Boolean(credentials.accessToken),
    selectOrg: setOrgId,
    signOut,
  };
  const Current = {
    organizations: Organizations,
    jobs: Jobs,
    realtime: Realtime,
    audit: Audit,
    account: Account,
    health: Health,
  }[page];
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
        {languagePicker}
        <button type="button" onClick={signOut}>
          {words.signOut}
        </button>
      </header>
      <div class="layout">
        <nav aria-label={words.nav}>
          <ul>
            {PAGES.map((name) => (
              <li key={name}>
                <a
                  href={`${BASE}${name}`}
                  aria-current={name === page ? 'page' : undefined}
                  onClick={go(name)}
                >
                  {words[name]}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <main>
          <h2>{words[page]}</h2>
          <Current key={`${page}:${orgId ?? ''}`} context={context} />
        </main>
      </div>
    </WordsContext.Provider>
  );
}

const root = document.getElementById('app');
if (root) render(<App />, root);
