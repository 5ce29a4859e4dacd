import type { ModulePrivacyHooks, PrivacyHooks } from '../../kernel/index.js';
import type { PersonalDataStore } from './personal-data.store.js';

/**
 * Memberships and invitations. Erasure removes the person from every organization: one they
 * were the only member of is deleted (with its data); one they were the last owner of gets its
 * longest-standing remaining member as owner, so no organization is left without one.
 */
export function createTenancyPrivacy(
  store: PersonalDataStore,
  /** Every module's hooks: each is told of an organization deleted, for what it keeps outside rows. */
  everyModule: () => readonly ModulePrivacyHooks[],
): PrivacyHooks {
  return {
    exportSubject: (subject) => store.exportMemberships(subject),
    // API keys belong to the organization, but the person who minted one has seen it: the keys
    // they created are revoked with the rest of their credentials (they leave the organization's
    // list of keys; an admin mints a new one if an integration needs it). Other nodes stop
    // accepting a key they verified in the last 5 seconds within 5 seconds, as for any revocation.
    revokeAccess: (subject) => store.revokeApiKeysCreatedBy(subject.userId),
    eraseSubject: async (subject) => {
      const deleted = await store.eraseMemberships(subject);
      // After the commit: an organization's bytes (files) are not rows a cascade reaches. Not
      // crash-safe yet: a node dying between the commit and this leaves them behind.
      for (const tenantId of deleted)
        for (const { hooks } of everyModule()) await hooks.organizationDeleted?.(tenantId);
    },
  };
}
