import { isSocleError } from '../kernel/errors/index.js';

/** Exit codes: part of the CLI's contract, documented in `socle --help` and the README. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/**
 * How long past SHUTDOWN_TIMEOUT_MS a process that is still shutting down (a stuck query) waits
 * before it exits anyway.
 */
export const EXIT_AFTER_DEADLINE_MS = 5000;

/** What the CLI prints for a command that threw, and the exit code: 2 for configuration, else 1. */
export function failureOutput(error: unknown): { readonly stderr: string; readonly code: number } {
  if (isSocleError(error) && error.code === 'config.invalid')
    return { stderr: `${error.message}\n\nRun "socle help config" for every setting.\n`, code: EXIT.usage };
  if (isSocleError(error)) return { stderr: `socle: ${error.message} [${error.code}]\n`, code: EXIT.failure };
  return { stderr: `socle: ${(error as Error).stack ?? String(error)}\n`, code: EXIT.failure };
}
