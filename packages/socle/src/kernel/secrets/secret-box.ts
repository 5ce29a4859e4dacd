import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SocleError } from '../errors/index.js';

/**
 * Encrypts secrets that Socle must be able to read back (TOTP seeds, signing keys, webhook and app
 * secrets) before they reach the database, so a leaked dump or backup does not leak them.
 *
 * AES-256-GCM with a random 96-bit nonce per value; the `context` string (say
 * `identity.totp:<userId>`) is bound as additional authenticated data, so a ciphertext copied onto
 * another row does not decrypt. Sealed values look like `sb1.<keyId>.<base64url>`: the key id lets
 * a rotation keep reading values sealed with a previous key while new values use the current one.
 * Node's crypto does the cryptography; this file only fixes the format and the key handling.
 *
 * @example
 * const sealed = secrets.seal(totpSecret, `identity.totp:${userId}`);
 * const plain = secrets.open(sealed, `identity.totp:${userId}`);
 */
export interface SecretBox {
  /** Id of the current key: values sealed with it start with `sb1.<keyId>.`. */
  readonly keyId: string;
  /** How values sealed with the current key start (`sb1.<keyId>.`): for finding the others in SQL. */
  readonly currentPrefix: string;
  seal(plaintext: string, context: string): string;
  /** The plaintext of a sealed value; throws `secrets.undecryptable` for a wrong key or context. */
  open(sealed: string, context: string): string;
  /** True when `value` was sealed with the current key (false for older keys and plain text). */
  isCurrent(value: string): boolean;
  /** True when `value` has the sealed format (values written before encryption do not). */
  isSealed(value: string): boolean;
  /**
   * The plaintext of a stored value: opened when sealed, as is when it was written before its
   * column was sealed. For columns whose older rows may still be plain text.
   */
  openStored(stored: string, context: string): string;
  /**
   * A stored value sealed with the current key: the value itself when it already is, else opened
   * (previous key, or plain text from before sealing) and sealed again. What a reseal after a
   * SECRET_KEY rotation writes back.
   */
  reseal(stored: string, context: string): string;
  /**
   * A 32-byte key derived from the current key for `context` (HMAC-SHA256): the same on every node
   * sharing SECRET_KEY, unknown to anyone without it, and never stored. For secrets that every node
   * must agree on without a row to keep them in (the realtime operator feed's app secret).
   */
  derive(context: string): Buffer;
}

const PREFIX = 'sb1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const SECRET_KEY_BYTES = 32;

export const secretErrors = {
  undecryptable: (keyId: string) =>
    new SocleError(
      'secrets.undecryptable',
      `A stored secret could not be decrypted (key id ${keyId}). Is SECRET_KEY the key it was sealed with, or is that key listed in SECRET_KEYS_PREVIOUS?`,
      { status: 500 },
    ),
  keyRequired: () =>
    new SocleError(
      'config.invalid',
      'Invalid configuration (1 problem):\n  SECRET_KEY is required with DATABASE_URL: every node must seal and open secrets with the same key. Generate one with `openssl rand -base64 32`.',
      { status: 500, errors: [{ field: 'SECRET_KEY', message: 'is required with DATABASE_URL' }] },
    ),
};

/** Decodes a base64 or base64url key of exactly 32 bytes; undefined when it is not one. */
export function decodeSecretKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) return undefined;
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return key.length === SECRET_KEY_BYTES ? key : undefined;
}

function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('socle secret key id').update(key).digest('base64url').slice(0, 8);
}

/**
 * A secret box over a current key (seals and opens) and previous keys (open only), each 32 bytes.
 */
