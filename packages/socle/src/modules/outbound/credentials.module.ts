import { defineModule, type ModuleDefinition } from '../../kernel/index.js';
import { registerCredentialRoutes } from './credentials.routes.js';
import { type CredentialsService, createCredentialsService } from './credentials.service.js';
import type { CredentialTables } from './credentials.tables.js';
import type { OutboundServices } from './outbound.module.js';

export interface OutboundCredentialsServices {
  readonly credentials: CredentialsService;
}

/**
 * Per-organization provider keys (`/org/outbound/credentials`): an organization's admin stores its
 * own OpenAI or Replicate key; it is sealed with the kernel's secret box, never returned, and sent
 * on the calls made for that organization to providers declared with `auth: { type: 'tenant-key' }`.
 * Keys go with their organization (on delete cascade); they are not personal data.
 *
 * Opt-in: `modules: [...createBuiltInModules(), createOutboundCredentialsModule()]`.
 */
export function createOutboundCredentialsModule(): ModuleDefinition<
  CredentialTables,
  OutboundCredentialsServices
> {
  return defineModule({
    name: 'outbound_credentials',
    dependsOn: ['outbound', 'tenancy'],
    migrations: new URL('./credentials-migrations/', import.meta.url),
    setup(context) {
      const credentials = createCredentialsService({
        db: context.db,
        secrets: context.secrets,
        scope: context.scope,
      });
      context
        .servicesOf<OutboundServices>('outbound')
        .outbound.useTenantKeys((provider) => credentials.keyOf(provider));
      return { credentials };
    },
    routes(app, { services }) {
      registerCredentialRoutes(app, services.credentials);
    },
  });
}
