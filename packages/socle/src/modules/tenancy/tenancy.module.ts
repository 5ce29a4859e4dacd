import type { Kysely } from 'kysely';
import { defineJob, defineModule, type SetupContext, Type } from '../../kernel/index.js';
import type { IdentityServices } from '../identity/index.js';
import type { MailServices } from '../mail/index.js';
import { installApiKeyAuthentication } from './api-key-authentication.hooks.js';
import { registerApiKeyRoutes } from './api-keys.routes.js';
import { createApiKeyService } from './api-keys.service.js';
import { createApiKeysStore } from './api-keys.store.js';
import { installCurrentOrg } from './current-org.hooks.js';
import { createOrganizationService, type InvitationDelivery } from './organizations.service.js';
import { createOrganizationsStore } from './organizations.store.js';
import { createPersonalDataStore } from './personal-data.store.js';
import type { OrgRole } from './roles.js';
import { createTenancyPrivacy, FINISH_ORGANIZATION_DELETION } from './tenancy.privacy.js';
import { registerTenancyRoutes } from './tenancy.routes.js';
import type { TenancyTables } from './tenancy.tables.js';

export interface TenancyOptions {
  /** How long an invitation link works. */
  readonly invitationTtlMs?: number;
  /**
   * Sends the invitation token; by default an email through the mail outbox, in the same
   * transaction. Send it to the invited address only: accepting it verifies that address.
   */
  readonly deliverInvitation?: InvitationDelivery;
  /** Builds the link put in the invitation email from the token (your app's accept page). */
  readonly invitationLink?: (token: string) => string;
}

function createTenancyServices(context: SetupContext<TenancyTables>, options: TenancyOptions) {
  const store = createOrganizationsStore(context.db);
  const mail = context.servicesOf<MailServices>('mail').outbox;
  const organizations = createOrganizationService({
    db: context.db,
    store,
    identity: context.servicesOf<IdentityServices>('identity'),
    clock: context.clock,
    invitationTtlMs: options.invitationTtlMs ?? 7 * 24 * 60 * 60 * 1000,
    deliverInvitation:
      options.deliverInvitation ??
      (async (invitation, trx) => {
        const link = options.invitationLink?.(invitation.token);
        await mail.enqueue(trx, {
          to: invitation.email,
          subject: `You are invited to join ${invitation.orgName}`,
          text: [
            `You are invited to join ${invitation.orgName} as ${invitation.role}.`,
            '',
            link === undefined ? `Your invitation token: ${invitation.token}` : `Accept: ${link}`,
            'Sign in with this email address to accept it.',
            '',
            `It expires on ${invitation.expiresAt.toISOString()}.`,
          ].join('\n'),
          idempotencyKey: `tenancy.invitation.${invitation.id}`,
        });
      }),
  });
  const apiKeys = createApiKeyService({
    db: context.db,
    store: createApiKeysStore(context.db),
    clock: context.clock,
  });
  const personalData = createPersonalDataStore(context.db);
  return {
    store,
    organizations,
    apiKeys,
    personalData,
    /**
     * What follows an organization's deletion outside its rows on the primary, idempotent: its rows
     * on its shard (with `SHARDS`), then every module's `organizationDeleted` hook (its files'
     * records, usage and bytes). Run after the deleting commit, and by the job that commit enqueued
     * should the node die first.
     */
    async finishOrganizationDeletion(tenantId: string): Promise<void> {
      await context.db.purgeDeletedTenants();
      for (const { hooks } of context.privacyHooks()) await hooks.organizationDeleted?.(tenantId);
    },
    organizationIdsOf: personalData.organizationIdsOf,
    memberRole: (executor: Kysely<unknown>, userId: string) => store.memberRole(executor, userId),
  } satisfies TenancyServices & Record<string, unknown>;
}

/** Everything tenancy's setup builds (its job handlers' and privacy hooks' view). */
export type TenancyModuleServices = ReturnType<typeof createTenancyServices>;

/** What the tenancy module gives other modules (`context.servicesOf<TenancyServices>('tenancy')`). */
export interface TenancyServices {
  /**
   * The ids of the organizations a person is a member of, across every organization (beneath
   * row-level security): for privacy hooks, which act on a person wherever they are.
   */
  organizationIdsOf(userId: string): Promise<string[]>;
  /**
   * The role of `userId` in the organization the transaction `executor` acts in (its
   * `app.tenant_id`), or null when they are not a member of it: what another module asks before
   * attributing something in the organization to a person (the ledger, opening their account).
   *
   * @example
   * if ((await tenancy.memberRole(trx, userId)) === null) throw errors.notAMember(userId);
   */
  // biome-ignore lint/suspicious/noExplicitAny: a transaction of any module's tables
  memberRole(executor: Kysely<any>, userId: string): Promise<OrgRole | null>;
}

/**
 * Organizations (the tenants), members with roles, invitations, API keys, and the current
 * organization of each request (X-Org-Id or the API key's), enforced by row-level security.
 */
export function createTenancyModule(options: TenancyOptions = {}) {
  return defineModule({
    name: 'tenancy',
    // Read before a request's tenant (and so its shard) is known: stays on the primary with SHARDS.
    placement: 'primary',
    setup: (context: SetupContext<TenancyTables>) => createTenancyServices(context, options),
    privacy: ({ services, jobs }) => createTenancyPrivacy(services, jobs),
    jobs: {
      // Enqueued in the transaction that deletes an organization: a node dying right after that
      // commit leaves the job, and any worker finishes the deletion (its shard rows, its files).
      // Retried for about a day (a shard or the blob store down meanwhile), then kept as failed.
      [FINISH_ORGANIZATION_DELETION]: defineJob({
        schema: Type.Object({ organizationId: Type.String({ format: 'uuid' }) }),
        queue: 'low',
        maxAttempts: 100,
        backoff: { initialDelayMs: 5_000, maxDelayMs: 15 * 60_000 },
        handler: async ({ payload }, services: TenancyModuleServices) => {
          await services.finishOrganizationDeletion(payload.organizationId);
        },
      }),
    },
    dependsOn: ['identity', 'mail'],
    migrations: new URL('./migrations/', import.meta.url),
    configureHttp(app, { services, scope, clock }) {
      installApiKeyAuthentication(app, services.apiKeys, scope);
      installCurrentOrg(app, services.store, scope, clock);
    },
    routes(app, { services }) {
      registerTenancyRoutes(app, services.organizations);
      registerApiKeyRoutes(app, services.apiKeys);
    },
  });
}
