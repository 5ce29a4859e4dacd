import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { type HttpServer, SocleError } from '../../kernel/index.js';

/** The header carrying `OPERATOR_TOKEN` (`Authorization` carries users' access tokens). */
export const OPERATOR_TOKEN_HEADER = 'x-operator-token';

/** What the operator token of a request proves: nothing is configured, a wrong or no token, the token. */
export type OperatorAccess = 'disabled' | 'refused' | 'granted';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Whether the request carries the server's `OPERATOR_TOKEN` in `X-Operator-Token`, checked
     * in constant time when asked (only operator routes ask). Decorated by the identity module.
     */
    operatorAccess(): OperatorAccess;
    /**
     * Set by {@link requireOperator} once the request passed it: it acts as the operator, in the
     * organization it names (`orgId`) or in none. The audit log records such a request with the
     * operator as its actor, in that organization's log.
     */
    operatorAction: { readonly orgId: string | null } | null;
  }
}

/** Errors of the operator routes, whichever module serves them. */
export const operatorErrors = {
  apiDisabled: () =>
    new SocleError('auth.operator_api_disabled', 'The operator API is off: set OPERATOR_TOKEN to enable it', {
      status: 404,
    }),
  notOperator: () =>
    new SocleError(
      'auth.not_operator',
      'This route needs the operator token in the X-Operator-Token header',
      {
        status: 401,
      },
    ),
};

/**
 * Lets every module's routes ask whether a request is an operator's: a method on the request,
 * not a hook, so requests of other routes pay nothing for it.
 */
export function installOperatorAccess(app: HttpServer, token: string | undefined): void {
  const expected = token === undefined ? undefined : Buffer.from(token);
  app.decorateRequest('operatorAction', null);
  app.decorateRequest('operatorAccess', function operatorAccess(this: FastifyRequest): OperatorAccess {
    if (expected === undefined) return 'disabled';
    const header = this.headers[OPERATOR_TOKEN_HEADER];
    const actual = Buffer.from(typeof header === 'string' ? header : '');
    return actual.length === expected.length && timingSafeEqual(actual, expected) ? 'granted' : 'refused';
  });
}

/**
 * Refuses a request without the operator token: 404 `auth.operator_api_disabled` when the server
 * has none (the operator routes do not exist for it), else 401 `auth.not_operator`. Use it in any
 * module's operator routes (`security: routeSecurity.operator`). Pass the organization the route
 * acts on (`/operator/organizations/:orgId/…`), if any: the audit log records the request there,
 * with the operator as its actor, so that organization's admins see what the operator did.
 *
 * @example
 * app.get('/operator/things', { schema: { security: routeSecurity.operator } }, async (request) => {
 *   requireOperator(request);
 *   return things.listAll();
 * });
 */
export function requireOperator(request: FastifyRequest, orgId?: string): void {
  // Read defensively: a request refused before the identity module's decorator exists is nobody's.
  const access: OperatorAccess =
    typeof request.operatorAccess === 'function' ? request.operatorAccess() : 'disabled';
  if (access === 'disabled') throw operatorErrors.apiDisabled();
  if (access === 'refused') throw operatorErrors.notOperator();
  request.operatorAction = { orgId: orgId ?? null };
}
