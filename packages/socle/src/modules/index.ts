import type { ModuleDefinition } from '../kernel/index.js';
import { createAuditModule } from './audit/index.js';
import { createIdentityModule } from './identity/index.js';
import { createJobsModule } from './jobs/index.js';
import { createMailModule } from './mail/index.js';
import { createOutboundModule } from './outbound/index.js';
import { createPrivacyModule } from './privacy/index.js';
import { createRealtimeModule } from './realtime/index.js';
import { createTenancyModule } from './tenancy/index.js';

/**
 * The capabilities Socle ships, each a module written with the same API as an app. A new set per
 * call: modules hold their services, so two Socle instances in one process must not share them.
 */
// biome-ignore lint/suspicious/noExplicitAny: each module is typed with its own tables
export function createBuiltInModules(): ModuleDefinition<any>[] {
  return [
    createIdentityModule(),
    createTenancyModule(),
    createAuditModule(),
    createJobsModule(),
    createMailModule(),
    createOutboundModule(),
    createPrivacyModule(),
    createRealtimeModule(),
  ];
}
