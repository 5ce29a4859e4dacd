import type { HttpServer, ScopeAccess } from '../../kernel/index.js';
import type { ApiKeyService } from './api-keys.service.js';
import { orgIdOfHeader } from './current-org.hooks.js';
import { tenancyErrors } from './tenancy.errors.js';

/** The header carrying an API key. */
export const API_KEY_HEADER = 'x-api-key';

/**
 * Authenticates every request that carries `X-Api-Key`: verifies the key (401
 * `auth.api_key_invalid` if unknown, revoked or expired), sets `request.apiKey` and `request.org`
 * (the key's organization and role, attributed to its creator) and opens the request scope with
 * the organization, so every transaction and statement of the request is confined to it by
 * row-level security. The scope carries no user: policies keyed on a user (their memberships
 * elsewhere) show a key nothing. `X-Org-Id`, if sent, must name the key's organization (403 `auth.api_key_org_mismatch`).
 * Must run before `installCurrentOrg`.
 */
export function installApiKeyAuthentication(
  app: HttpServer,
  apiKeys: ApiKeyService,
  scope: ScopeAccess,
): void {
  app.decorateRequest('apiKey', null);
  // Callback style, so the rest of the request (hooks, handler) runs inside the scope opened here.
  app.addHook('onRequest', (request, _reply, done) => {
    const header = request.headers[API_KEY_HEADER];
    if (header === undefined) {
      done();
      return;
    }
    if (request.auth !== null) {
      done(tenancyErrors.conflictingCredentials());
      return;
    }
    let orgId: string | undefined;
    try {
      orgId = orgIdOfHeader(request);
    } catch (error) {
      done(error as Error);
      return;
    }
    if (typeof header !== 'string') {
      done(tenancyErrors.apiKeyInvalid());
      return;
    }
    apiKeys.verify(header).then(
      (key) => {
        if (orgId !== undefined && orgId !== key.orgId) {
          done(tenancyErrors.apiKeyOtherOrg());
          return;
        }
        request.apiKey = { id: key.id, scopes: key.scopes };
        request.org = { orgId: key.orgId, userId: key.createdBy, role: key.role };
        scope.run({ tenantId: key.orgId }, done);
      },
      (error: Error) => done(error),
    );
  });
}
