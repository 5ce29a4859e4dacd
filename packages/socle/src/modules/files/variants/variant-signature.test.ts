import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createManualClock } from '../../../kernel/clock/index.js';
import { createVariantSigner, type SignedVariantParameters } from './variant-signature.js';

const key = randomBytes(32);
const objectKey = 'tenant-1/avatars/42.jpg';

function setup() {
  const clock = createManualClock(new Date('2026-03-01T12:00:00Z'));
  const signer = createVariantSigner({ key, clock });
  const signed = signer.sign(objectKey, { width: 400 }, new Date('2026-03-01T13:00:00Z'));
  return { clock, signer, signed };
}

describe('createVariantSigner', () => {
  it('carries the canonical spec and the expiry, and verifies them back', () => {
    const { signer, signed } = setup();
    expect(signed).toMatchObject({ variant: 'w400-cover-q80.webp', expires: 1_772_370_000 });
    expect(signed.signature).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(signer.verify(objectKey, signed)).toEqual({
      width: 400,
      fit: 'cover',
      format: 'webp',
      quality: 80,
    });
  });

  it('verifies the parameters as strings, as they come in a query', () => {
    const { signer, signed } = setup();
    const query = new URLSearchParams({ ...signed, expires: String(signed.expires) });
    expect(signer.verify(objectKey, Object.fromEntries(query))).toMatchObject({ width: 400 });
  });

  const flipped = (signature: string) =>
    `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;

  it.each<[string, (signed: SignedVariantParameters) => Record<string, unknown>]>([
    ['another size', (signed) => ({ ...signed, variant: 'w4000-cover-q80.webp' })],
    ['another format', (signed) => ({ ...signed, variant: 'w400-cover-q80.avif' })],
    ['a later expiry', (signed) => ({ ...signed, expires: signed.expires + 1 })],
    ['a flipped signature character', (signed) => ({ ...signed, signature: flipped(signed.signature) })],
    ['a truncated signature', (signed) => ({ ...signed, signature: signed.signature.slice(0, 42) })],
    ['a signature with a padding character', (signed) => ({ ...signed, signature: `${signed.signature}=` })],
    ['no signature', (signed) => ({ variant: signed.variant, expires: signed.expires })],
    ['no expiry', (signed) => ({ variant: signed.variant, signature: signed.signature })],
    ['a non-numeric expiry', (signed) => ({ ...signed, expires: '1e10' })],
  ])('refuses %s with 403 files.signature_invalid', (_case, tamper) => {
    const { signer, signed } = setup();
    expect(() => signer.verify(objectKey, tamper(signed))).toThrow(
      expect.objectContaining({ code: 'files.signature_invalid', status: 403 }),
    );
  });

  it('refuses a signature made for another object key', () => {
    const { signer, signed } = setup();
    expect(() => signer.verify('tenant-2/avatars/42.jpg', signed)).toThrow(
      expect.objectContaining({ code: 'files.signature_invalid', status: 403 }),
    );
  });

  it('refuses a signature made with another key', () => {
    const { clock, signed } = setup();
    const other = createVariantSigner({ key: randomBytes(32), clock });
    expect(() => other.verify(objectKey, signed)).toThrow(
      expect.objectContaining({ code: 'files.signature_invalid' }),
    );
  });

  it('refuses a genuine signature once expired, saying when', () => {
    const { clock, signer, signed } = setup();
    clock.advance(60 * 60 * 1000 - 1);
    expect(signer.verify(objectKey, signed)).toMatchObject({ width: 400 });
    clock.advance(1);
    expect(() => signer.verify(objectKey, signed)).toThrow(
      expect.objectContaining({
        code: 'files.signature_expired',
        status: 403,
        details: { expiredAt: '2026-03-01T13:00:00.000Z' },
      }),
    );
  });

  it('signs only valid variants, so no signed URL asks for an arbitrary size', () => {
    const { signer } = setup();
    expect(() => signer.sign(objectKey, { width: 100_000 }, new Date('2026-03-02T00:00:00Z'))).toThrow(
      expect.objectContaining({ code: 'files.variant_invalid' }),
    );
  });

  it('refuses a short key and an expiry in the past', () => {
    expect(() => createVariantSigner({ key: randomBytes(16) })).toThrow(TypeError);
    const { signer } = setup();
    expect(() => signer.sign(objectKey, { width: 10 }, new Date('2026-03-01T11:00:00Z'))).toThrow(TypeError);
  });
});