export function createSecretBox(current: Buffer, previous: readonly Buffer[] = []): SecretBox {
  const currentId = keyIdOf(current);
  const keys = new Map<string, Buffer>([[currentId, current]]);
  for (const key of previous) if (!keys.has(keyIdOf(key))) keys.set(keyIdOf(key), key);

  const parse = (value: string) => {
    const parts = value.split('.');
    if (parts.length !== 3 || parts[0] !== PREFIX) return undefined;
    return { keyId: parts[1] as string, payload: parts[2] as string };
  };

  const box: SecretBox = {
    keyId: currentId,
    currentPrefix: `${PREFIX}.${currentId}.`,
    seal(plaintext, context) {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current, nonce);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const encrypted = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const payload = Buffer.concat([nonce, encrypted, cipher.getAuthTag()]).toString('base64url');
      return `${PREFIX}.${currentId}.${payload}`;
    },
    open(sealed, context) {
      const parsed = parse(sealed);
      if (parsed === undefined) throw secretErrors.undecryptable('none: not a sealed value');
      const key = keys.get(parsed.keyId);
      const data = Buffer.from(parsed.payload, 'base64url');
      if (key === undefined || data.length < NONCE_BYTES + TAG_BYTES)
        throw secretErrors.undecryptable(parsed.keyId);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES));
        decipher.setAAD(Buffer.from(context, 'utf8'));
        decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
        return Buffer.concat([
          decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)),
          decipher.final(),
        ]).toString('utf8');
      } catch {
        throw secretErrors.undecryptable(parsed.keyId);
      }
    },
    isCurrent: (value) => parse(value)?.keyId === currentId,
    isSealed: (value) => parse(value) !== undefined,
    openStored: (stored, context) => (box.isSealed(stored) ? box.open(stored, context) : stored),
    reseal: (stored, context) =>
      box.isCurrent(stored) ? stored : box.seal(box.openStored(stored, context), context),
    derive: (context) => createHmac('sha256', current).update(`socle derived key:${context}`).digest(),
  };
  return box;
}

export interface SecretKeySource {
  /** SECRET_KEY, if set. */
  readonly secretKey: string | undefined;
  /** SECRET_KEYS_PREVIOUS: keys that still open values sealed before a rotation. */
  readonly previousSecretKeys: readonly string[];
  readonly mode: 'embedded' | 'postgres';
  /** Embedded mode: the data directory, where a generated key is kept when SECRET_KEY is unset. */
  readonly dataDir: string;
  /** Embedded database in memory: a key for this process only. */
  readonly inMemory?: boolean;
}

/** The file in the data directory holding the embedded mode's generated key. */
export const SECRET_KEY_FILE = 'secret-key';

/**
 * The secret box of a server. Postgres mode needs SECRET_KEY (all nodes must share it).
 * Embedded mode without it generates a key once and keeps it beside the data, readable by the
 * owner only: the key then protects copies of the database, not the data directory as a whole.
 */
export function openSecretBox(source: SecretKeySource): SecretBox {
  // Values were validated by the configuration parser.
  const previous = source.previousSecretKeys.map((text) => decodeSecretKey(text) as Buffer);
  if (source.secretKey !== undefined)
    return createSecretBox(decodeSecretKey(source.secretKey) as Buffer, previous);
  if (source.mode === 'postgres') throw secretErrors.keyRequired();
  if (source.inMemory) return createSecretBox(randomBytes(SECRET_KEY_BYTES), previous);
  mkdirSync(source.dataDir, { recursive: true });
  const file = path.join(source.dataDir, SECRET_KEY_FILE);
  try {
    const key = decodeSecretKey(readFileSync(file, 'utf8'));
    if (key === undefined) throw new Error(`${file} does not hold a base64 32-byte key`);
    return createSecretBox(key, previous);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(SECRET_KEY_BYTES);
  // `wx`: two processes starting at once cannot both write a key; the loser reads the winner's.
  try {
    writeFileSync(file, `${key.toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
    chmodSync(file, 0o600);
    return createSecretBox(key, previous);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return createSecretBox(decodeSecretKey(readFileSync(file, 'utf8')) as Buffer, previous);
  }
}
