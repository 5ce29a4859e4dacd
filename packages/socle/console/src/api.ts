/** The console's one way to the HTTP API: same origin, bearer token and operator token from sessionStorage. */

const STORE_KEY = 'socle.console.credentials';

export interface Credentials {
  accessToken?: string;
  refreshToken?: string;
  operatorToken?: string;
}

/**
 * Credentials live in sessionStorage (this tab only, gone when it closes), never in cookies: the
 * API reads them from headers the browser never adds by itself, so a forged cross-site request
 * carries none (no CSRF).
 */
export function loadCredentials(): Credentials {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY) ?? '{}') as Credentials;
  } catch {
    return {};
  }
}
export function saveCredentials(credentials: Credentials): void {
  sessionStorage.setItem(STORE_KEY, JSON.stringify(credentials));
}
export function clearCredentials(): void {
  sessionStorage.removeItem(STORE_KEY);
}

/** A problem+json answer. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
    readonly body: Record<string, unknown>,
  ) {
    super(message);
  }
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  orgId?: string;
  /** Text instead of JSON (the Prometheus metrics). */
  text?: boolean;
}

async function send(path: string, options: CallOptions, credentials: Credentials): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (credentials.accessToken) headers.authorization = `Bearer ${credentials.accessToken}`;
  if (credentials.operatorToken) headers['x-operator-token'] = credentials.operatorToken;
  if (options.orgId) headers['x-org-id'] = options.orgId;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(path, {
    method: options.method ?? 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    credentials: 'omit',
  });
}

/** Calls the API; refreshes the access token once on a 401 when a refresh token is held. */
export async function api<T>(path: string, options: CallOptions = {}): Promise<T> {
  let credentials = loadCredentials();
  let response = await send(path, options, credentials);
  if (response.status === 401 && credentials.refreshToken && credentials.accessToken) {
    const refreshed = await fetch('/auth/refresh', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: credentials.refreshToken }),
    });
    if (refreshed.ok) {
      const tokens = (await refreshed.json()) as { accessToken: string; refreshToken: string };
      credentials = { ...credentials, ...tokens };
      saveCredentials(credentials);
      response = await send(path, options, credentials);
    }
  }
  if (response.status === 204) return undefined as T;
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    const message = typeof body.detail === 'string' ? body.detail : String(body.title ?? response.statusText);
    throw new ApiError(response.status, body.code as string | undefined, message, body);
  }
  return (options.text ? await response.text() : await response.json()) as T;
}
