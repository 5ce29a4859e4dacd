import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Clock, HttpServer, ScopeAccess } from '../../kernel/index.js';
import { isUuid } from '../../kernel/index.js';
import { requireUser } from '../identity/index.js';
import type { OrganizationsStore } from './organizations.store.js';
import { hasRole, type OrgRole } from './roles.js';
import { tenancyErrors } from './tenancy.errors.js';

/** The organization a request acts in, and the caller's role there. */
export interface CurrentOrg {
  readonly orgId: string;
  /**
   * The user the request acts for: the signed-in user, or for an API key the member who created
   * it (to attribute what the key does; check `request.apiKey` to tell the two apart).
   */
  readonly userId: string;
  readonly role: OrgRole;
}

/** The API key that authenticated a request (`X-Api-Key`). */
export interface RequestApiKey {
  readonly id: string;
  readonly scopes: readonly string[];
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the tenancy module when the request names an organization the caller belongs to. */
    org: CurrentOrg | null;
    /** Set by the tenancy module when the request is authenticated by an API key. */
    apiKey: RequestApiKey | null;
  }
}

/** The header naming the organization a request acts in. */
export const ORG_HEADER = 'x-org-id';

/**
 * The `headers` schema of every route acting in the current organization, the one definition of
 * `X-Org-Id` (use it rather than writing your own). The header is needed with an access token:
 * `requireOrg` answers 400 `tenancy.org_required` naming `header/x-org-id` without it; an API key
 * acts in its own organization, so it may be omitted there. A value that is not a UUID is refused
 * with 400 `tenancy.invalid_org_id` before the route's schema is checked.
 *
 * @example
 * app.get('/notes', { schema: { headers: OrgHeaders, security: routeSecurity.memberOrApiKey } }, ...)
 */
export const OrgHeaders = Type.Object({
  [ORG_HEADER]: Type.Optional(
    Type.String({
      format: 'uuid',
      description: "The organization to act in (required, except with an API key: the key's)",
    }),
  ),
});

/** The organization id of an `X-Org-Id` header (lower-cased), undefined when absent, or 400. */
export function orgIdOfHeader(request: FastifyRequest): string | undefined {
  const header = request.headers[ORG_HEADER];
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !isUuid(header)) throw tenancyErrors.invalidOrgHeader();
  return header.toLowerCase();
}
/** How long a membership check is reused: a removed member loses access within this time. */
const MEMBERSHIP_CACHE_MS = 5000;
const MEMBERSHIP_CACHE_SIZE = 10_000;

/**
 * Resolves `X-Org-Id` on every authenticated request: checks membership (cached for a few
 * seconds), then puts the organization in the request scope, so every transaction and every single
 * statement of the request carries `app.tenant_id` and row-level security confines it to that
 * organization. Requests
 * authenticated by an API key already have their organization (see `installApiKeyAuthentication`).
 */
export function installCurrentOrg(
  app: HttpServer,
  store: OrganizationsStore,
  scope: ScopeAccess,
  clock: Clock,
): void {
  const cache = new Map<string, { role: OrgRole | null; until: number }>();
  app.decorateRequest('org', null);
  /** Sets the request's organization, or returns the refusal of a non-member. */
  const enter = (
    request: FastifyRequest,
    orgId: string,
    userId: string,
    role: OrgRole | null,
  ): Error | undefined => {
    if (role === null) return tenancyErrors.notAMember();
    request.org = { orgId, userId, role };
    const current = scope.current();
    if (current !== undefined) current.tenantId = orgId;
    return undefined;
  };
  // Callback style: a cached membership (the common case) costs no promise and no extra turn.
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.apiKey !== null) return done();
    let orgId: string | undefined;
    let userId: string;
    try {
      orgId = orgIdOfHeader(request);
      if (orgId === undefined) return done();
      userId = requireUser(request).userId;
    } catch (error) {
      return done(error as Error);
    }
    const key = `${orgId}:${userId}`;
    const now = clock.now().getTime();
    const cached = cache.get(key);
    if (cached !== undefined && cached.until > now) return done(enter(request, orgId, userId, cached.role));
    const member = orgId;
    store.membershipRole(member, userId).then((role) => {
      if (cache.size >= MEMBERSHIP_CACHE_SIZE) cache.clear();
      cache.set(key, { role, until: now + MEMBERSHIP_CACHE_MS });
      done(enter(request, member, userId, role));
    }, done);
  });
}

/**
 * The organization of the request, or 400 `tenancy.org_required`. Use it in any module's routes.
 * A request authenticated by an API key acts in the key's organization, with the key's role; to
 * refuse API keys on a route, call `requireUser` as well.
 */
export function requireOrg(request: FastifyRequest): CurrentOrg {
  if (request.apiKey === null) requireUser(request);
  if (request.org === null) throw tenancyErrors.orgRequired();
  return request.org;
}

/** The organization of the request if the caller has at least `minimum`, or 403 `tenancy.forbidden`. */
export function requireOrgRole(request: FastifyRequest, minimum: OrgRole): CurrentOrg {
  const org = requireOrg(request);
  if (!hasRole(org.role, minimum)) throw tenancyErrors.forbidden(minimum);
  return org;
}

/**
 * Refuses an API key that was not granted `scope` (403 `auth.insufficient_scope`, naming it).
 * Requests of signed-in users pass: scopes narrow what a key may do, and a user's reach is their
 * role. Call it in a module's routes next to `requireOrgRole`.
 *
 * @example
 * app.get('/crm/clients', async (request) => {
 *   const org = requireOrgRole(request, 'viewer');
 *   requireScope(request, 'crm:read');
 *   return clients.list(org);
 * });
 */
export function requireScope(request: FastifyRequest, scope: string): void {
  if (request.apiKey !== null && !request.apiKey.scopes.includes(scope)) {
    throw tenancyErrors.insufficientScope(scope);
  }
}
