import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { databaseErrors, isDatabaseUnavailable } from '../db/index.js';
import {
  type FieldError,
  httpErrors,
  isSocleError,
  PROBLEM_CONTENT_TYPE,
  type SocleError,
  toProblem,
} from '../errors/index.js';
import { isRedisUnavailable, redisErrors } from '../redis/index.js';

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
  if (isRedisUnavailable(error)) return redisErrors.unavailable(error);
  return httpErrors.unexpected(request.id);
}

/** Sends a SocleError as problem+json, with its headers. */
export function sendProblem(reply: FastifyReply, request: FastifyRequest, error: SocleError) {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  return reply
    .code(error.status)
    .type(PROBLEM_CONTENT_TYPE)
    .send(toProblem(error, { instance: request.url, requestId: request.id }));
}

/** Every error leaves as RFC 9457 problem+json; 500s are logged with the request id, never shown. */
export function installErrorHandling(app: FastifyInstance, bodyLimitBytes: number): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const socleError = toSocleError(error, request, bodyLimitBytes);
    if (socleError.code === 'internal.unexpected')
      request.log.error({ err: error }, 'unhandled error while serving request');
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
