import { setTimeout as sleep } from 'node:timers/promises';
import type { PrivacyHooks } from '../../kernel/index.js';
import { CREDENTIALS_CHECK_TTL_MS } from './authentication.hooks.js';
import type { PersonalDataStore } from './personal-data.store.js';

/**
 * The account, its sessions and second factor. Erasure first revokes the account's credentials
 * (access tokens included), then deletes sessions, tokens and second-factor data and pseudonymizes
 * the account row, which stays because other modules refer to it (an
 * organization's creator, an invitation's sender). It runs last of all modules' erasures.
 */
export function createIdentityPrivacy(store: PersonalDataStore): PrivacyHooks {
  return {
    exportSubject: (subject) => store.exportAccount(subject),
    // The access tokens already handed out are refused from now on; the sessions end, so no
    // refresh token works either, and the password goes, so no new session opens. Nodes trust a user's credentials for CREDENTIALS_CHECK_TTL_MS
    // without reading the column again: waiting that long means no node accepts them afterwards.
    revokeAccess: async (subject) => {
      await store.revokeCredentials(subject);
      await sleep(CREDENTIALS_CHECK_TTL_MS);
    },
    eraseSubject: (subject) => store.eraseAccount(subject),
  };
}
