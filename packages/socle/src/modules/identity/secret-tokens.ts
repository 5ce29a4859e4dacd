import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Opaque secret tokens: refresh tokens, email verification and password reset links,
 * invitations, API keys. A token is `<prefix>_<43 base64url characters>` (32 random bytes).
 * The prefix says what the token is for, so a leaked token is recognisable (secret scanners
 * look for such prefixes) and a token of one kind is refused where another is expected.
 *
 * Only the SHA-256 of a token is stored. A fast hash is right here, unlike for passwords: the
 * secret part has 256 random bits, so nobody can enumerate it however fast the hash is, and a
 * slow hash would only add latency to every request that presents a token.
 */
const SECRET_BYTES = 32;
/** base64url of 32 bytes without padding. */
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** Lower-case letters, digits, `_` and `-`, starting with a letter: `rt`, `sk_live`, `acme-corp`. */
const PREFIX_PATTERN = /^[a-z][a-z0-9_-]{0,39}$/;
/** How many characters of the secret an API key listing shows (48 of its 256 bits). */
const API_KEY_VISIBLE_SECRET_CHARACTERS = 8;

function assertPrefix(prefix: string): void {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new TypeError(
      `A token prefix must be 1 to 40 lower-case letters, digits, "_" or "-" starting with a letter, got ${JSON.stringify(prefix)}`,
    );
  }
}

/** SHA-256 (hex) of a whole token, prefix included: the value to store and look up. */
export function hashSecretToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Creates a token and its hash. Give `token` to the client once (in a cookie, a link, a
 * response); store only `hash`.
 *
 * @example
 * const { token, hash } = createSecretToken('pwreset');
 * await store.insertPasswordReset({ accountId, tokenHash: hash, expiresAt });
 * await mail.send(email, `https://app.example/reset?token=${token}`);
 */
export function createSecretToken(prefix: string): { token: string; hash: string } {
  assertPrefix(prefix);
  const token = `${prefix}_${randomBytes(SECRET_BYTES).toString('base64url')}`;
  return { token, hash: hashSecretToken(token) };
}

/**
 * Checks that `token` has the shape of a token made by {@link createSecretToken} with
 * `expectedPrefix`, and returns its hash for the lookup; `undefined` when the shape is wrong.
 * Answer a wrong shape exactly as an unknown token (`sessionErrors.tokenInvalid()` for refresh tokens), so that
 * the response does not tell an attacker which of the two it was.
 */
export function parseSecretToken(
  token: string,
  expectedPrefix: string,
): { prefix: string; hash: string } | undefined {
  assertPrefix(expectedPrefix);
  const head = `${expectedPrefix}_`;
  if (!token.startsWith(head)) return undefined;
  const secret = token.slice(head.length);
  if (!SECRET_PATTERN.test(secret)) return undefined;
  // 43 characters carry 258 bits: refuse the non-canonical spellings of the same 32 bytes, so that
  // one token has one hash.
  if (Buffer.from(secret, 'base64url').toString('base64url') !== secret) return undefined;
  return { prefix: expectedPrefix, hash: hashSecretToken(token) };
}

/**
 * Creates an API key such as `sk_live_AbCd1234…`. `keyPrefix` (e.g. `sk_live`, or an organization's
 * slug) starts the key. The returned `prefix` is that plus the first 8 characters of the secret
 * (`sk_live_AbCd1234`): store and show it in key listings so users can tell their keys apart; it
 * reveals 48 of 256 random bits, which leaves the rest far beyond guessing. Store `hash` to
 * authenticate requests; the key itself is shown once.
 */
export function createApiKey(keyPrefix: string): { key: string; prefix: string; hash: string } {
  const { token, hash } = createSecretToken(keyPrefix);
  const prefix = token.slice(0, keyPrefix.length + 1 + API_KEY_VISIBLE_SECRET_CHARACTERS);
  return { key: token, prefix, hash };
}

/**
 * Compares two hex strings (such as stored and computed hashes) in time that depends only on
 * their length, not on where they differ. Strings of different lengths, or that are not hex,
 * are unequal.
 */
export function timingSafeEqualHex(a: string, b: string): boolean {
  const hex = /^(?:[0-9a-fA-F]{2})*$/;
  if (a.length !== b.length || !hex.test(a) || !hex.test(b)) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}
