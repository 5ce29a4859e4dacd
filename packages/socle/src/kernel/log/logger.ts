import { pino } from 'pino';
import type { Config } from '../config/index.js';

export type Logger = pino.Logger;

/**
 * JSON logs to stdout (one object per line), or human-readable ones through pino-pretty when
 * `logFormat` is `pretty`, or `auto` and stdout is a terminal.
 */
export function createLogger(
  config: Pick<Config, 'logLevel' | 'logFormat'>,
  destination?: pino.DestinationStream,
): Logger {
  const pretty =
    config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true);
  const options: pino.LoggerOptions = {
    level: config.logLevel,
    base: { pid: process.pid },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'databaseUrl'],
      censor: '[redacted]',
    },
  };
  if (destination) return pino(options, destination);
  if (pretty) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino(options);
}

/** A logger that writes nothing; for tests and embedding. */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
