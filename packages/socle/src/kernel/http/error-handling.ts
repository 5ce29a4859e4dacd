import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  databaseErrors,
  isDatabaseUnavailable,
  isDataException,
  isTransactionConflict,
} from '../db/index.js';
import {
  type FieldError,
  httpErrors,
  isSocleError,
  PROBLEM_CONTENT_TYPE,
  type SocleError,
  toProblem,
} from '../errors/index.js';
import type { Logger } from '../log/index.js';
import { isRedisUnavailable, redisErrors } from '../redis/index.js';
import { findUnstorableValues } from './request-values.js';

/** The response header carrying the request id (also accepted from clients, see http-server.ts). */
export const REQUEST_ID_HEADER = 'x-request-id';

interface ValidationIssue {
  readonly instancePath: string;
  readonly keyword: string;
  readonly message?: string;
  readonly params: Record<string, unknown>;
}

const CONTEXT_NAMES: Record<string, string> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
};

/** Turns Ajv errors into fields a client can act on: `body/email must match format "email"`. */
export function toFieldErrors(issues: readonly ValidationIssue[], context: string | undefined): FieldError[] {
  const prefix = CONTEXT_NAMES[context ?? 'body'] ?? context ?? 'body';
  const fields: FieldError[] = [];
  for (const issue of issues) {
    if (issue.keyword === 'anyOf' || issue.keyword === 'oneOf') continue; // summarized by their branches
    let pointer = issue.instancePath.replace(/^\//, '');
    let message = issue.message ?? 'is invalid';
    if (issue.keyword === 'required' && typeof issue.params.missingProperty === 'string') {
      pointer = pointer ? `${pointer}/${issue.params.missingProperty}` : issue.params.missingProperty;
      message = 'is required';
    } else if (
      issue.keyword === 'additionalProperties' &&
      typeof issue.params.additionalProperty === 'string'
    ) {
      pointer = pointer ? `${pointer}/${issue.params.additionalProperty}` : issue.params.additionalProperty;
      message = 'is not allowed';
    }
    const field = pointer ? `${prefix}/${pointer}` : prefix;
    if (!fields.some((existing) => existing.field === field && existing.message === message))
      fields.push({ field, message });
  }
  return fields;
}

/** Maps anything thrown while serving a request to a SocleError; unknown errors become 500s. */
function toSocleError(error: FastifyError, request: FastifyRequest, bodyLimitBytes: number): SocleError {
  // A 500 means a bug or an outage: its message may hold internals, so the client gets a reference.
  if (isSocleError(error)) return error.status === 500 ? httpErrors.unexpected(request.id) : error;
  if (error.validation)
    return httpErrors.validationFailed(
      toFieldErrors(error.validation as ValidationIssue[], error.validationContext),
    );
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return httpErrors.malformedJson(
        error.message.replace(
          /^Body is not valid JSON but content-type is set to 'application\/json'/,
          'invalid syntax',
        ),
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return httpErrors.emptyJsonBody();
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return httpErrors.payloadTooLarge(request.routeOptions.bodyLimit ?? bodyLimitBytes);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return httpErrors.unsupportedMediaType(String(request.headers['content-type'] ?? ''));
  }
  if (error instanceof SyntaxError && error.statusCode === 400)
    return httpErrors.malformedJson(error.message);
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return httpErrors.badRequest(error.message);
  }
  // An outage seen through a driver Socle does not wrap (the job engine's own pool): 503, not a 500
  // logged with a stack per request.
  if (isDatabaseUnavailable(error)) return databaseErrors.unavailable(error);
  // A deadlock or serialization failure rolled the whole transaction back: the client may resend.
  if (isTransactionConflict(error)) return databaseErrors.conflict(error);
  // A value Postgres cannot hold (out of range, past its date range): the caller's, so a 400.
  if (isDataException(error)) return databaseErrors.invalidValue(error);
  if (isRedisUnavailable(error)) return redisErrors.unavailable(error);
  return httpErrors.unexpected(request.id);
}

/** The path of a request URL: `instance` never echoes the query, which may carry a signature. */
function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Sends a SocleError as problem+json, with its headers and the request id. */
export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: SocleError) {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply
    .code(error.status)
    .header(REQUEST_ID_HEADER, request.id)
    .type(PROBLEM_CONTENT_TYPE)
    .send(toProblem(error, { instance: pathOf(request.url), requestId: request.id }));
}

