import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import { encryptedChannelKey, parseJsonObject } from './protocol.js';

const NONCE_BYTES = 24;

/**
 * The data of an event on a `private-encrypted-` channel, as the pusher server SDKs encrypt it:
 * the JSON of `data` in a NaCl secretbox (XSalsa20-Poly1305) under the channel's key, sent as
 * `{"nonce","ciphertext"}` in base64; pusher-js opens it with the `shared_secret` the auth
 * endpoint gave it. tweetnacl because Node's crypto has no XSalsa20-Poly1305.
 */
export function encryptEventData(channel: string, masterKey: Buffer, data: unknown): string {
  const nonce = randomBytes(NONCE_BYTES);
  const ciphertext = nacl.secretbox(
    Buffer.from(JSON.stringify(data ?? null)),
    nonce,
    encryptedChannelKey(channel, masterKey),
  );
  return JSON.stringify({
    nonce: nonce.toString('base64'),
    ciphertext: Buffer.from(ciphertext).toString('base64'),
  });
}

/** Whether event data has the shape of an encrypted event (it cannot tell a forged one). */
export function looksEncrypted(data: string): boolean {
  const parsed = parseJsonObject(data);
  if (parsed === undefined) return false;
  const { nonce, ciphertext } = parsed;
  return typeof nonce === 'string' && typeof ciphertext === 'string' && nonce !== '' && ciphertext !== '';
}
