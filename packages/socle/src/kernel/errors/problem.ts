import type { FieldError, SocleError } from './socle-error.js';

/** An RFC 9457 problem document as Socle renders it. */
export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly code: string;
  readonly detail: string;
  readonly instance?: string;
  readonly requestId?: string;
  readonly errors?: readonly FieldError[];
  readonly [member: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/**
 * The problem `type` URI of an error code. A URN, because it must stay stable and unique
 * forever, and Socle deployments have no shared documentation host to point at.
 */
export function problemType(code: string): string {
  return `urn:socle:problem:${code}`;
}

/** Renders a SocleError as a problem document. `details` become extension members. */
export function toProblem(
  error: SocleError,
  context: { instance?: string; requestId?: string } = {},
): Problem {
  return {
    ...error.details,
    type: problemType(error.code),
    title: error.title,
    status: error.status,
    code: error.code,
    detail: error.message,
    ...(context.instance === undefined ? {} : { instance: context.instance }),
    ...(context.requestId === undefined ? {} : { requestId: context.requestId }),
    ...(error.errors.length > 0 ? { errors: error.errors } : {}),
  };
}
