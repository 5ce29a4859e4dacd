import { importPKCS8, SignJWT } from 'jose';
import type { Dispatcher } from 'undici';
import type { Clock } from '../../kernel/index.js';
import type { AttemptSignal } from './attempt-signal.js';
import { outboundErrors } from './outbound.errors.js';
import type { ProviderAuth, ProviderDefinition } from './provider.js';

/** The `authorization` (or other) header of a provider's calls. */
export interface AuthHeaders {
  /** Headers to add to the next attempt; fetches a token when none is cached. */
  headers(
    signal: AttemptSignal,
  ): Promise<Readonly<Record<string, string>>> | Readonly<Record<string, string>>;
  /** Forgets a cached token the provider refused (401): the next attempt fetches a new one. */
  invalidate(): boolean;
  /** The headers when they never change (none, `bearer`, `header`): merged once by the client. */
  readonly fixed?: Readonly<Record<string, string>>;
}

interface CachedToken {
  readonly value: string;
  readonly renewAt: number;
}

/**
 * Headers for `auth`. An OAuth2 client-credentials token is fetched once and shared by every call
 * of this node until shortly before it expires: concurrent calls wait for the one fetch in flight
 * rather than each asking for a token (Zoom allows a handful of token requests per second).
 */
export function createAuthHeaders(
  provider: ProviderDefinition,
  auth: ProviderAuth | undefined,
  dispatcher: Dispatcher,
  clock: Clock,
  /** The calling organization's key for a provider, if it stored one (`tenant-key` auth). */
  tenantKey: (provider: string) => Promise<string | undefined> = async () => undefined,
): AuthHeaders {
  if (auth === undefined) {
    const none = Object.freeze({});
    return { headers: () => none, invalidate: () => false, fixed: none };
  }
  if (auth.type === 'tenant-key') {
    const header = (auth.header ?? 'authorization').toLowerCase();
    const prefix = auth.prefix ?? (header === 'authorization' ? 'Bearer ' : '');
    const otherwise =
      auth.otherwise === undefined
        ? undefined
        : createAuthHeaders(provider, auth.otherwise, dispatcher, clock);
    return {
      async headers(signal) {
        const key = await tenantKey(provider.name);
        if (key !== undefined) return { [header]: `${prefix}${key}` };
        if (otherwise === undefined) throw outboundErrors.credentialMissing(provider.name);
        return otherwise.headers(signal);
      },
      invalidate: () => otherwise?.invalidate() ?? false,
    };
  }
  if (auth.type === 'bearer') {
    const headers = Object.freeze({ authorization: `Bearer ${auth.token}` });
    return { headers: () => headers, invalidate: () => false, fixed: headers };
  }
  if (auth.type === 'header') {
    const headers = Object.freeze({ [auth.name.toLowerCase()]: auth.value });
    return { headers: () => headers, invalidate: () => false, fixed: headers };
  }
  const refreshBeforeMs = auth.refreshBeforeMs ?? 60_000;
  const tokenUrl = new URL(auth.tokenUrl);
  let cached: CachedToken | undefined;
  let inFlight: Promise<CachedToken> | undefined;
  let signingKey: ReturnType<typeof importPKCS8> | undefined;

  /** The token request: client credentials with Basic auth, or a service account's signed JWT. */
  const tokenRequest = async (): Promise<{ headers: Record<string, string>; form: URLSearchParams }> => {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (auth.type === 'client-credentials') {
      const basic = Buffer.from(
        `${encodeURIComponent(auth.clientId)}:${encodeURIComponent(auth.clientSecret)}`,
      ).toString('base64');
      headers.authorization = `Basic ${basic}`;
      return { headers, form: new URLSearchParams({ grant_type: 'client_credentials', ...auth.form }) };
    }
    signingKey ??= importPKCS8(auth.privateKey, 'RS256');
    const now = Math.floor(clock.now().getTime() / 1000);
    const assertion = await new SignJWT({ scope: auth.scope })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      .setIssuer(auth.clientEmail)
      .setAudience(auth.tokenUrl)
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(await signingKey);
    return {
      headers,
      form: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
    };
  };

  const fetchToken = async (signal: AttemptSignal): Promise<CachedToken> => {
    let response: Dispatcher.ResponseData;
    try {
      const { headers, form } = await tokenRequest();
      response = await dispatcher.request({
        origin: tokenUrl.origin,
        path: tokenUrl.pathname + tokenUrl.search,
        method: 'POST',
        headers,
        body: form.toString(),
        signal: signal.forDispatcher(),
      });
    } catch (cause) {
      throw outboundErrors.unavailable(
        provider.name,
        'oauth.token',
        'the token endpoint cannot be reached',
        undefined,
        undefined,
        cause,
      );
    }
    const text = await response.body.text();
    if (response.statusCode >= 400)
      throw response.statusCode >= 500 || response.statusCode === 429
        ? outboundErrors.unavailable(
            provider.name,
            'oauth.token',
            `status ${response.statusCode}`,
            response.statusCode,
          )
        : outboundErrors.rejected(provider.name, 'oauth.token', response.statusCode, '');
    let answer: { access_token?: unknown; expires_in?: unknown };
    try {
      answer = JSON.parse(text);
    } catch (cause) {
      throw outboundErrors.badResponse(
        provider.name,
        'oauth.token',
        'a token answer that is not JSON',
        cause,
      );
    }
    if (typeof answer.access_token !== 'string' || answer.access_token === '')
      throw outboundErrors.badResponse(provider.name, 'oauth.token', 'a token answer without access_token');
    const expiresInMs = typeof answer.expires_in === 'number' ? answer.expires_in * 1000 : 3_600_000;
    return {
      value: answer.access_token,
      renewAt: clock.now().getTime() + Math.max(0, expiresInMs - refreshBeforeMs),
    };
  };

  return {
    async headers(signal) {
      if (cached === undefined || cached.renewAt <= clock.now().getTime()) {
        inFlight ??= fetchToken(signal).finally(() => {
          inFlight = undefined;
        });
        cached = await inFlight;
      }
      return { authorization: `Bearer ${cached.value}` };
    },
    invalidate() {
      cached = undefined;
      return true;
    },
  };
}
