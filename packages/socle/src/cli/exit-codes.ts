/** Exit codes: part of the CLI's contract, documented in `socle --help` and the README. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
