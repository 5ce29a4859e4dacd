import { STATUS_CODES } from 'node:http';

/** One invalid input, named by where it is: `body/email`, `query/limit`, `env/PORT`. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export interface SocleErrorOptions {
  /** HTTP status used when the error reaches a client. Defaults to 500. */
  readonly status?: number;
  /** Machine-readable facts about this occurrence, rendered as members of the problem document. */
  readonly details?: Readonly<Record<string, unknown>>;
  /** Invalid fields, rendered as `errors[]`. */
  readonly errors?: readonly FieldError[];
  /** Extra response headers, such as `Retry-After`. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

const CODE_PATTERN = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;

/**
 * The one error type of Socle. Services throw it; the HTTP layer renders it as RFC 9457
 * problem+json. `code` is dotted and stable (`ledger.insufficient_funds`): clients branch on it,
 * so it never changes once released. `message` is for humans and may change.
 *
 * @example
 * throw new SocleError('ledger.insufficient_funds', `Account ${id} has 3 credits, 5 needed`, {
 *   status: 409,
 *   details: { accountId: id, available: 3, required: 5 },
 * });
 */
export class SocleError extends Error {
  override readonly name = 'SocleError';
  readonly code: string;
  readonly status: number;
  readonly details: Readonly<Record<string, unknown>>;
  readonly errors: readonly FieldError[];
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: string, message: string, options: SocleErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    if (!CODE_PATTERN.test(code)) {
      throw new TypeError(
        `SocleError code "${code}" must be dotted lower_snake_case, like "ledger.insufficient_funds"`,
      );
    }
    const status = options.status ?? 500;
    if (!Number.isInteger(status) || status < 400 || status > 599) {
      throw new TypeError(`SocleError status ${status} must be an HTTP error status (400-599)`);
    }
    this.code = code;
    this.status = status;
    this.details = options.details ?? {};
    this.errors = options.errors ?? [];
    this.headers = options.headers ?? {};
  }

  /** The standard reason phrase of the status, used as the problem `title`. */
  get title(): string {
    return STATUS_CODES[this.status] ?? 'Error';
  }
}

export function isSocleError(value: unknown): value is SocleError {
  return value instanceof SocleError;
}
