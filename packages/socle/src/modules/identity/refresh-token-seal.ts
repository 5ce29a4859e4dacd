import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Encrypts the refresh token that replaced `previousToken` with a key derived from
 * `previousToken` itself. Stored beside the used token's hash, it lets a concurrent refresh that
 * presents the same previous token (another tab, a retried request) receive the same replacement
 * during the grace window, while a database reader, who never sees tokens, cannot open it.
 */
export function sealReplacement(replacement: string, previousToken: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(previousToken), iv);
  const body = Buffer.concat([cipher.update(replacement, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** Opens what {@link sealReplacement} sealed; undefined if the token does not open it. */
export function openReplacement(sealed: string, previousToken: string): string | undefined {
  try {
    const data = Buffer.from(sealed, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', keyOf(previousToken), data.subarray(0, 12));
    decipher.setAuthTag(data.subarray(12, 28));
    return Buffer.concat([decipher.update(data.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

function keyOf(token: string): Buffer {
  return Buffer.from(hkdfSync('sha256', token, Buffer.alloc(0), 'socle refresh-token replacement', 32));
}
