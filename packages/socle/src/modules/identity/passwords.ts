import { type Algorithm, hash, parseOptions, verify } from '@node-rs/argon2';
import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary as commonDictionary } from '@zxcvbn-ts/language-common';
import { dictionary as englishDictionary, translations as englishTranslations } from '@zxcvbn-ts/language-en';
import { identityErrors } from './identity.errors.js';

// `Algorithm` is declared as a `const enum`, which `isolatedModules` cannot read and which is an
// empty object at run time; 2 is its `Argon2id` member.
const ARGON2ID: Algorithm = 2;
// `Version.V0x13`, the current Argon2 version (0x13 = 19, the `v=19` of the PHC string).
const ARGON2_VERSION_0X13 = 1;

/**
 * The Argon2id parameters of new password hashes: OWASP's first recommended configuration
 * (19 MiB of memory, 2 passes, 1 lane), 16-byte random salt, 32-byte output.
 *
 * Measured on the 2-core development machine (Node 24, @node-rs/argon2 2.2.1, other jobs running):
 * one hash or one verification takes ≈ 19 ms (median of 50 runs each; p10 15–17 ms, p90 25 ms),
 * and uses 19 MiB of memory while it runs. That is slow
 * enough to make offline guessing expensive and fast enough that a core handles ~50 sign-ins a
 * second. Raising a parameter later is safe: {@link needsRehash} then reports old hashes, and the
 * sign-in flow rehashes them while it holds the plain password.
 */
export const PASSWORD_HASH_PARAMETERS = Object.freeze({
  algorithm: ARGON2ID,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
  outputLen: 32,
});

/** Length bounds of a password, in Unicode code points after NFKC normalization. */
export const PASSWORD_MIN_LENGTH = 10;
export const PASSWORD_MAX_LENGTH = 256;

/** zxcvbn scores run from 0 (guessable in < 10^3 tries) to 4; 3 means ≥ 10^8 guesses. */
const MINIMUM_STRENGTH_SCORE = 3;
/** Names and email parts shorter than this are too common as substrings to forbid. */
const MINIMUM_PERSONAL_FRAGMENT_LENGTH = 3;
const EMAIL_MAX_OCTETS = 254;
const EMAIL_LOCAL_PART_MAX_OCTETS = 64;

/**
 * NIST SP 800-63B asks verifiers to normalize passwords with NFKC or NFKD before hashing, so that
 * the same password typed on two systems (composed on Windows, decomposed on macOS) matches.
 */
function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/**
 * Hashes a password with Argon2id and {@link PASSWORD_HASH_PARAMETERS}. The result is a PHC
 * string (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) that carries its own salt and
 * parameters, so it is the only thing to store.
 */
export function hashPassword(password: string): Promise<string> {
  return hash(normalizePassword(password), PASSWORD_HASH_PARAMETERS);
}

/**
 * Tells whether `password` matches a hash made by {@link hashPassword}, with the parameters stored
 * in the hash (so hashes made with older parameters still verify). Rejects when `passwordHash` is
 * not a valid Argon2 PHC string: a corrupt stored hash is a server fault, not a wrong password.
 */
export function verifyPassword(passwordHash: string, password: string): Promise<boolean> {
  return verify(passwordHash, normalizePassword(password));
}

/**
 * Tells whether a stored hash was made with other parameters than {@link PASSWORD_HASH_PARAMETERS}
 * (another algorithm or version, other costs, a shorter salt or output). Call it after a
 * successful {@link verifyPassword} and, when true, store `hashPassword(password)` instead.
 * Anything that is not a readable Argon2 PHC string also needs a rehash.
 */
export function needsRehash(passwordHash: string): boolean {
  let stored: ReturnType<typeof parseOptions>;
  try {
    stored = parseOptions(passwordHash);
  } catch {
    return true;
  }
  return (
    stored.algorithm !== PASSWORD_HASH_PARAMETERS.algorithm ||
    stored.version !== ARGON2_VERSION_0X13 ||
    stored.memoryCost !== PASSWORD_HASH_PARAMETERS.memoryCost ||
    stored.timeCost !== PASSWORD_HASH_PARAMETERS.timeCost ||
    stored.parallelism !== PASSWORD_HASH_PARAMETERS.parallelism ||
    stored.outputLen !== PASSWORD_HASH_PARAMETERS.outputLen ||
    stored.saltLen < 16
  );
}

/**
 * The hash of a random password nobody knows, made with {@link PASSWORD_HASH_PARAMETERS}. It is a
 * constant rather than computed at start so that no call pays for an extra hash; a unit test
 * checks that it still matches the current parameters.
 */
export const DUMMY_PASSWORD_HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$1P+xhQe+bp3BhQFRMoRjew$Y51ycDIzTj/0+luMKZyNK45fysAvB2gsuBvgp0aDFZU';

/**
 * Spends the time of one real {@link verifyPassword} and always answers false. Sign-in calls it
 * when no account has the given email, so that the response takes as long as for a wrong
 * password and timing does not reveal which emails have accounts.
 *
 * @example
 * const account = await store.findAccountByEmail(email);
 * const ok = account
 *   ? await verifyPassword(account.passwordHash, password)
 *   : await verifyAgainstDummy(password);
 * if (!account || !ok) throw identityErrors.invalidCredentials();
 */
export async function verifyAgainstDummy(password: string): Promise<false> {
  await verifyPassword(DUMMY_PASSWORD_HASH, password);
  return false;
}

export type PasswordPolicyResult = { ok: true } | { ok: false; reasons: string[] };

