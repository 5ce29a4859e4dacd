import type { Logger } from './logger.js';

/**
 * Logs an outage of a dependency once when it starts and once when it ends, however many calls
 * fail in between (a crashed database failed 38,099 requests, each logged with a stack: 52 MB).
 */
export interface OutageLog {
  /** A call failed because the dependency is unreachable; logs only the first of an outage. */
  down(error: unknown): void;
  /** A call succeeded; logs the end of the outage, if there was one. */
  up(): void;
  isDown(): boolean;
}

/** Name, code and message of an error: enough to say why, without a stack per outage. */
export function describeError(error: unknown): { name: string; message: string; code?: string } {
  if (error === null || typeof error !== 'object') return { name: 'Error', message: String(error) };
  // pg-boss emits plain objects carrying the driver error's fields: read them as an Error's.
  const { name, message, code } = error as { name?: unknown; message?: unknown; code?: unknown };
  return {
    name: typeof name === 'string' ? name : 'Error',
    message: typeof message === 'string' ? message : jsonOf(error),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

function jsonOf(value: object): string {
  try {
    return JSON.stringify(value).slice(0, 500);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * @example
 * const outage = createOutageLog(log, 'Database', 'requests answer 503 db.unavailable');
 * try { await query(); outage.up(); } catch (error) { outage.down(error); throw error; }
 */
export function createOutageLog(log: Logger, subject: string, consequence: string): OutageLog {
  let downSince: number | undefined;
  return {
    down(error) {
      if (downSince !== undefined) return;
      downSince = performance.now();
      const cause = describeError(error);
      log.error({ err: cause }, `${subject} unreachable (${cause.message}); ${consequence} until it answers`);
    },
    up() {
      if (downSince === undefined) return;
      const downForMs = Math.round(performance.now() - downSince);
      downSince = undefined;
      log.info({ downForMs }, `${subject} reachable again after ${(downForMs / 1000).toFixed(1)} s`);
    },
    isDown: () => downSince !== undefined,
  };
}
