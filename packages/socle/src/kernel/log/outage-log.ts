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
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const code = (error as { code?: unknown }).code;
  return { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) };
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
