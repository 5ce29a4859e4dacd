import { type ComponentChildren, createContext, type InputHTMLAttributes } from 'preact';
import { useCallback, useContext, useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.js';
import { languages, type Words } from './i18n.js';
import type { LiveFeed } from './live.js';

export interface Organization {
  id: string;
  name: string;
  slug: string;
  role: 'owner' | 'admin' | 'member' | 'viewer';
  createdAt: string;
}

/** What every page gets from the shell. */
export interface Context {
  orgId: string | undefined;
  organization: Organization | undefined;
  organizations: Organization[];
  /** The operator token is held. */
  operator: boolean;
  /** A user is signed in. */
  user: boolean;
  /** Events pushed by the realtime gateway (operator token, realtime module); else pages poll. */
  live: LiveFeed | undefined;
  selectOrg(id: string | undefined): void;
  signOut(): Promise<void>;
}
export interface PageProps {
  context: Context;
}

export const WordsContext = createContext<Words>(languages.en);
export const useWords = () => useContext(WordsContext);

export function describeError(error: unknown): string {
  if (error instanceof ApiError) return `${error.message}${error.code ? ` (${error.code})` : ''}`;
  return error instanceof Error ? error.message : String(error);
}

/** Loads once and on `reload()`; `run` wraps an action so its error or notice shows. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const [version, setVersion] = useState(0);
  // The page names what reloads it in `deps`.
  useEffect(() => {
    let live = true;
    load().then(
      (value) => {
        if (!live) return;
        setData(value);
        setError(undefined);
      },
      (failure) => {
        if (live) setError(describeError(failure));
      },
    );
    return () => {
      live = false;
    };
  }, [...deps, version]);
  const reload = useCallback(() => setVersion((value) => value + 1), []);
  const run = useCallback(
    async <R,>(action: () => Promise<R>, done?: string | ((result: R) => string)) => {
      try {
        const result = await action();
        setError(undefined);
        setNotice(typeof done === 'function' ? done(result) : done);
        reload();
      } catch (failure) {
        setNotice(undefined);
        setError(describeError(failure));
      }
    },
    [reload],
  );
  return { data, error, notice, reload, run };
}

export function Messages({ error, notice }: { error?: string | undefined; notice?: string | undefined }) {
  return (
    <>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
    </>
  );
}

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');

/** A labelled text input bound to a piece of state: every form field of the console. */
export function TextField({
  label,
  onValue,
  ...input
}: {
  label: string;
  name: string;
  value: string;
  onValue(value: string): void;
  type?: 'text' | 'email' | 'password' | 'search';
  autocomplete?: string;
  inputMode?: 'numeric' | 'text' | 'email';
  required?: boolean;
}) {
  return (
    <label>
      <span>{label}</span>
      {/* Preact types each input `type` as its own variant; a union of them needs the cast. */}
      <input
        {...(input as InputHTMLAttributes<HTMLInputElement>)}
        onInput={(event) => onValue(event.currentTarget.value)}
      />
    </label>
  );
}

/**
 * A list as every page shows one: "Nothing here" once loaded and empty, else a table with these
 * column headers whose rows are `children` (an empty table while `rows` is still loading).
 */
export function ListTable({
  rows,
  headers,
  caption,
  children,
}: {
  /** What the rows are made of: undefined while loading. */
  rows: readonly unknown[] | undefined;
  headers: readonly string[];
  caption?: string | undefined;
  children: ComponentChildren;
}) {
  const words = useWords();
  if (rows !== undefined && rows.length === 0) return <p>{words.none}</p>;
  return (
    <table>
      {caption !== undefined && <caption>{caption}</caption>}
      <thead>
        <tr>
          {headers.map((header) => (
            <th key={header}>{header}</th>
          ))}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
}

/**
 * The buttons of a list read page by page (keyset pages): back to the first page when not on it,
 * and the next page when the server says there is one (`next`, the `after` of that page).
 */
export function Pager({
  after,
  next,
  onAfter,
}: {
  after: string | undefined;
  next: string | null | undefined;
  onAfter(after: string | undefined): void;
}) {
  const words = useWords();
  return (
    <p>
      {after !== undefined && (
        <button type="button" onClick={() => onAfter(undefined)}>
          {words.firstPage}
        </button>
      )}{' '}
      {next && (
        <button type="button" onClick={() => onAfter(next)}>
          {words.more}
        </button>
      )}
    </p>
  );
}
