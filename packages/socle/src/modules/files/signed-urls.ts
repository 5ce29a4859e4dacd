import { createHmac, timingSafeEqual } from 'node:crypto';
import { filesErrors } from './files.errors.js';

/** The query parameters a signed URL carries besides its own: `expires` (Unix seconds) and `signature`. */
export const EXPIRES_PARAMETER = 'expires';
export const SIGNATURE_PARAMETER = 'signature';

/**
 * Signs and verifies URLs served by Socle (the local backend's downloads; image variants carry
 * their transform in the signed parameters, so nobody can ask for other sizes). The HMAC-SHA256
 * covers the path and every parameter, sorted, including the expiry: changing any of them, or
 * adding one, breaks the signature.
 */
export interface UrlSigner {
  /** `pathname?…&expires=…&signature=…`. */
  sign(pathname: string, params: Readonly<Record<string, string>>, expiresAt: Date): string;
  /**
   * The signed parameters of a request (without `expires` and `signature`), or 403
   * `files.signature_invalid` / `files.signature_expired`.
   */
  verify(
    pathname: string,
    query: Readonly<Record<string, string | undefined>>,
    now: Date,
  ): { readonly params: Record<string, string>; readonly expiresAt: Date };
}

function canonical(pathname: string, params: Readonly<Record<string, string>>): string {
  const entries = Object.entries(params)
    .filter(([name]) => name !== SIGNATURE_PARAMETER)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `${pathname}\n${new URLSearchParams(entries).toString()}`;
}

export function createUrlSigner(key: Buffer): UrlSigner {
  const mac = (text: string) => createHmac('sha256', key).update(text).digest();
  return {
    sign(pathname, params, expiresAt) {
      const signed = { ...params, [EXPIRES_PARAMETER]: String(Math.floor(expiresAt.getTime() / 1000)) };
      const signature = mac(canonical(pathname, signed)).toString('base64url');
      return `${pathname}?${new URLSearchParams({ ...signed, [SIGNATURE_PARAMETER]: signature })}`;
    },
    verify(pathname, query, now) {
      const params: Record<string, string> = {};
      for (const [name, value] of Object.entries(query)) if (value !== undefined) params[name] = value;
      const given = Buffer.from(params[SIGNATURE_PARAMETER] ?? '', 'base64url');
      const expected = mac(canonical(pathname, params));
      if (given.length !== expected.length || !timingSafeEqual(given, expected))
        throw filesErrors.signatureInvalid();
      const expires = Number(params[EXPIRES_PARAMETER]);
      if (!Number.isSafeInteger(expires)) throw filesErrors.signatureInvalid();
      if (expires * 1000 <= now.getTime()) throw filesErrors.signatureExpired();
      const { [EXPIRES_PARAMETER]: _expires, [SIGNATURE_PARAMETER]: _signature, ...rest } = params;
      return { params: rest, expiresAt: new Date(expires * 1000) };
    },
  };
}
