import { SocleError } from '../errors/index.js';

/** Seconds a client is told to wait before retrying while the database is unreachable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** Seconds a client refused by load shedding is told to wait: a queue drains in moments. */
export const OVERLOADED_RETRY_AFTER_SECONDS = 1;

/** Errors of the database layer, rendered as problem+json by the HTTP layer. */
export const databaseErrors = {
  /** 503: Postgres refused, dropped, or did not answer in time; the request did not complete. */
  unavailable: (cause: unknown) =>
    new SocleError('db.unavailable', 'The database is unavailable or overloaded; retry the request shortly', {
      status: 503,
      headers: { 'retry-after': String(DATABASE_RETRY_AFTER_SECONDS) },
      cause,
    }),
  /**
   * 503: load shedding refused the request before it used the database, its pool's queue being
   * at `DATABASE_POOL_QUEUE_MAX`; nothing of it ran. Sent again after `Retry-After`, it normally
   * succeeds (see docs/operations.md).
   */
  overloaded: (waiting: number) =>
    new SocleError(
      'db.overloaded',
      'The server is overloaded: too many requests are waiting for the database; nothing was done, retry shortly',
      {
        status: 503,
        headers: { 'retry-after': String(OVERLOADED_RETRY_AFTER_SECONDS) },
        details: { waiting },
      },
    ),
  /**
   * 409: the transaction lost to a concurrent one (a deadlock, or a serialization failure under
   * repeatable read or serializable isolation) and was rolled back whole; the same request, sent
   * again, normally succeeds.
   */
  conflict: (cause: unknown) =>
    new SocleError(
      'db.conflict',
      'The request collided with a concurrent one and was rolled back without effect; send it again',
      { status: 409, headers: { 'retry-after': '1' }, cause },
    ),
  /**
   * 400: Postgres refused a value the request carried as data it cannot hold (SQLSTATE class 22,
   * "data exception": a number out of range for its column, a date past its range, bad text for
   * the type). What PostgREST answers too; the statement, and its transaction, wrote nothing.
   */
  invalidValue: (cause: unknown) =>
    new SocleError(
      'db.invalid_value',
      `A value of the request is one the database cannot store: ${messageOf(cause)}`,
      { status: 400, cause },
    ),
};

const messageOf = (error: unknown) =>
  error !== null && typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string'
    ? (error as { message: string }).message.slice(0, 200)
    : 'out of range or malformed';

/**
 * True when `error` is Postgres refusing a value as data (SQLSTATE class 22: numeric value out of
 * range, datetime field overflow, invalid text representation…), as opposed to a constraint or a
 * statement of Socle's that is wrong. Only values reach Postgres as parameters, so such a value
 * came from the caller: 400, not 500.
 */
export function isDataException(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return false;
  const { code } = error as { code?: unknown };
  return typeof code === 'string' && code.length === 5 && code.startsWith('22');
}

/**
 * True when `error` is Postgres rolling a transaction back because of a concurrent one: a deadlock
 * (40P01) or a serialization failure (40001). Nothing of the transaction was written.
 */
export function isTransactionConflict(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return false;
  const { code } = error as { code?: unknown };
  return code === '40P01' || code === '40001';
}

/** Node socket errors of a connection that could not be made or was lost. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * SQLSTATEs that say the server is going away or cannot serve: connection exceptions (class 08),
 * shutdowns and starting up (57P01–57P03), too many connections (53300), and a statement cancelled by
 * `statement_timeout` (57014, "canceling statement due to statement timeout").
 */
const SERVER_CODES = new Set(['57P01', '57P02', '57P03', '53300']);

/** node-postgres's own messages for a connect or query that timed out or a connection it lost. */
const DRIVER_MESSAGES =
  /timeout exceeded when trying to connect|Connection terminated|Query read timeout|connection error and is not queryable|Client was closed and is not queryable|canceling statement due to statement timeout/;

/**
 * True when `error` means the database cannot be reached or did not answer in time (as opposed to
 * a statement it refused, such as a constraint violation): the request gets 503, not 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  // pg-boss emits plain objects carrying the driver error's fields, not Errors.
  if (error === null || typeof error !== 'object') return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message : '';
  if (typeof code === 'string') {
    if (SOCKET_CODES.has(code) || SERVER_CODES.has(code) || code.startsWith('08')) return true;
    if (code === '57014') return DRIVER_MESSAGES.test(text);
    // A database an operator closed to connections (ALTER DATABASE … ALLOW_CONNECTIONS false, as
    // during maintenance): 55000 says only "not in prerequisite state", the message which one.
    if (code === '55000') return text.includes('is not currently accepting connections');
  }
  if (DRIVER_MESSAGES.test(text)) return true;
  // AggregateError of a connect to every address of a host name (Node's happy eyeballs).
  if (error instanceof AggregateError) return error.errors.some(isDatabaseUnavailable);
  return false;
}
