import type { ByteRange } from '../../kernel/index.js';
import { filesErrors } from './files.errors.js';

/**
 * The one byte range of a `Range` header over a blob of `size` bytes: undefined to send the whole
 * blob (no header, a unit other than bytes, or several ranges, which RFC 9110 lets a server
 * answer in full), 416 `files.range_not_satisfiable` when it lies outside. Hand-written: the
 * single-range subset is a dozen lines, and the `range-parser` package would add multi-range
 * handling this server does not offer.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  let start: number;
  let end: number;
  if (first === '') {
    // Suffix: the last N bytes.
    const length = Number(last);
    if (length === 0) throw filesErrors.rangeNotSatisfiable(size);
    start = Math.max(0, size - length);
    end = size - 1;
  } else {
    start = Number(first);
    end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
    if (last !== '' && Number(last) < start) return undefined;
  }
  if (start >= size || size === 0) throw filesErrors.rangeNotSatisfiable(size);
  return { start, end };
}
