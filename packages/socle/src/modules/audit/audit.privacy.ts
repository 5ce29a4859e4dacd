import type { PrivacyHooks } from '../../kernel/index.js';
import type { TenancyServices } from '../tenancy/index.js';
import type { PersonalDataStore } from './personal-data.store.js';

/** The action of the event an organization logs when erasure removes one of its members. */
export const MEMBER_ERASED_ACTION = 'member.erased';

/**
 * Actions the person took. The audit trail itself stays (organizations keep it under their
 * legitimate interest); erasure pseudonymizes it: the actor, IP and user agent are removed.
 */
export function createAuditPrivacy(options: {
  readonly store: PersonalDataStore;
  readonly tenancy: Pick<TenancyServices, 'organizationIdsOf'>;
  /** Writes the events queued on this node, so an export or erasure sees every action. */
  readonly flushPending: () => Promise<void>;
}): PrivacyHooks {
  const { store, tenancy, flushPending } = options;
  return {
    exportSubject: async (subject) => {
      await flushPending();
      return { actions: await store.actionsOf(subject.userId) };
    },
    eraseSubject: async (subject) => {
      await flushPending();
      // Each organization the person leaves by erasure logs it (its admins see who left), before
      // the tenancy module, which erases after this one (it is a dependency), removes the
      // memberships. The person is fenced out already: their memberships no longer change.
      const organizations = await tenancy.organizationIdsOf(subject.userId);
      await store.pseudonymizeActor(subject.userId, MEMBER_ERASED_ACTION, organizations);
    },
  };
}
