/** Exit codes: part of the CLI's contract, documented in `socle --help` and the README. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/**
 * How long past SHUTDOWN_TIMEOUT_MS a process that is still shutting down (a stuck query) waits
 * before it exits anyway.
 */
export const EXIT_AFTER_DEADLINE_MS = 5000;