/**
 * Errors Fastify raises before routing (`frameworkErrors`): a path that is not percent-encoded
 * UTF-8, a path parameter over `maxParamLength`. No hook runs for these requests, so this logs them.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const socleError =
    error.code === 'FST_ERR_BAD_URL'
      ? httpErrors.badUrl(pathOf(request.url))
      : error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? httpErrors.pathSegmentTooLong(request.server.initialConfig.maxParamLength ?? 100)
        : httpErrors.unexpected(request.id);
  if (socleError.status >= 500) request.log.error({ err: error }, 'unhandled error while routing request');
  else
    request.log.info(
      { method: request.method, status: socleError.status, code: error.code },
      'request refused',
    );
  return sendProblem(reply, request, socleError);
}

/** A Node HTTP parser error, with llhttp's reason (`Invalid header value char`). */
interface ClientError extends Error {
  readonly code?: string;
  readonly reason?: string;
}

/**
 * Answers a request Node's HTTP parser refused (Fastify's `clientErrorHandler`): NUL or another
 * forbidden byte in a header, `Content-Length` with `Transfer-Encoding`, an HTTP/2 preface, headers
 * over the size limit, a request not received in time. No request object exists, so the answer is
 * written on the socket as raw HTTP/1.1, as problem+json with a fresh request id, then the
 * connection is closed (the parser cannot go on after an error).
 */
export function answerClientError(error: ClientError, socket: Duplex, log: Logger): void {
  // A reset connection has no one to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const socleError =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? httpErrors.headersTooLarge()
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? httpErrors.requestTimeout()
        : httpErrors.malformedRequest(
            // llhttp stops at an HTTP/2 preface ("PRI * HTTP/2.0") with "Pause on PRI/Upgrade".
            error.code === 'HPE_PAUSED_H2_UPGRADE'
              ? 'HTTP/2 without TLS is not served here; use HTTP/1.1'
              : (error.reason ?? error.message).replace(/[^\x20-\x7e]/g, '?').slice(0, 200),
          );
  log.info(
    { requestId: writeProblemOnSocket(socket, socleError), status: socleError.status, code: error.code },
    'request refused by the HTTP parser',
  );
}

/**
 * Writes `error` as a raw HTTP/1.1 problem+json answer on a socket no request object owns (a parser
 * error, a refused WebSocket upgrade), with a fresh request id, then closes it. Returns the id.
 */
export function writeProblemOnSocket(socket: Duplex, error: SocleError): string {
  const requestId = randomUUID();
  if (!socket.writable) {
    socket.destroy();
    return requestId;
  }
  const body = JSON.stringify(toProblem(error, { requestId }));
  const extra = Object.entries(error.headers ?? {})
    .filter(([name]) => name.toLowerCase() !== 'connection')
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${error.status} ${error.title}\r\n` +
      `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `${REQUEST_ID_HEADER}: ${requestId}\r\n` +
      extra +
      'Connection: close\r\n\r\n' +
      body,
    () => socket.destroy(),
  );
  return requestId;
}

/**
 * Answers an `Expect` other than `100-continue` (Node's `checkExpectation`, which would otherwise
 * write a bare 417): problem+json with a fresh request id, as every refusal.
 */
export function answerUnmetExpectation(
  request: IncomingMessage,
  response: ServerResponse,
  log: Logger,
): void {
  const expectation = String(request.headers.expect ?? '')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 100);
  const socleError = httpErrors.expectationFailed(expectation);
  const requestId = randomUUID();
  log.info({ requestId, status: socleError.status, code: socleError.code }, 'request refused');
  const body = JSON.stringify(toProblem(socleError, { requestId }));
  response.writeHead(socleError.status, {
    'content-type': PROBLEM_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
    [REQUEST_ID_HEADER]: requestId,
    connection: 'close',
  });
  response.end(body);
}

/**
 * Every error leaves as RFC 9457 problem+json; 500s are logged with the request id, never shown.
 * After validation, every request's path parameters, query and body are checked for values no
 * store can hold ({@link findUnstorableValues}): on every route, with a schema or not, so a NUL
 * byte or an infinite number gets a 400 naming the field instead of a 500 from the database.
 */
export function installErrorHandling(app: FastifyInstance, bodyLimitBytes: number): void {
  // Callback style: it runs on every request and does nothing asynchronous. Route-level
  // preHandlers (rate limits) run after it.
  app.addHook('preHandler', (request, _reply, done) => {
    const errors = [
      ...findUnstorableValues(request.params, 'path'),
      ...findUnstorableValues(request.query, 'query'),
      ...findUnstorableValues(request.body, 'body'),
    ];
    done(errors.length > 0 ? httpErrors.validationFailed(errors) : undefined);
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const socleError = toSocleError(error, request, bodyLimitBytes);
    if (socleError.code === 'internal.unexpected')
      request.log.error({ err: error }, 'unhandled error while serving request');
    // Logged with its statement's error: a value out of range may also be a computed one.
    else if (socleError.code === 'db.invalid_value')
      request.log.warn({ err: error }, 'the database refused a value of the request');
    return sendProblem(reply, request, socleError);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      request,
      httpErrors.routeNotFound(request.method, request.url.split('?')[0] ?? request.url),
    ),
  );
}
