/**
 * Quantities with units, as founders write them in a workload file: `10 min`, `8-15 MB`,
 * `4000/month`, `0.006 USD`, `99.9 %`. A value may be a range (`a-b` or `a–b`): every figure the
 * planner derives is then a range too, computed on both ends.
 *
 * Hand-written: the units are few and fixed, and the messages must name the field and the units
 * it accepts; a general units library (mathjs, js-quantities) would accept far more than a
 * workload means and say less when it is wrong.
 */

/** A figure known to lie between lo and hi (lo = hi for a plain number). */
export interface Range {
  readonly lo: number;
  readonly hi: number;
}

export const exact = (value: number): Range => ({ lo: value, hi: value });
export const add = (a: Range, b: Range): Range => ({ lo: a.lo + b.lo, hi: a.hi + b.hi });
export const times = (a: Range, b: Range | number): Range =>
  typeof b === 'number'
    ? { lo: a.lo * b, hi: a.hi * b }
    : { lo: Math.min(a.lo * b.lo, a.hi * b.hi), hi: Math.max(a.lo * b.lo, a.hi * b.hi) };
export const map = (a: Range, f: (value: number) => number): Range => ({ lo: f(a.lo), hi: f(a.hi) });
export const sum = (values: readonly Range[]): Range => values.reduce(add, exact(0));
export const overlaps = (a: Range, b: Range, tolerance: number): boolean =>
  a.lo <= b.hi * (1 + tolerance) && b.lo <= a.hi * (1 + tolerance);

const number = '(\\d+(?:[.,]\\d+)?)';
const RANGE = new RegExp(`^\\s*${number}\\s*(?:(?:-|–|to)\\s*${number})?\\s*(.*?)\\s*$`);

/** Seconds in each duration unit (a month is 730 h, as cloud price lists count it). */
export const SECONDS = {
  s: 1,
  min: 60,
  h: 3600,
  day: 86_400,
  week: 604_800,
  month: 2_628_000,
  year: 31_536_000,
} as const satisfies Record<string, number>;
const secondsOf = (unit: string): number => (SECONDS as Record<string, number>)[unit] ?? 1;
const DURATION_ALIASES: Readonly<Record<string, string>> = {
  s: 's',
  sec: 's',
  second: 's',
  seconds: 's',
  min: 'min',
  minute: 'min',
  minutes: 'min',
  h: 'h',
  hour: 'h',
  hours: 'h',
  d: 'day',
  day: 'day',
  days: 'day',
  week: 'week',
  weeks: 'week',
  month: 'month',
  months: 'month',
  mo: 'month',
  year: 'year',
  years: 'year',
  y: 'year',
};
/** Gigabytes in each size unit (decimal, as storage is billed). */
const GIGABYTES: Readonly<Record<string, number>> = { KB: 1e-6, MB: 1e-3, GB: 1, TB: 1000 };
export const CURRENCIES = ['USD', 'EUR', 'CHF', 'GBP'] as const;
export type Currency = (typeof CURRENCIES)[number];

/** Money: a range in one currency. */
export interface Money extends Range {
  readonly currency: Currency;
}

/** A problem with one field: where it is and what was expected. */
export interface FieldProblem {
  readonly path: string;
  readonly message: string;
}

export class QuantityError extends Error {}

function splitRange(raw: unknown, expected: string): { range: Range; unit: string } {
  if (typeof raw === 'number' && Number.isFinite(raw)) return { range: exact(raw), unit: '' };
  if (typeof raw !== 'string') throw new QuantityError(`expected ${expected}, got ${JSON.stringify(raw)}`);
  const match = RANGE.exec(raw.replaceAll('\u202f', '').replaceAll(' ', ' '));
  if (match === null) throw new QuantityError(`expected ${expected}, got "${raw}"`);
  const lo = Number((match[1] ?? '').replaceAll(',', '.'));
  const hi = match[2] === undefined ? lo : Number(match[2].replaceAll(',', '.'));
  if (hi < lo) throw new QuantityError(`range "${raw}" goes down; write the smaller figure first`);
  return { range: { lo, hi }, unit: match[3] ?? '' };
}

/** A plain count (users, connections): a number or range without unit. */
export function parseCount(raw: unknown): Range {
  const { range, unit } = splitRange(raw, 'a number like 400 or 10000-50000');
  if (unit !== '') throw new QuantityError(`expected a plain count, got unit "${unit}"`);
  return range;
}

