import { connectionExecutor, type Jobs, type PrivacyHooks } from '../../kernel/index.js';
import type { PersonalDataStore } from './personal-data.store.js';

/** The tenancy job that finishes an organization's deletion (declared by the module). */
export const FINISH_ORGANIZATION_DELETION = 'finishOrganizationDeletion';

/**
 * Memberships and invitations. Erasure removes the person from every organization: one they
 * were the only member of is deleted (with its data); one they were the last owner of gets its
 * longest-standing remaining member as owner, so no organization is left without one.
 */
export function createTenancyPrivacy(
  services: {
    readonly personalData: PersonalDataStore;
    /** Removes what lies outside the primary's rows of a deleted organization (idempotent). */
    finishOrganizationDeletion(tenantId: string): Promise<void>;
  },
  jobs: Pick<Jobs, 'enqueue'>,
): PrivacyHooks {
  const store = services.personalData;
  return {
    exportSubject: (subject) => store.exportMemberships(subject),
    // API keys belong to the organization, but the person who minted one has seen it: the keys
    // they created are revoked with the rest of their credentials (they leave the organization's
    // list of keys; an admin mints a new one if an integration needs it). Other nodes stop
    // accepting a key they verified in the last 5 seconds within 5 seconds, as for any revocation.
    revokeAccess: (subject) => store.revokeApiKeysCreatedBy(subject.userId),
    eraseSubject: async (subject) => {
      // An organization's rows on a shard and its bytes (files) are not rows a cascade reaches:
      // the job committed with its deletion removes them even if this node dies right after the
      // commit; done here too, so an erasure that answers has finished (the job then finds
      // nothing left: every step is idempotent).
      const deleted = await store.eraseMemberships(subject, async (connection, tenantId) => {
        await jobs.enqueue(
          connectionExecutor(connection),
          `tenancy.${FINISH_ORGANIZATION_DELETION}`,
          { organizationId: tenantId },
          { key: tenantId },
        );
      });
      for (const tenantId of deleted) await services.finishOrganizationDeletion(tenantId);
    },
  };
}
