import { describe, expect, it } from 'vitest';
import { parseRange } from './http-ranges.js';
import { createUrlSigner } from './signed-urls.js';

const signer = createUrlSigner(Buffer.alloc(32, 7));
const now = new Date('2026-06-01T00:00:00Z');
const queryOf = (url: string) => Object.fromEntries(new URL(url, 'http://x').searchParams);

describe('signed URLs', () => {
  const url = signer.sign(
    '/files/signed/photos/1',
    { scope: 't.abc', w: '400' },
    new Date(now.getTime() + 60_000),
  );

  it('verifies its own links and returns the signed parameters', () => {
    expect(signer.verify('/files/signed/photos/1', queryOf(url), now).params).toEqual({
      scope: 't.abc',
      w: '400',
    });
  });

  it('refuses a changed path, parameter, added parameter or expiry, and an expired link', () => {
    const query = queryOf(url);
    expect(() => signer.verify('/files/signed/photos/2', query, now)).toThrow(/signature/);
    expect(() => signer.verify('/files/signed/photos/1', { ...query, w: '4000' }, now)).toThrow(/signature/);
    expect(() => signer.verify('/files/signed/photos/1', { ...query, h: '10' }, now)).toThrow(/signature/);
    expect(() =>
      signer.verify('/files/signed/photos/1', { ...query, expires: String(Number(query.expires) + 1) }, now),
    ).toThrow(/signature/);
    expect(() => signer.verify('/files/signed/photos/1', query, new Date(now.getTime() + 61_000))).toThrow(
      expect.objectContaining({ code: 'files.signature_expired' }),
    );
  });
});

describe('Range', () => {
  it('reads one range, a suffix or an open end; ignores what it does not serve; refuses outside', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=50-500', 100)).toEqual({ start: 50, end: 99 });
    expect(parseRange('bytes=0-1,5-6', 100)).toBeUndefined();
    expect(parseRange('items=0-1', 100)).toBeUndefined();
    expect(() => parseRange('bytes=100-', 100)).toThrow(
      expect.objectContaining({ code: 'files.range_not_satisfiable' }),
    );
  });
});
