import { isSocleError, SocleError } from '../errors/index.js';

/** Seconds a client is told to wait before retrying while Redis is unreachable. */
export const REDIS_RETRY_AFTER_SECONDS = 2;

/** Errors of the Redis connections, rendered as problem+json by the HTTP layer. */
export const redisErrors = {
  /** 503: Redis refused, dropped, or did not answer within `REDIS_COMMAND_TIMEOUT_MS`. */
  unavailable: (cause: unknown) =>
    new SocleError('redis.unavailable', 'Redis is unavailable; retry the request shortly', {
      status: 503,
      headers: { 'retry-after': String(REDIS_RETRY_AFTER_SECONDS) },
      cause,
    }),
};

const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/** ioredis's own messages for a command that timed out or a connection it does not have. */
const CLIENT_MESSAGES =
  /^Command timed out|^Connection is closed|^Stream isn't writeable|max retries per request|^connect ETIMEDOUT/;

/** True when `error` means Redis could not be reached or did not answer in time. */
export function isRedisUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (isSocleError(error)) return error.code === 'redis.unavailable';
  const code = (error as { code?: unknown }).code;
  return (typeof code === 'string' && SOCKET_CODES.has(code)) || CLIENT_MESSAGES.test(error.message);
}
