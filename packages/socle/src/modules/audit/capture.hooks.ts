import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Clock, HttpServer } from '../../kernel/index.js';
import type { Authentication } from '../identity/index.js';
import type { CurrentOrg } from '../tenancy/index.js';
import type { NewAuditEvent } from './audit.store.js';
import type { AuditRecorder } from './recorder.service.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * What the audit log records of this route: every request (the default), or only `refusals`
     * (answers of 400 and above) for routes whose successes are routine, such as authorizing a
     * realtime channel on every page load; or `reads` too, for a read route that shows someone's
     * personal data to an operator (reads are otherwise never recorded).
     */
    audit?: 'all' | 'refusals' | 'reads';
  }
}

/** Methods that change something; GET, HEAD and OPTIONS are recorded only on `reads` routes. */
const MUTATING_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const MAX_USER_AGENT_LENGTH = 512;
/** Bounds what a client can make the log store: a body's field names are its own choice. */
const MAX_FIELDS = 64;
const MAX_FIELD_NAME_LENGTH = 100;

/**
 * The audit event of a finished request, or undefined when it is not recorded: a read (GET, HEAD,
 * OPTIONS) of a route not marked `reads`, or a request that matched no route (a 404 for a path that does not exist).
 *
 * Records the names of the body's top-level fields, never their values: bodies carry passwords,
 * tokens and personal data. The target (the route's path parameters) is left out of a 404: the
 * resource named is not one of the organization's, possibly another tenant's, and an
 * organization's log names only its own resources.
 */
export function captureAuditEvent(
  request: FastifyRequest,
  reply: FastifyReply,
  occurredAt: Date,
): NewAuditEvent | undefined {
  if (!MUTATING_METHODS.has(request.method) && request.routeOptions.config.audit !== 'reads')
    return undefined;
  const route = request.routeOptions.url;
  if (route === undefined) return undefined;
  const status = reply.statusCode;
  if (request.routeOptions.config.audit === 'refusals' && status < 400) return undefined;
  // Both are decorated by the identity and tenancy modules this one depends on; read defensively
  // all the same, as a request refused early may not have reached their hooks.
  const auth: Authentication | null = request.auth ?? null;
  const org: CurrentOrg | null = request.org ?? null;
  const operator = request.operatorAction ?? null;
  const userAgent = request.headers['user-agent'];
  return {
    id: randomUUID(),
    // An operator's action on an organization goes to that organization's log; a 404 may name
    // one that does not exist, which has no log (the event is kept with no tenant).
    tenantId: org?.orgId ?? (status === 404 ? null : operator?.orgId) ?? null,
    occurredAt,
    actorUserId: auth?.userId ?? null,
    actorApiKeyId: apiKeyIdOf(request),
    actorOperator: operator !== null,
    action: `${request.method} ${route}`,
    target: status === 404 ? null : targetOf(request.params),
    changedFields: fieldNamesOf(request.body),
    status,
    ip: request.ip ?? null,
    userAgent: typeof userAgent === 'string' ? userAgent.slice(0, MAX_USER_AGENT_LENGTH) : null,
    requestId: request.id,
  };
}

/** The path parameters as a JSON object (`{"userId":"…"}`), or null when the route has none. */
function targetOf(params: unknown): string | null {
  if (typeof params !== 'object' || params === null) return null;
  const entries = Object.entries(params).filter(
    (entry): entry is [string, string] => typeof entry[1] === 'string',
  );
  return entries.length === 0 ? null : JSON.stringify(Object.fromEntries(entries));
}

/** The top-level field names of a JSON object body; nothing for any other body. */
function fieldNamesOf(body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return [];
  const prototype: unknown = Object.getPrototypeOf(body);
  if (prototype !== Object.prototype && prototype !== null) return []; // a Buffer, a stream
  return Object.keys(body)
    .slice(0, MAX_FIELDS)
    .map((name) => name.slice(0, MAX_FIELD_NAME_LENGTH));
}

/**
 * The API key the request authenticated with, when the module that authenticates API keys
 * decorates `request.apiKey` with one (`{ id }`); read structurally, so this module does not
 * depend on how that module types it.
 */
function apiKeyIdOf(request: FastifyRequest): string | null {
  const apiKey: unknown = (request as { apiKey?: unknown }).apiKey;
  if (typeof apiKey !== 'object' || apiKey === null || !('id' in apiKey)) return null;
  return typeof apiKey.id === 'string' ? apiKey.id : null;
}

/**
 * Records every mutating request of every module's routes: installed on the root instance (from
 * `configureHttp`), so it sees them all. onResponse runs after the response is sent, so recording
 * adds nothing to the request's latency; a capture that fails is logged, never answered.
 */
export function installAuditCapture(app: HttpServer, recorder: AuditRecorder, clock: Clock): void {
  app.addHook('onResponse', (request, reply, done) => {
    try {
      const event = captureAuditEvent(request, reply, clock.now());
      if (event !== undefined) recorder.record(event);
    } catch (error) {
      request.log.error({ err: error }, 'Audit event could not be captured');
    }
    done();
  });
}