/** A duration in seconds: `10 min`, `60-120 s`, `12 months`. */
export function parseDuration(raw: unknown): Range {
  const expected = 'a duration like "90 s", "10 min", "12 months"';
  const { range, unit } = splitRange(raw, expected);
  const key = DURATION_ALIASES[unit];
  if (key === undefined) throw new QuantityError(`expected ${expected}, got "${String(raw)}"`);
  return times(range, secondsOf(key));
}

/** A size in GB: `10 MB`, `8-15 MB`, `2 TB`. */
export function parseSize(raw: unknown): Range {
  const expected = 'a size like "10 MB", "8-15 MB", "2 TB"';
  const { range, unit } = splitRange(raw, expected);
  const factor = GIGABYTES[unit.toUpperCase()];
  if (factor === undefined) throw new QuantityError(`expected ${expected}, got "${String(raw)}"`);
  return times(range, factor);
}

/**
 * A rate per second: `4000/month`, `130/day`, `50/min`, `200 GB/month` (with `size: true`, in GB
 * per second). The period is required: a bare number is exactly the mistake this catches.
 */
export function parseRate(raw: unknown, options: { size?: boolean } = {}): Range {
  const expected = options.size
    ? 'a volume per period like "200 GB/month"'
    : 'a rate like "4000/month" or "20/day"';
  if (typeof raw !== 'string') throw new QuantityError(`expected ${expected}, got ${JSON.stringify(raw)}`);
  const slash = raw.lastIndexOf('/');
  if (slash < 0) throw new QuantityError(`expected ${expected} (say per what period), got "${raw}"`);
  const periodKey = DURATION_ALIASES[raw.slice(slash + 1).trim()];
  if (periodKey === undefined) throw new QuantityError(`expected ${expected}, got "${raw}"`);
  const amount = options.size ? parseSize(raw.slice(0, slash)) : parseCount(raw.slice(0, slash));
  return times(amount, 1 / secondsOf(periodKey));
}

/** A percentage as a fraction: `99.9 %` → 0.999. */
export function parsePercent(raw: unknown): Range {
  const expected = 'a percentage like "99.9 %"';
  const { range, unit } = splitRange(raw, expected);
  if (unit !== '%') throw new QuantityError(`expected ${expected}, got ${JSON.stringify(raw)}`);
  if (range.hi > 100) throw new QuantityError(`a percentage is at most 100 %, got "${String(raw)}"`);
  return times(range, 0.01);
}

/** Money: `30-35 USD`, `0.30 EUR`. With `per`, the period is required: `85 USD/month`. */
export function parseMoney(raw: unknown, per?: 'month'): Money {
  const expected = per
    ? `an amount per month like "85 USD/month" or "80-100 EUR/month"`
    : 'an amount like "0.30 USD"';
  if (typeof raw !== 'string') throw new QuantityError(`expected ${expected}, got ${JSON.stringify(raw)}`);
  let text = raw;
  let factor = 1;
  if (per !== undefined) {
    const slash = raw.lastIndexOf('/');
    const period = slash < 0 ? undefined : DURATION_ALIASES[raw.slice(slash + 1).trim()];
    if (period === undefined)
      throw new QuantityError(`expected ${expected} (say per what period), got "${raw}"`);
    factor = SECONDS.month / secondsOf(period);
    text = raw.slice(0, slash);
  }
  const { range, unit } = splitRange(text, expected);
  const currency = unit.toUpperCase() as Currency;
  if (!CURRENCIES.includes(currency))
    throw new QuantityError(`expected ${expected} in one of ${CURRENCIES.join(', ')}, got "${raw}"`);
  return { ...times(range, factor), currency };
}

/** `12`, `12.3`, `1,234` – the way the report prints a figure. */
export function formatNumber(value: number, digits = 3): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude < 1)
    return new Intl.NumberFormat('en-US', { maximumSignificantDigits: digits }).format(value);
  const fraction = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : 2;
  return new Intl.NumberFormat('en-US', { maximumFractionDigits: fraction }).format(value);
}

export function formatRange(range: Range, unit = ''): string {
  const suffix = unit === '' ? '' : ` ${unit}`;
  return range.lo === range.hi || formatNumber(range.lo) === formatNumber(range.hi)
    ? `${formatNumber(range.lo)}${suffix}`
    : `${formatNumber(range.lo)}–${formatNumber(range.hi)}${suffix}`;
}
