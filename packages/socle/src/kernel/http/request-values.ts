import type { FieldError } from '../errors/index.js';

/** Deeper JSON than this is refused: no API of Socle needs it, and Postgres' jsonb has a stack. */
export const MAX_JSON_DEPTH = 64;

/**
 * Values a schema lets through but no store can hold, or no client meant:
 *
 * - a string or object key holding U+0000 (Postgres text and jsonb refuse it) or a lone UTF-16
 *   surrogate (`"\ud800"` in JSON: not text, and jsonb refuses it);
 * - a number that is not finite (`1e400` in JSON, or `"1e309"` coerced from a query string) or an
 *   integral number beyond ±(2^53 − 1), which JSON cannot carry exactly and no integer column holds;
 * - nesting deeper than {@link MAX_JSON_DEPTH}.
 *
 * Returns one field error per offending value, named like the schema's (`query/limit`,
 * `body/members/0/name`). Iterative, so a deeply nested body cannot overflow the stack.
 */
export function findUnstorableValues(value: unknown, field: string): FieldError[] {
  const found: FieldError[] = [];
  const pending: { value: unknown; field: string; depth: number }[] = [{ value, field, depth: 0 }];
  while (pending.length > 0 && found.length < 20) {
    const current = pending.pop() as (typeof pending)[number];
    const problem = problemOf(current.value);
    if (problem !== undefined) {
      found.push({ field: current.field, message: problem });
      continue;
    }
    if (current.value === null || typeof current.value !== 'object') continue;
    if (current.depth >= MAX_JSON_DEPTH) {
      found.push({ field: current.field, message: `is nested deeper than ${MAX_JSON_DEPTH} levels` });
      continue;
    }
    if (Array.isArray(current.value)) {
      current.value.forEach((item, index) => {
        pending.push({ value: item, field: `${current.field}/${index}`, depth: current.depth + 1 });
      });
    } else if (isPlainObject(current.value)) {
      for (const [key, item] of Object.entries(current.value)) {
        const keyProblem = problemOfString(key);
        const itemField = `${current.field}/${key.replaceAll('\u0000', '\\u0000')}`;
        if (keyProblem !== undefined)
          found.push({ field: itemField, message: `has a name that ${keyProblem}` });
        else pending.push({ value: item, field: itemField, depth: current.depth + 1 });
      }
    }
  }
  return found;
}

/** An object of parsed data: JSON's, or the query parser's (whose prototype has no prototype). */
function isPlainObject(value: object): value is Record<string, unknown> {
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null || Object.getPrototypeOf(prototype) === null;
}

function problemOf(value: unknown): string | undefined {
  if (typeof value === 'string') return problemOfString(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return 'must be a finite number';
    if (Math.abs(value) > Number.MAX_SAFE_INTEGER)
      return `must be between ${-Number.MAX_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}`;
  }
  return undefined;
}

function problemOfString(value: string): string | undefined {
  if (value.includes('\u0000')) return 'must not contain the NUL character (U+0000)';
  if (!value.isWellFormed()) return 'must be well-formed Unicode (it holds a lone surrogate)';
  return undefined;
}

/** The part of an Ajv instance {@link refineFormats} uses (Ajv is Fastify's, not a dependency). */
interface FormatRegistry {
  readonly formats: Record<string, unknown>;
  addFormat(name: string, format: { type: 'string'; validate: (value: string) => boolean }): unknown;
}

/**
 * Narrows formats to what handlers and Postgres hold: a `date-time` of year 0000 is valid RFC 3339
 * but not a Postgres timestamp (it has no year zero), and one JavaScript cannot represent (a leap
 * second, `23:59:60`; past ±275,760 years) would reach a handler's `new Date(value)` as an Invalid
 * Date. Runs once Fastify's Ajv has its formats (`onCreate`).
 */
export function refineFormats(ajv: FormatRegistry): void {
  const dateTime = ajv.formats['date-time'] as { validate?: unknown } | undefined;
  const validate = dateTime?.validate;
  if (typeof validate !== 'function') throw new Error('the date-time format is missing from Ajv');
  ajv.addFormat('date-time', {
    type: 'string',
    validate: (value) =>
      !value.startsWith('0000') &&
      (validate as (text: string) => boolean)(value) &&
      !Number.isNaN(Date.parse(value)),
  });
}
