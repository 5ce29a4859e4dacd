import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSecretBox, decodeSecretKey, openSecretBox, SECRET_KEY_FILE } from './secret-box.js';

const keyA = randomBytes(32);
const keyB = randomBytes(32);

describe('secret box', () => {
  it('opens what it sealed, and the sealed text does not contain the plaintext', () => {
    const box = createSecretBox(keyA);
    const sealed = box.seal('JBSWY3DPEHPK3PXP', 'identity.totp:u1');
    expect(sealed).toMatch(/^sb1\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(box.open(sealed, 'identity.totp:u1')).toBe('JBSWY3DPEHPK3PXP');
    expect(box.seal('same', 'c')).not.toBe(box.seal('same', 'c'));
  });

  it('refuses a value moved to another context (another row)', () => {
    const box = createSecretBox(keyA);
    const sealed = box.seal('secret', 'identity.totp:u1');
    expect(() => box.open(sealed, 'identity.totp:u2')).toThrow(
      expect.objectContaining({ code: 'secrets.undecryptable' }),
    );
  });

  it('derives the same key for a context from the same SECRET_KEY only, another for another context', () => {
    const derived = createSecretBox(keyA).derive('realtime.operator-app');
    expect(derived).toHaveLength(32);
    expect(createSecretBox(keyA, [keyB]).derive('realtime.operator-app').equals(derived)).toBe(true);
    expect(createSecretBox(keyB).derive('realtime.operator-app').equals(derived)).toBe(false);
    expect(createSecretBox(keyA).derive('another').equals(derived)).toBe(false);
    expect(derived.includes(keyA)).toBe(false);
  });

  it('refuses a tampered value', () => {
    const box = createSecretBox(keyA);
    const sealed = box.seal('secret', 'c');
    // A character inside the payload: the last one of base64url may carry only padding bits, so
    // changing it can leave the decoded bytes as they were (the test then failed at random).
    const at = sealed.length - 10;
    const swapped = sealed[at] === 'A' ? 'B' : 'A';
    expect(() => box.open(`${sealed.slice(0, at)}${swapped}${sealed.slice(at + 1)}`, 'c')).toThrow(
      expect.objectContaining({ code: 'secrets.undecryptable' }),
    );
  });

  it('keeps opening values of a previous key after a rotation, and tells which need resealing', () => {
    const before = createSecretBox(keyA);
    const old = before.seal('secret', 'c');
    const after = createSecretBox(keyB, [keyA]);
    expect(after.open(old, 'c')).toBe('secret');
    expect(after.isCurrent(old)).toBe(false);
    expect(after.isCurrent(after.seal('secret', 'c'))).toBe(true);
    expect(() => createSecretBox(keyB).open(old, 'c')).toThrow(
      expect.objectContaining({ code: 'secrets.undecryptable' }),
    );
    expect(after.isSealed('JBSWY3DPEHPK3PXP')).toBe(false);
  });

  it('reseals stored values with the current key: previous-key and plain ones, current ones as they are', () => {
    const old = createSecretBox(keyA).seal('seed', 'c');
    const box = createSecretBox(keyB, [keyA]);
    const current = box.seal('seed', 'c');
    expect(box.reseal(current, 'c')).toBe(current);
    for (const stored of [old, 'seed']) {
      const resealed = box.reseal(stored, 'c');
      expect(box.isCurrent(resealed)).toBe(true);
      expect(box.open(resealed, 'c')).toBe('seed');
      expect(box.openStored(stored, 'c')).toBe('seed');
    }
  });

  it('accepts base64 and base64url keys of 32 bytes only', () => {
    expect(decodeSecretKey(keyA.toString('base64'))?.equals(keyA)).toBe(true);
    expect(decodeSecretKey(keyA.toString('base64url'))?.equals(keyA)).toBe(true);
    expect(decodeSecretKey(randomBytes(16).toString('base64'))).toBeUndefined();
    expect(decodeSecretKey('not a key')).toBeUndefined();
  });
});

describe('openSecretBox', () => {
  const directories: string[] = [];
  afterEach(() => {
    for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
  });

  it('requires SECRET_KEY on Postgres, naming the setting', () => {
    expect(() =>
      openSecretBox({ secretKey: undefined, previousSecretKeys: [], mode: 'postgres', dataDir: '.' }),
    ).toThrow(/SECRET_KEY is required with DATABASE_URL/);
  });

  it('embedded without SECRET_KEY: generates a key once, owner-only, and reuses it', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'socle-secrets-'));
    directories.push(dataDir);
    const source = { secretKey: undefined, previousSecretKeys: [], mode: 'embedded', dataDir } as const;
    const sealed = openSecretBox(source).seal('secret', 'c');
    const file = path.join(dataDir, SECRET_KEY_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(decodeSecretKey(readFileSync(file, 'utf8'))).toBeDefined();
    expect(openSecretBox(source).open(sealed, 'c')).toBe('secret');
  });

  it('SECRET_KEY wins over the generated file', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'socle-secrets-'));
    directories.push(dataDir);
    const box = openSecretBox({
      secretKey: keyA.toString('base64'),
      previousSecretKeys: [],
      mode: 'embedded',
      dataDir,
    });
    expect(createSecretBox(keyA).open(box.seal('x', 'c'), 'c')).toBe('x');
  });
});
