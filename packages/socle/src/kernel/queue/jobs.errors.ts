import { type FieldError, SocleError } from '../errors/index.js';

export const jobErrors = {
  unknownJob: (name: string) =>
    new SocleError('jobs.unknown_job', `No module declares a job named "${name}"`, {
      status: 500,
      details: { job: name },
    }),
  invalidPayload: (name: string, fields: readonly FieldError[]) =>
    new SocleError('jobs.invalid_payload', `The payload of job "${name}" does not match its schema`, {
      status: 400,
      details: { job: name },
      errors: fields,
    }),
  invalidDefinition: (name: string, reason: string) =>
    new SocleError('jobs.invalid_definition', `Job "${name}" is declared wrongly: ${reason}`, {
      status: 500,
      details: { job: name },
    }),
  /** A programming error of the caller (an option out of range), not client input. */
  invalidOptions: (name: string, fields: readonly FieldError[]) =>
    new SocleError('jobs.invalid_options', `The enqueue options of job "${name}" are invalid`, {
      status: 500,
      details: { job: name },
      errors: fields,
    }),
  notFound: (id: string) =>
    new SocleError('jobs.not_found', `No job ${id}`, { status: 404, details: { id } }),
  notRetryable: (id: string, state: string) =>
    new SocleError(
      'jobs.not_retryable',
      `Job ${id} is ${state}; only failed or cancelled jobs can be retried`,
      {
        status: 409,
        details: { id, state },
      },
    ),
  notCancellable: (id: string, state: string) =>
    new SocleError(
      'jobs.not_cancellable',
      `Job ${id} is ${state}; only queued or running jobs can be cancelled`,
      {
        status: 409,
        details: { id, state },
      },
    ),
  timedOut: (name: string, timeoutMs: number) =>
    new SocleError('jobs.timed_out', `Job "${name}" ran longer than its timeout of ${timeoutMs} ms`),
  engineNotStarted: () =>
    new SocleError('jobs.not_started', 'The job engine has not started (or has stopped)', { status: 503 }),
};
