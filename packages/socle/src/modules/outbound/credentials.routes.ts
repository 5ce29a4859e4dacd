import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { OrgHeaders, requireOrgRole } from '../tenancy/index.js';
import type { CredentialsService, StoredCredential } from './credentials.service.js';

const Provider = Type.String({
  pattern: '^[a-z][a-z0-9_-]{0,62}$',
  description: 'The provider as declared (`openai`)',
});
const Credential = Type.Object({
  provider: Type.String(),
  hint: Type.String({ description: 'The last characters of the key; the key itself is never returned' }),
  updatedAt: Type.String({ format: 'date-time' }),
});
const ProviderParams = Type.Object({ provider: Provider });

const shown = (credential: StoredCredential) => ({
  provider: credential.provider,
  hint: credential.hint,
  updatedAt: credential.updatedAt.toISOString(),
});

/**
 * An organization's own keys for outbound providers, for its admins: stored sealed, listed by
 * hint only, replaced or removed. Calls to a provider declared with `tenant-key` auth use them.
 */
export function registerCredentialRoutes(app: HttpServer, credentials: CredentialsService): void {
  const admin = {
    tags: ['outbound'],
    security: routeSecurity.memberOrApiKey,
    ...OrgHeaders,
  };
  app.get(
    '/org/outbound/credentials',
    {
      schema: {
        ...admin,
        summary: "The organization's stored provider keys, by hint (admin)",
        response: { 200: Type.Object({ credentials: Type.Array(Credential) }) },
      },
    },
    async (request) => {
      requireOrgRole(request, 'admin');
      return { credentials: (await credentials.list()).map(shown) };
    },
  );
  app.put(
    '/org/outbound/credentials/:provider',
    {
      schema: {
        ...admin,
        summary: "Stores the organization's own key for a provider, sealed at rest (admin)",
        params: ProviderParams,
        body: Type.Object(
          { key: Type.String({ minLength: 8, maxLength: 4096, pattern: '^[\\x21-\\x7e]+$' }) },
          { additionalProperties: false },
        ),
        response: { 200: Credential },
      },
    },
    async (request) => {
      const org = requireOrgRole(request, 'admin');
      return shown(await credentials.store(org.orgId, request.params.provider, request.body.key));
    },
  );
  app.delete(
    '/org/outbound/credentials/:provider',
    {
      schema: {
        ...admin,
        summary: "Removes the organization's key for a provider (admin)",
        params: ProviderParams,
        response: { 204: Type.Null({ description: 'Removed' }) },
      },
    },
    async (request, reply) => {
      requireOrgRole(request, 'admin');
      await credentials.remove(request.params.provider);
      return reply.code(204).send(null);
    },
  );
}
