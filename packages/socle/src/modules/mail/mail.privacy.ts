import type { PrivacyHooks } from '../../kernel/index.js';
import type { createPersonalDataStore } from './outbox.store.js';

/** Mail sent or queued to the person; erasure deletes it (bodies can hold names and links). */
export function createMailPrivacy(store: ReturnType<typeof createPersonalDataStore>): PrivacyHooks {
  return {
    exportSubject: async (subject) => ({ mails: await store.mailsTo(subject.email) }),
    eraseSubject: (subject) => store.deleteMailsTo(subject.email),
  };
}