let strengthEstimator: ZxcvbnFactory | undefined;

/** Built on first use: loading the dictionaries takes ~100 ms, which should not delay start. */
function getStrengthEstimator(): ZxcvbnFactory {
  strengthEstimator ??= new ZxcvbnFactory({
    dictionary: { ...commonDictionary, ...englishDictionary },
    graphs: adjacencyGraphs,
    translations: englishTranslations,
  });
  return strengthEstimator;
}

/** The name, the email's local part, and their words, lower-cased: what a password must not contain. */
function personalFragments(context: { email?: string; name?: string }): string[] {
  const wholes = [context.email?.split('@')[0], context.name]
    .filter((value): value is string => value !== undefined)
    .map((value) => value.normalize('NFKC').toLowerCase().trim());
  const words = wholes.flatMap((whole) => whole.split(/[^\p{L}\p{N}]+/u));
  return [...new Set([...wholes, ...words])].filter(
    (fragment) => [...fragment].length >= MINIMUM_PERSONAL_FRAGMENT_LENGTH,
  );
}

/**
 * Checks a new password against the policy: 10 to 256 characters (Unicode code points, after
 * NFKC normalization), not containing the user's name or the local part of their email, and
 * scoring at least 3 of 4 with zxcvbn, whose dictionaries hold the most common breached passwords,
 * keyboard walks, dates and English words. Every reason is an English sentence that tells the
 * user what to change; pass them to {@link identityErrors.weakPassword}.
 *
 * It does not require character classes (digits, symbols): NIST SP 800-63B advises against them
 * because they push users to predictable patterns such as `Password1!`.
 *
 * @example
 * const verdict = checkPasswordPolicy(body.password, { email, name });
 * if (!verdict.ok) throw identityErrors.weakPassword(verdict.reasons);
 */
export function checkPasswordPolicy(
  password: string,
  context: { email?: string; name?: string } = {},
): PasswordPolicyResult {
  const normalized = normalizePassword(password);
  const length = [...normalized].length;
  const reasons: string[] = [];
  if (length < PASSWORD_MIN_LENGTH) reasons.push(`Use at least ${PASSWORD_MIN_LENGTH} characters.`);
  if (length > PASSWORD_MAX_LENGTH) {
    // Too long to estimate cheaply (zxcvbn's matching grows faster than linearly): stop here.
    return { ok: false, reasons: [`Use at most ${PASSWORD_MAX_LENGTH} characters.`] };
  }

  const fragments = personalFragments(context);
  const lowerCased = normalized.toLowerCase();
  const containsPersonalData = fragments.some((fragment) => lowerCased.includes(fragment));
  if (containsPersonalData) reasons.push('Do not use your name or your email address in the password.');

  const estimate = getStrengthEstimator().check(normalized, fragments);
  if (estimate.score < MINIMUM_STRENGTH_SCORE) {
    const { warning, suggestions } = estimate.feedback;
    // zxcvbn's own "personal data" warning repeats the reason above.
    if (warning && !(containsPersonalData && warning === englishTranslations.warnings.userInputs)) {
      reasons.push(warning);
    }
    reasons.push(...suggestions);
    if (warning === null && suggestions.length === 0) {
      reasons.push('Make the password harder to guess, for example by adding a few uncommon words.');
    }
  }

  return reasons.length === 0 ? { ok: true } : { ok: false, reasons: [...new Set(reasons)] };
}

// One label of a domain name: letters, digits (any script, for internationalized domains) and
// inner hyphens.
const DOMAIN_LABEL = /^[\p{L}\p{N}\p{M}](?:[\p{L}\p{N}\p{M}-]*[\p{L}\p{N}\p{M}])?$/u;
// White space, control and invisible format characters, and the characters that only quoted or
// bracketed address forms use; refusing them also keeps addresses safe to put in mail headers.
const FORBIDDEN_IN_EMAIL = /[\s\p{C}"(),:;<>[\]\\]/u;

/**
 * Normalizes an email address for storage and lookup: trimmed, NFKC-normalized (so full-width
 * `ＪＥＡＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ` becomes `jean@example.com`) and lower-cased as a whole.
 * Lower-casing the local part is technically lossy (RFC 5321 lets a server treat it as
 * case-sensitive) but no mainstream provider does, and it keeps `Jean@` and `jean@` from becoming
 * two accounts.
 *
 * Dots and `+tags` are kept: ignoring them is a Gmail rule, not a standard, and on other
 * providers `j.doe@` and `jdoe@`, or `team+sales@` and `team+support@`, are different mailboxes
 * that may belong to different people, so stripping them would merge distinct accounts.
 *
 * Throws `auth.invalid_email` unless the result has one `@`, a local part of 1 to 64 octets, a
 * domain of at least two labels, at most 254 octets in all, and no spaces or control characters.
 */
export function normalizeEmail(input: string): string {
  const email = input.trim().normalize('NFKC').toLowerCase();
  const parts = email.split('@');
  if (parts.length !== 2 || FORBIDDEN_IN_EMAIL.test(email)) throw identityErrors.invalidEmail();
  const [localPart = '', domain = ''] = parts;
  const labels = domain.split('.');
  const valid =
    Buffer.byteLength(email, 'utf8') <= EMAIL_MAX_OCTETS &&
    localPart.length > 0 &&
    Buffer.byteLength(localPart, 'utf8') <= EMAIL_LOCAL_PART_MAX_OCTETS &&
    labels.length >= 2 &&
    labels.every((label) => DOMAIN_LABEL.test(label));
  if (!valid) throw identityErrors.invalidEmail();
  return email;
}
