import { generate } from 'otplib';
import { describe, expect, it } from 'vitest';
import {
  createTotpEnrollment,
  generateRecoveryCodes,
  hashRecoveryCode,
  normalizeRecoveryCode,
  verifyTotp,
} from './totp.js';

// A fixed secret (RFC 6238 test key "12345678901234567890" in base32) and a fixed instant, 15 s
// into its step, so no test depends on the wall clock.
const secret = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const now = new Date('2026-01-01T00:00:15Z');
const nowSeconds = now.getTime() / 1000;
const currentStep = Math.floor(nowSeconds / 30);

function codeAt(epochSeconds: number): Promise<string> {
  return generate({ secret, epoch: epochSeconds });
}

describe('verifyTotp', () => {
  it('matches the RFC 6238 test vector', async () => {
    // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082, of which an app shows the last 6 digits.
    expect(await codeAt(59)).toBe('287082');
  });

  it('accepts the current code and returns its step', async () => {
    const code = await codeAt(nowSeconds);
    expect(await verifyTotp({ secret, code, now })).toEqual({ ok: true, step: currentStep });
  });

  it('accepts the previous and next steps with window 1, not two steps away', async () => {
    expect(await verifyTotp({ secret, code: await codeAt(nowSeconds - 30), now })).toEqual({
      ok: true,
      step: currentStep - 1,
    });
    expect(await verifyTotp({ secret, code: await codeAt(nowSeconds + 30), now })).toEqual({
      ok: true,
      step: currentStep + 1,
    });
    expect(await verifyTotp({ secret, code: await codeAt(nowSeconds - 60), now })).toEqual({
      ok: false,
      reason: 'invalid',
    });
    expect(await verifyTotp({ secret, code: await codeAt(nowSeconds - 60), now, window: 2 })).toEqual({
      ok: true,
      step: currentStep - 2,
    });
  });

  it('accepts only the current step with window 0', async () => {
    expect(await verifyTotp({ secret, code: await codeAt(nowSeconds - 30), now, window: 0 })).toEqual({
      ok: false,
      reason: 'invalid',
    });
  });

  it('refuses a code used a second time within the same step as reused', async () => {
    const code = await codeAt(nowSeconds);
    const first = await verifyTotp({ secret, code, now });
    expect(first.ok).toBe(true);
    const lastUsedStep = first.ok ? first.step : -1;
    expect(await verifyTotp({ secret, code, now: new Date(now.getTime() + 5_000), lastUsedStep })).toEqual({
      ok: false,
      reason: 'reused',
    });
  });

  it('refuses an older code once a newer one was used, and accepts the next one', async () => {
    const lastUsedStep = currentStep;
    expect(await verifyTotp({ secret, code: await codeAt(nowSeconds - 30), now, lastUsedStep })).toEqual({
      ok: false,
      reason: 'reused',
    });
    expect(await verifyTotp({ secret, code: await codeAt(nowSeconds + 30), now, lastUsedStep })).toEqual({
      ok: true,
      step: currentStep + 1,
    });
  });

  it('does not fail when the last used step is past the window', async () => {
    const code = await codeAt(nowSeconds);
    expect(await verifyTotp({ secret, code, now, lastUsedStep: currentStep + 5 })).toEqual({
      ok: false,
      reason: 'reused',
    });
  });

  it('ignores spaces and treats malformed input as an invalid code', async () => {
    const code = await codeAt(nowSeconds);
    expect(await verifyTotp({ secret, code: `${code.slice(0, 3)} ${code.slice(3)}`, now })).toMatchObject({
      ok: true,
    });
    for (const malformed of ['', '12345', '1234567', 'abcdef', '12345a']) {
      expect(await verifyTotp({ secret, code: malformed, now })).toEqual({ ok: false, reason: 'invalid' });
    }
  });

  it('refuses a wrong code', async () => {
    const right = await codeAt(nowSeconds);
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0');
    expect(await verifyTotp({ secret, code: wrong, now })).toEqual({ ok: false, reason: 'invalid' });
  });
});

describe('createTotpEnrollment', () => {
  it('returns a base32 secret, an otpauth URI naming issuer and account, and a PNG QR code', async () => {
    const enrollment = await createTotpEnrollment({ accountName: 'jean@example.com', issuer: 'Acme CRM' });
    expect(enrollment.secret).toMatch(/^[A-Z2-7]{32}$/);

    const uri = new URL(enrollment.otpauthUri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.host).toBe('totp');
    expect(decodeURIComponent(uri.pathname)).toBe('/Acme CRM:jean@example.com');
    expect(uri.searchParams.get('secret')).toBe(enrollment.secret);
    expect(uri.searchParams.get('issuer')).toBe('Acme CRM');

    const prefix = 'data:image/png;base64,';
    expect(enrollment.qrCodeDataUrl.startsWith(prefix)).toBe(true);
    const png = Buffer.from(enrollment.qrCodeDataUrl.slice(prefix.length), 'base64');
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  });

  it('creates a secret that verifies codes', async () => {
    const { secret: fresh } = await createTotpEnrollment({ accountName: 'a@example.com', issuer: 'Acme' });
    const code = await generate({ secret: fresh, epoch: nowSeconds });
    expect(await verifyTotp({ secret: fresh, code, now })).toEqual({ ok: true, step: currentStep });
  });

  it('creates a different secret each time', async () => {
    const options = { accountName: 'a@example.com', issuer: 'Acme' };
    const [first, second] = await Promise.all([createTotpEnrollment(options), createTotpEnrollment(options)]);
    expect(first.secret).not.toBe(second.secret);
  });
});

describe('recovery codes', () => {
  it('generates distinct codes shaped xxxx-xxxx-xxxx without ambiguous letters', () => {
    const codes = generateRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes)
      expect(code).toMatch(/^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/);
    expect(generateRecoveryCodes(3)).toHaveLength(3);
  });

  it('hashes a code the same however the user types it', () => {
    const [code = ''] = generateRecoveryCodes(1);
    const hash = hashRecoveryCode(code);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hashRecoveryCode(code.toUpperCase())).toBe(hash);
    expect(hashRecoveryCode(code.replaceAll('-', ' '))).toBe(hash);
    expect(hashRecoveryCode(` ${code.replaceAll('-', '')} `)).toBe(hash);
  });

  it('reads o, i and l as the digits they look like', () => {
    expect(normalizeRecoveryCode('O0iL-1abc-DEF2')).toBe('00111abcdef2');
    expect(hashRecoveryCode('0011-1abc-def2')).toBe(hashRecoveryCode('oOIl-Iabc-def2'));
  });

  it('gives different codes different hashes', () => {
    expect(hashRecoveryCode('abcd-efgh-jkmn')).not.toBe(hashRecoveryCode('abcd-efgh-jkmp'));
  });
});
