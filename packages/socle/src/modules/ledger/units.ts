import currencyCodes from 'currency-codes';
import { ledgerErrors } from './ledger.errors.js';

/** An ISO 4217 code: three upper-case letters. */
const ISO_CODE = /^[A-Z]{3}$/;
/** An app unit: lower-case, so it can never be mistaken for a currency (`credits`, `coins`, `sats`). */
const APP_UNIT = /^[a-z][a-z0-9_]{0,31}$/;

/**
 * The unit of a new account and the exponent of its minor unit. A currency's exponent is ISO
 * 4217's (EUR 2, XOF 0, BHD 3, from the `currency-codes` table): given one that differs, it is
 * refused rather than silently corrected. An app unit takes the scale it is given (default 0).
 */
export function resolveUnit(unit: string, scale: number | undefined): { unit: string; scale: number } {
  if (ISO_CODE.test(unit)) {
    const currency = currencyCodes.code(unit);
    if (currency === undefined)
      throw ledgerErrors.invalidUnit(unit, 'unit', 'is not an ISO 4217 currency code');
    if (scale !== undefined && scale !== currency.digits)
      throw ledgerErrors.invalidUnit(unit, 'scale', `has ${currency.digits} minor-unit digits (ISO 4217)`);
    return { unit, scale: currency.digits };
  }
  if (!APP_UNIT.test(unit))
    throw ledgerErrors.invalidUnit(
      unit,
      'unit',
      'must be an ISO 4217 code (EUR) or an app unit in lower case (credits, coins, sats)',
    );
  if (scale !== undefined && !(Number.isInteger(scale) && scale >= 0 && scale <= 18))
    throw ledgerErrors.invalidUnit(unit, 'scale', 'must be an integer from 0 to 18');
  return { unit, scale: scale ?? 0 };
}

/** The largest amount and balance: Postgres `bigint`. */
export const MAX_AMOUNT = 2n ** 63n - 1n;

/** An amount in minor units: a bigint, a safe integer, or a string of digits; positive. */
export type Amount = bigint | number | string;

const DIGITS = /^[0-9]{1,19}$/;

/** The amount as a bigint, or 400 `ledger.invalid_amount` naming `path` (floats, negatives, too large). */
export function parseAmount(amount: Amount, path: string): bigint {
  let value: bigint;
  if (typeof amount === 'bigint') value = amount;
  else if (typeof amount === 'number') {
    if (!Number.isSafeInteger(amount))
      throw ledgerErrors.invalidAmount(
        path,
        'must be an integer number of minor units (use a string above 2^53)',
      );
    value = BigInt(amount);
  } else if (typeof amount === 'string' && DIGITS.test(amount)) value = BigInt(amount);
  else throw ledgerErrors.invalidAmount(path, 'must be a positive integer of minor units');
  if (value <= 0n) throw ledgerErrors.invalidAmount(path, 'must be positive');
  if (value > MAX_AMOUNT) throw ledgerErrors.invalidAmount(path, 'must be at most 2^63-1');
  return value;
}

/** Minor units written in the unit's scale: 1250n at scale 2 is `12.50`, -5n is `-0.05`. */
export function formatMinorUnits(value: bigint, scale: number): string {
  const sign = value < 0n ? '-' : '';
  const digits = (value < 0n ? -value : value).toString();
  if (scale === 0) return `${sign}${digits}`;
  const padded = digits.padStart(scale + 1, '0');
  return `${sign}${padded.slice(0, -scale)}.${padded.slice(-scale)}`;
}
