import { createHash, randomBytes } from 'node:crypto';
import { generateSecret, generateURI, verify } from 'otplib';
import QRCode from 'qrcode';

/**
 * TOTP as every authenticator app implements it (RFC 6238): HMAC-SHA-1, 6 digits, 30-second
 * steps. SHA-1 is kept on purpose: Google Authenticator and several others ignore the `algorithm`
 * parameter and would show wrong codes for SHA-256, and HMAC-SHA-1 is not weakened by SHA-1's
 * collision attacks.
 */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** 20 bytes (160 bits), the secret length RFC 4226 recommends. */
const TOTP_SECRET_BYTES = 20;
const MAX_WINDOW = 10;

export interface TotpEnrollment {
  /** Base32 secret. It is a credential: store it encrypted and never log it. */
  readonly secret: string;
  /** `otpauth://totp/<issuer>:<account>?secret=…&issuer=…`, what the QR code encodes. */
  readonly otpauthUri: string;
  /** The URI as a PNG QR code, `data:image/png;base64,…`, ready for an `<img src>`. */
  readonly qrCodeDataUrl: string;
}

/**
 * Creates a new TOTP secret and what the user needs to add it to an authenticator app: the URI
 * (also shown as text for manual entry) and its QR code. `issuer` is the product name shown in
 * the app; `accountName` is usually the user's email.
 *
 * @example
 * const enrollment = await createTotpEnrollment({ accountName: 'jean@example.com', issuer: 'Acme' });
 * // store enrollment.secret as pending; confirm it with a first verifyTotp before enabling 2FA
 */
export async function createTotpEnrollment(options: {
  accountName: string;
  issuer: string;
}): Promise<TotpEnrollment> {
  const secret = generateSecret({ length: TOTP_SECRET_BYTES });
  const otpauthUri = generateURI({
    issuer: options.issuer,
    label: options.accountName,
    secret,
    algorithm: 'sha1',
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
  });
  const qrCodeDataUrl = await QRCode.toDataURL(otpauthUri, {
    type: 'image/png',
    errorCorrectionLevel: 'M',
    margin: 2,
    width: 256,
  });
  return { secret, otpauthUri, qrCodeDataUrl };
}

export type TotpVerification = { ok: true; step: number } | { ok: false; reason: 'invalid' | 'reused' };

/**
 * Verifies a TOTP code at `now`, accepting the codes of the `window` steps before and after the
 * current one to absorb clock drift and typing time (window 1 = ±30 s).
 *
 * Replay protection: the caller stores the returned `step` and passes it back as `lastUsedStep`.
 * A code whose step is at or before `lastUsedStep` is refused as `'reused'`, even within the same
 * 30 s, because an observed code must not open a second session. That also refuses an older code
 * still inside the window once a newer one has been used.
 *
 * Spaces in the code are ignored (apps display `123 456`); anything else that is not six digits is
 * `'invalid'`, never an exception.
 */
export async function verifyTotp(options: {
  secret: string;
  code: string;
  now: Date;
  lastUsedStep?: number;
  window?: number;
}): Promise<TotpVerification> {
  const { secret, now, lastUsedStep, window = 1 } = options;
  if (!Number.isInteger(window) || window < 0 || window > MAX_WINDOW) {
    throw new TypeError(`TOTP window must be an integer from 0 to ${MAX_WINDOW}, got ${window}`);
  }
  if (lastUsedStep !== undefined && (!Number.isSafeInteger(lastUsedStep) || lastUsedStep < 0)) {
    throw new TypeError(`lastUsedStep must be a non-negative integer, got ${lastUsedStep}`);
  }
  const code = options.code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(code)) return { ok: false, reason: 'invalid' };

  const epoch = Math.floor(now.getTime() / 1000);
  const epochTolerance = window * TOTP_PERIOD_SECONDS;
  const common = {
    secret,
    token: code,
    epoch,
    epochTolerance,
    algorithm: 'sha1',
    digits: TOTP_DIGITS,
  } as const;
  const latestStep = Math.floor((epoch + epochTolerance) / TOTP_PERIOD_SECONDS);

  // otplib skips the steps at or before `afterTimeStep` itself, but then only says "invalid", and
  // it throws when `afterTimeStep` is past the window. So: look for a match among the unused
  // steps first; only on failure, look at all steps to tell a replay from a wrong code.
  if (lastUsedStep === undefined || lastUsedStep < latestStep) {
    const fresh = await verify({ ...common, period: TOTP_PERIOD_SECONDS, afterTimeStep: lastUsedStep });
    // otplib's functional `verify` is typed for TOTP and HOTP; only TOTP results carry `timeStep`.
    if (fresh.valid && 'timeStep' in fresh) return { ok: true, step: fresh.timeStep };
    if (lastUsedStep === undefined) return { ok: false, reason: 'invalid' };
  }
  const any = await verify({ ...common, period: TOTP_PERIOD_SECONDS });
  return { ok: false, reason: any.valid ? 'reused' : 'invalid' };
}

/**
 * Crockford's base32 alphabet in lower case: no `i`, `l`, `o` or `u`, so a code read aloud or
 * copied from paper cannot be misread (and {@link normalizeRecoveryCode} maps those letters back).
 */
const RECOVERY_CODE_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
/** 12 characters × 5 bits = 60 bits of entropy per code. */
const RECOVERY_CODE_LENGTH = 12;

/**
 * Generates single-use recovery codes such as `7k2m-q9xd-4hfn` (60 random bits each, all
 * distinct). Show them to the user once; store only {@link hashRecoveryCode} of each.
 */
export function generateRecoveryCodes(count = 10): string[] {
  if (!Number.isInteger(count) || count < 1 || count > 100) {
    throw new TypeError(`The number of recovery codes must be an integer from 1 to 100, got ${count}`);
  }
  const codes = new Set<string>();
  while (codes.size < count) {
    // 256 is a multiple of 32, so `byte & 31` picks each character with equal probability.
    const characters = [...randomBytes(RECOVERY_CODE_LENGTH)].map(
      (byte) => RECOVERY_CODE_ALPHABET[byte & 31],
    );
    const code = characters.join('');
    codes.add(`${code.slice(0, 4)}-${code.slice(4, 8)}-${code.slice(8, 12)}`);
  }
  return [...codes];
}

/**
 * The canonical form of a recovery code as the user typed it: NFKC, lower case, without dashes
 * or spaces, and with the letters Crockford's base32 reads as digits (`o` → 0, `i`/`l` → 1).
 */
export function normalizeRecoveryCode(code: string): string {
  return code
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s-]+/g, '')
    .replace(/o/g, '0')
    .replace(/[il]/g, '1');
}

/**
 * SHA-256 (hex) of the normalized code, the value to store and look up. A fast hash is enough
 * here, unlike for passwords: each code is 60 uniformly random bits, so even at 10^10 SHA-256 per
 * second on a GPU, finding one code from a leaked hash takes years per GPU, and a recovery code
 * only replaces the second factor, never the password. A slow hash would add nothing but latency.
 */
export function hashRecoveryCode(code: string): string {
  return createHash('sha256').update(normalizeRecoveryCode(code)).digest('hex');
}
