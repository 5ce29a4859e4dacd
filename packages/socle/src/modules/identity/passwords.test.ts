import { hash as argon2Hash } from '@node-rs/argon2';
import { describe, expect, it } from 'vitest';
import { isSocleError } from '../../kernel/errors/index.js';
import {
  checkPasswordPolicy,
  DUMMY_PASSWORD_HASH,
  hashPassword,
  needsRehash,
  normalizeEmail,
  PASSWORD_HASH_PARAMETERS,
  verifyAgainstDummy,
  verifyPassword,
} from './passwords.js';

describe('hashPassword / verifyPassword', () => {
  it('verifies the password it hashed and nothing else', async () => {
    const passwordHash = await hashPassword('violet lantern quietly orbits');
    expect(passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(await verifyPassword(passwordHash, 'violet lantern quietly orbits')).toBe(true);
    expect(await verifyPassword(passwordHash, 'violet lantern quietly orbit')).toBe(false);
    expect(await verifyPassword(passwordHash, 'Violet lantern quietly orbits')).toBe(false);
  });

  it('salts each hash', async () => {
    const [first, second] = await Promise.all([hashPassword('same password'), hashPassword('same password')]);
    expect(first).not.toBe(second);
  });

  it('matches the same password typed in composed or decomposed Unicode', async () => {
    const composed = 'café crème brûlée';
    const decomposed = composed.normalize('NFD');
    expect(decomposed).not.toBe(composed);
    expect(await verifyPassword(await hashPassword(composed), decomposed)).toBe(true);
  });

  it('rejects a stored hash that is not an Argon2 hash', async () => {
    await expect(verifyPassword('not-a-hash', 'whatever')).rejects.toThrow();
  });
});

describe('needsRehash', () => {
  it('is false for a hash made with the current parameters', async () => {
    expect(needsRehash(await hashPassword('violet lantern quietly orbits'))).toBe(false);
  });

  it('is true for a hash made with weaker parameters, which still verifies', async () => {
    const weak = await argon2Hash('violet lantern quietly orbits', {
      ...PASSWORD_HASH_PARAMETERS,
      memoryCost: 4096,
      timeCost: 1,
    });
    expect(needsRehash(weak)).toBe(true);
    expect(await verifyPassword(weak, 'violet lantern quietly orbits')).toBe(true);
  });

  it('is true for a hash of another algorithm or an unreadable string', async () => {
    const argon2i = await argon2Hash('x', { ...PASSWORD_HASH_PARAMETERS, algorithm: 1 });
    expect(needsRehash(argon2i)).toBe(true);
    expect(needsRehash('$2b$10$abcdefghijklmnopqrstuv')).toBe(true);
  });
});

describe('verifyAgainstDummy', () => {
  it('uses a dummy hash with the current parameters, so it costs what a real verify costs', () => {
    // If PASSWORD_HASH_PARAMETERS change, regenerate DUMMY_PASSWORD_HASH with hashPassword().
    expect(needsRehash(DUMMY_PASSWORD_HASH)).toBe(false);
  });

  it('always answers false', async () => {
    expect(await verifyAgainstDummy('violet lantern quietly orbits')).toBe(false);
    expect(await verifyAgainstDummy('')).toBe(false);
  });
});

describe('checkPasswordPolicy', () => {
  it('accepts a long passphrase of uncommon words', () => {
    expect(
      checkPasswordPolicy('violet lantern quietly orbits', { email: 'jean.dupont@example.com' }),
    ).toEqual({ ok: true });
  });

  it.each(['password1234', 'qwertyuiop', 'iloveyou2024', '1234567890'])(
    'refuses the common %j',
    (password) => {
      const verdict = checkPasswordPolicy(password);
      expect(verdict.ok).toBe(false);
      if (!verdict.ok) {
        expect(verdict.reasons.length).toBeGreaterThan(0);
        for (const reason of verdict.reasons) expect(reason).toMatch(/^[A-Z].*\.$/);
      }
    },
  );

  it('explains what is wrong with a frequently used password', () => {
    expect(checkPasswordPolicy('qwertyuiop')).toEqual({
      ok: false,
      reasons: expect.arrayContaining(['This is a frequently used password.']),
    });
  });

  it('refuses a password shorter than 10 characters, counted in code points', () => {
    expect(checkPasswordPolicy('Zq9$wX1!')).toEqual({
      ok: false,
      reasons: expect.arrayContaining(['Use at least 10 characters.']),
    });
    // Nine emoji are 18 UTF-16 code units but 9 characters.
    const nineEmoji = '🦊🌵🎺🧭🪐🍄🛶🧩🔭';
    expect(nineEmoji.length).toBe(18);
    expect(checkPasswordPolicy(nineEmoji)).toMatchObject({
      reasons: expect.arrayContaining(['Use at least 10 characters.']),
    });
    const tenEmoji = `${nineEmoji}🦉`;
    const verdict = checkPasswordPolicy(tenEmoji);
    expect(verdict.ok ? [] : verdict.reasons).not.toContain('Use at least 10 characters.');
  });

  it('refuses a password longer than 256 characters', () => {
    expect(checkPasswordPolicy('violet lantern '.repeat(20))).toEqual({
      ok: false,
      reasons: ['Use at most 256 characters.'],
    });
  });

  it('refuses a strong password that contains the email local part or the name', () => {
    const personal = 'Do not use your name or your email address in the password.';
    expect(
      checkPasswordPolicy('jean.dupont violet lantern orbits', { email: 'Jean.Dupont@example.com' }),
    ).toEqual({ ok: false, reasons: [personal] });
    expect(checkPasswordPolicy('violet lantern orbits of DUPONT', { name: 'Jean Dupont' })).toEqual({
      ok: false,
      reasons: [personal],
    });
    expect(checkPasswordPolicy('violet lantern quietly orbits', { name: 'Jean Dupont' })).toEqual({
      ok: true,
    });
  });
});

describe('normalizeEmail', () => {
  it.each([
    ['Jean.Dupont@Example.COM', 'jean.dupont@example.com'],
    ['  jean@example.com\n', 'jean@example.com'],
    ['ＪＥＡＮ＠ＥＸＡＭＰＬＥ．ＣＯＭ', 'jean@example.com'],
    ['jean.dupont+crm@gmail.com', 'jean.dupont+crm@gmail.com'],
    ['josé@exämple.fr', 'josé@exämple.fr'],
  ])('normalizes %j to %j', (input, expected) => {
    expect(normalizeEmail(input)).toBe(expected);
  });

  it.each([
    '',
    'jean',
    'jean@',
    '@example.com',
    'jean@example',
    'jean@@example.com',
    'jean@exa@mple.com',
    'jean dupont@example.com',
    'jean@example..com',
    'jean@-example.com',
    'jean\u0000@example.com',
    'jean\u200b@example.com',
    '"jean"@example.com',
    `${'a'.repeat(65)}@example.com`,
    `jean@${'a'.repeat(250)}.com`,
  ])('refuses %j with auth.invalid_email', (input) => {
    let caught: unknown;
    try {
      normalizeEmail(input);
    } catch (error) {
      caught = error;
    }
    expect(isSocleError(caught) && caught.code).toBe('auth.invalid_email');
  });
});
