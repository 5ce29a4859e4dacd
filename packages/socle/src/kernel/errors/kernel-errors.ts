import { type FieldError, SocleError } from './socle-error.js';

/** Errors raised by the HTTP layer itself, before any module code runs. */
export const httpErrors = {
  routeNotFound: (method: string, path: string) =>
    new SocleError('http.route_not_found', `No route matches ${method} ${path}`, { status: 404 }),
  malformedJson: (reason: string) =>
    new SocleError('http.malformed_json', `The request body is not valid JSON: ${reason}`, { status: 400 }),
  emptyJsonBody: () =>
    new SocleError(
      'http.empty_json_body',
      'The request has Content-Type application/json but an empty body',
      {
        status: 400,
      },
    ),
  validationFailed: (errors: readonly FieldError[]) =>
    new SocleError(
      'http.validation_failed',
      `The request is invalid: ${errors.map((error) => `${error.field} ${error.message}`).join('; ')}`,
      { status: 400, errors },
    ),
  payloadTooLarge: (limitBytes: number) =>
    new SocleError('http.payload_too_large', `The request body exceeds the limit of ${limitBytes} bytes`, {
      status: 413,
      details: { limitBytes },
    }),
  unsupportedMediaType: (contentType: string) =>
    new SocleError(
      'http.unsupported_media_type',
      `Content-Type "${contentType}" is not accepted by this route`,
      {
        status: 415,
      },
    ),
  badUrl: (path: string) =>
    new SocleError('http.bad_url', `The URL path ${path} is not valid percent-encoded UTF-8`, {
      status: 400,
    }),
  pathSegmentTooLong: (maxLength: number) =>
    new SocleError('http.path_segment_too_long', `A path parameter is longer than ${maxLength} characters`, {
      status: 414,
      details: { maxLength },
    }),
  /** Node's HTTP parser refused the request before any route saw it (`reason` is the parser's). */
  malformedRequest: (reason: string) =>
    new SocleError('http.malformed_request', `The request is not valid HTTP/1.1: ${reason}`, { status: 400 }),
  expectationFailed: (expectation: string) =>
    new SocleError(
      'http.expectation_failed',
      `This server does not meet the expectation "${expectation}" (only 100-continue)`,
      { status: 417 },
    ),
  headersTooLarge: () =>
    new SocleError('http.headers_too_large', 'The request headers exceed the size this server accepts', {
      status: 431,
    }),
  requestTimeout: () =>
    new SocleError('http.request_timeout', 'The request was not received in time', { status: 408 }),
  badRequest: (message: string) => new SocleError('http.bad_request', message, { status: 400 }),
  unexpected: (requestId: string) =>
    new SocleError(
      'internal.unexpected',
      `An unexpected error occurred. Quote request id ${requestId} when reporting it.`,
      { status: 500 },
    ),
  shuttingDown: () =>
    new SocleError('http.shutting_down', 'This server is shutting down; retry the request', {
      status: 503,
      headers: { 'retry-after': '1', connection: 'close' },
    }),
  serviceUnavailable: (message: string, details: Record<string, unknown>) =>
    new SocleError('health.not_ready', message, { status: 503, details }),
};
