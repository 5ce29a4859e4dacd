import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createApiKey,
  createSecretToken,
  hashSecretToken,
  parseSecretToken,
  timingSafeEqualHex,
} from './secret-tokens.js';

describe('createSecretToken', () => {
  it('makes a prefixed token of 32 random bytes and its SHA-256', () => {
    const { token, hash } = createSecretToken('rt');
    expect(token).toMatch(/^rt_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.slice(3), 'base64url')).toHaveLength(32);
    expect(hash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(hashSecretToken(token)).toBe(hash);
  });

  it('never makes the same token twice', () => {
    const tokens = new Set(Array.from({ length: 100 }, () => createSecretToken('rt').token));
    expect(tokens.size).toBe(100);
  });

  it.each(['', 'RT', '1rt', 'r t', 'rt.', 'a'.repeat(41)])('refuses the prefix %j', (prefix) => {
    expect(() => createSecretToken(prefix)).toThrow(TypeError);
  });
});

describe('parseSecretToken', () => {
  it('returns the hash of a well-formed token with the expected prefix', () => {
    const { token, hash } = createSecretToken('pwreset');
    expect(parseSecretToken(token, 'pwreset')).toEqual({ prefix: 'pwreset', hash });
  });

  it('refuses a token of another kind', () => {
    const { token } = createSecretToken('evt');
    expect(parseSecretToken(token, 'pwreset')).toBeUndefined();
    expect(parseSecretToken(token, 'ev')).toBeUndefined();
    expect(parseSecretToken(createSecretToken('rtx').token, 'rt')).toBeUndefined();
  });

  it('refuses truncated, extended, padded or non-canonical tokens', () => {
    const { token } = createSecretToken('rt');
    expect(parseSecretToken(token.slice(0, -1), 'rt')).toBeUndefined();
    expect(parseSecretToken(`${token}A`, 'rt')).toBeUndefined();
    expect(parseSecretToken(`${token}=`, 'rt')).toBeUndefined();
    expect(parseSecretToken(`rt_${'+'.repeat(43)}`, 'rt')).toBeUndefined();
    expect(parseSecretToken('', 'rt')).toBeUndefined();
    // The last of 43 characters carries 2 unused bits: "B" spells the same bytes as "A" does.
    expect(parseSecretToken(`rt_${'A'.repeat(42)}B`, 'rt')).toBeUndefined();
    expect(parseSecretToken(`rt_${'A'.repeat(42)}E`, 'rt')).toBeDefined();
  });
});

describe('createApiKey', () => {
  it('starts with its prefix and exposes only a short visible prefix', () => {
    const { key, prefix, hash } = createApiKey('sk_live');
    expect(key).toMatch(/^sk_live_[A-Za-z0-9_-]{43}$/);
    expect(prefix).toMatch(/^sk_live_[A-Za-z0-9_-]{8}$/);
    expect(key.startsWith(prefix)).toBe(true);
    expect(hash).toBe(hashSecretToken(key));
    expect(parseSecretToken(key, 'sk_live')?.hash).toBe(hash);
  });

  it('accepts an organization slug as prefix', () => {
    expect(createApiKey('acme-courtage').key.startsWith('acme-courtage_')).toBe(true);
  });
});

describe('timingSafeEqualHex', () => {
  it('compares hex strings', () => {
    const hash = hashSecretToken('a');
    expect(timingSafeEqualHex(hash, hash)).toBe(true);
    expect(timingSafeEqualHex(hash, hash.toUpperCase())).toBe(true);
    expect(timingSafeEqualHex(hash, hashSecretToken('b'))).toBe(false);
    expect(timingSafeEqualHex(hash, hash.slice(0, -2))).toBe(false);
    expect(timingSafeEqualHex('', '')).toBe(true);
  });

  it('treats strings that are not hex as unequal instead of decoding them partially', () => {
    // Buffer.from('zz', 'hex') is empty, so a naive comparison would find these equal.
    expect(timingSafeEqualHex('zz', 'yy')).toBe(false);
    expect(timingSafeEqualHex('abc', 'abc')).toBe(false);
  });
});
