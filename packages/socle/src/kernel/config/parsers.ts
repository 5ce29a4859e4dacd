import { decodeSecretKey } from '../secrets/index.js';

/** A value as it comes from the environment (a string) or from `socle.config.json` (any JSON). */
export type RawValue = string | number | boolean | readonly unknown[];

/** Turns a raw value into a setting's typed value, or says what is wrong with it. */
export type SettingParser<T> = (raw: RawValue) => { ok: true; value: T } | { ok: false; message: string };

const show = (raw: RawValue) => JSON.stringify(raw);

/** An integer within bounds, from a number or a string of digits. */
export function integer(minimum: number, maximum: number): SettingParser<number> {
  return (raw) => {
    const value =
      typeof raw === 'number'
        ? raw
        : typeof raw === 'string' && /^-?\d+$/.test(raw.trim())
          ? Number(raw)
          : Number.NaN;
    if (!Number.isSafeInteger(value) || value < minimum || value > maximum) {
      return { ok: false, message: `must be an integer from ${minimum} to ${maximum}, got ${show(raw)}` };
    }
    return { ok: true, value };
  };
}

/** `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`. */
export const boolean: SettingParser<boolean> = (raw) => {
  if (typeof raw === 'boolean') return { ok: true, value: raw };
  const text = String(raw).trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(text)) return { ok: true, value: true };
  if (['0', 'false', 'no', 'off'].includes(text)) return { ok: true, value: false };
  return { ok: false, message: `must be true or false, got ${show(raw)}` };
};

export function oneOf<T extends string>(...allowed: T[]): SettingParser<T> {
  return (raw) =>
    typeof raw === 'string' && (allowed as string[]).includes(raw)
      ? { ok: true, value: raw as T }
      : { ok: false, message: `must be one of ${allowed.join(', ')}, got ${show(raw)}` };
}

/** A non-empty string (trimmed), optionally matching `pattern`. */
export function text(pattern?: RegExp, expectation?: string): SettingParser<string> {
  return (raw) => {
    if (typeof raw !== 'string' || raw.trim() === '')
      return { ok: false, message: `must be a non-empty string, got ${show(raw)}` };
    if (pattern && !pattern.test(raw))
      return { ok: false, message: `must be ${expectation}, got ${show(raw)}` };
    return { ok: true, value: raw.trim() };
  };
}

/** A string; empty means unset. */
export const optionalText: SettingParser<string | undefined> = (raw) => {
  if (typeof raw !== 'string') return { ok: false, message: 'must be a string' };
  return { ok: true, value: raw.trim() === '' ? undefined : raw.trim() };
};

/** A comma-separated list (or a JSON array of strings in the file). */
export const list: SettingParser<readonly string[]> = (raw) => {
  if (Array.isArray(raw)) {
    if (raw.every((item) => typeof item === 'string')) return { ok: true, value: raw as string[] };
    return { ok: false, message: `must be a list of strings, got ${show(raw)}` };
  }
  if (typeof raw !== 'string')
    return { ok: false, message: `must be a comma-separated list, got ${show(raw)}` };
  return {
    ok: true,
    value: raw
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== ''),
  };
};

/**
 * A URL with one of `protocols` (e.g. `['smtp:', 'smtps:']`) and a host; empty means unset. The
 * value is never echoed in a problem: such URLs usually carry a password.
 */
export function url(
  protocols: readonly string[],
  expectation: string,
  { requireHost = true } = {},
): SettingParser<string | undefined> {
  return (raw) => {
    if (typeof raw !== 'string') return { ok: false, message: `must be ${expectation}` };
    if (raw.trim() === '') return { ok: true, value: undefined };
    try {
      const parsed = new URL(raw.trim());
      if (protocols.includes(parsed.protocol) && (!requireHost || parsed.hostname !== ''))
        return { ok: true, value: raw.trim() };
    } catch {
      // reported below
    }
    return { ok: false, message: `must be ${expectation}` };
  };
}

const KEY_EXPECTATION =
  'a base64 (or base64url) encoding of 32 random bytes, e.g. from `openssl rand -base64 32`';

/** A base64 32-byte key; empty means unset. Never echoed: it is the secret itself. */
export const secretKey: SettingParser<string | undefined> = (raw) => {
  if (typeof raw !== 'string') return { ok: false, message: `must be ${KEY_EXPECTATION}` };
  if (raw.trim() === '') return { ok: true, value: undefined };
  return decodeSecretKey(raw) === undefined
    ? { ok: false, message: `must be ${KEY_EXPECTATION}` }
    : { ok: true, value: raw.trim() };
};

export const secretKeyList: SettingParser<readonly string[]> = (raw) => {
  const parsed = list(raw);
  if (!parsed.ok) return parsed;
  return parsed.value.every((key) => decodeSecretKey(key) !== undefined)
    ? parsed
    : { ok: false, message: `must be a comma-separated list of keys, each ${KEY_EXPECTATION}` };
};

/** A secret of at least `minLength` characters; empty means unset. Never echoed. */
export function secret(minLength: number): SettingParser<string | undefined> {
  return (raw) => {
    if (typeof raw !== 'string') return { ok: false, message: 'must be a string' };
    if (raw.trim() === '') return { ok: true, value: undefined };
    if (raw.trim().length < minLength)
      return { ok: false, message: `must be at least ${minLength} characters` };
    return { ok: true, value: raw.trim() };
  };
}

export { show as showRawValue };
