import { describe, expect, it } from 'vitest';
import { type SocleError, toProblem } from '../../../kernel/errors/index.js';
import { decodeVariantSpec, encodeVariantSpec, parseVariantSpec } from './variant-spec.js';

function thrown(run: () => unknown): SocleError {
  try {
    run();
  } catch (error) {
    return error as SocleError;
  }
  throw new Error('expected an error');
}

describe('parseVariantSpec', () => {
  it('fills in fit, format and the format quality', () => {
    expect(parseVariantSpec({ width: 400 })).toEqual({
      width: 400,
      fit: 'cover',
      format: 'webp',
      quality: 80,
    });
    expect(parseVariantSpec({ height: 90, format: 'avif' })).toEqual({
      height: 90,
      fit: 'cover',
      format: 'avif',
      quality: 50,
    });
    expect(parseVariantSpec({ width: 64, height: 64, fit: 'inside', format: 'png' })).toEqual({
      width: 64,
      height: 64,
      fit: 'inside',
      format: 'png',
    });
  });

  it.each([
    [{ width: 0 }, 'variant/width'],
    [{ width: 4097 }, 'variant/width'],
    [{ width: 12.5 }, 'variant/width'],
    [{ width: '400' }, 'variant/width'],
    [{ height: 1_000_000 }, 'variant/height'],
    [{}, 'variant/width'],
    [{ width: 10, fit: 'stretch' }, 'variant/fit'],
    [{ width: 10, format: 'gif' }, 'variant/format'],
    [{ width: 10, quality: 0 }, 'variant/quality'],
    [{ width: 10, quality: 101 }, 'variant/quality'],
    [{ width: 10, format: 'png', quality: 80 }, 'variant/quality'],
    [{ width: 10, blur: 3 }, 'variant/blur'],
  ])('refuses %j with a 400 naming %s', (input, field) => {
    const error = thrown(() => parseVariantSpec(input));
    expect(error).toMatchObject({ code: 'files.variant_invalid', status: 400 });
    expect(toProblem(error).errors?.map((fieldError) => fieldError.field)).toEqual([field]);
  });

  it('names every bad field at once, under the prefix given', () => {
    const error = thrown(() => parseVariantSpec({ width: -1, format: 'bmp' }, 'body/variant'));
    expect(error.errors.map((fieldError) => fieldError.field)).toEqual([
      'body/variant/width',
      'body/variant/format',
    ]);
  });

  it('refuses something that is not an object', () => {
    expect(thrown(() => parseVariantSpec('w400.webp')).errors).toEqual([
      { field: 'variant', message: 'must be an object' },
    ]);
  });
});

describe('encodeVariantSpec and decodeVariantSpec', () => {
  it.each([
    [{ width: 400, fit: 'cover', format: 'webp', quality: 80 }, 'w400-cover-q80.webp'],
    [{ width: 400, height: 300, fit: 'contain', format: 'jpeg', quality: 75 }, 'w400-h300-contain-q75.jpeg'],
    [{ height: 64, fit: 'inside', format: 'png' }, 'h64-inside.png'],
  ] as const)('%j is %s and back', (spec, text) => {
    expect(encodeVariantSpec(spec)).toBe(text);
    expect(decodeVariantSpec(text)).toEqual(spec);
  });

  it('encodes specs written differently but meaning the same variant identically', () => {
    expect(encodeVariantSpec(parseVariantSpec({ width: 400 }))).toBe(
      encodeVariantSpec(parseVariantSpec({ quality: 80, format: 'webp', fit: 'cover', width: 400 })),
    );
  });

  it.each([
    'w0400-cover-q80.webp',
    'w400-cover.webp',
    'h300-w400-cover-q80.webp',
    'w400-cover-q80.WEBP',
    'w400-cover-q80.gif',
    'w9999-cover-q80.webp',
    'cover-q80.webp',
    'w400-cover-q80.webp ',
    '',
  ])('refuses %j naming the query field', (text) => {
    const error = thrown(() => decodeVariantSpec(text, 'query/variant'));
    expect(error).toMatchObject({ code: 'files.variant_invalid', status: 400 });
    expect(error.errors.every((fieldError) => fieldError.field.startsWith('query/variant'))).toBe(true);
  });
});
