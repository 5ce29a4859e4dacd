import { describe, expect, it } from 'vitest';
import { findUnstorableValues, MAX_JSON_DEPTH } from './request-values.js';

describe('findUnstorableValues', () => {
  it('accepts ordinary JSON', () => {
    expect(findUnstorableValues({ a: ['x', 1.5, -3, null, true, { b: 'é' }] }, 'body')).toEqual([]);
  });

  it('names each string, key and number no store can hold', () => {
    const value = JSON.parse(
      '{"a": "x\\u0000", "b": ["\\ud800"], "\\u0000k": 1, "c": 1e400, "d": 9007199254740993}',
    );
    expect(findUnstorableValues(value, 'body')).toEqual(
      expect.arrayContaining([
        { field: 'body/a', message: 'must not contain the NUL character (U+0000)' },
        { field: 'body/b/0', message: 'must be well-formed Unicode (it holds a lone surrogate)' },
        { field: 'body/\\u0000k', message: 'has a name that must not contain the NUL character (U+0000)' },
        { field: 'body/c', message: 'must be a finite number' },
        { field: 'body/d', message: 'must be between -9007199254740991 and 9007199254740991' },
      ]),
    );
  });

  it('walks the query parser objects (no Object prototype) and refuses deep nesting without recursion', () => {
    const query = Object.assign(Object.create(Object.create(null)), { limit: Number.POSITIVE_INFINITY });
    expect(findUnstorableValues(query, 'query')).toEqual([
      { field: 'query/limit', message: 'must be a finite number' },
    ]);
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    expect(findUnstorableValues(deep, 'body')).toEqual([
      {
        field: `body${'/0'.repeat(MAX_JSON_DEPTH)}`,
        message: `is nested deeper than ${MAX_JSON_DEPTH} levels`,
      },
    ]);
  });
});
