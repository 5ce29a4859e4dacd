import type { Database } from '../../kernel/index.js';
import { type PrivacyHooks, withOwnerTransaction } from '../../kernel/index.js';
import { paymentsStore } from './payments.store.js';

/**
 * A person's payments and subscriptions. Export gives them; erasure pseudonymizes: the rows stop
 * naming the person and lose metadata and provider payloads, while amounts and dates stay
 * (accounting keeps them).
 */
export function createPaymentsPrivacy(db: Pick<Database, 'withConnection'>): PrivacyHooks {
  return {
    exportSubject: (subject) =>
      withOwnerTransaction(db, (connection) => paymentsStore.exportUser(connection, subject.userId)),
    eraseSubject: (subject) =>
      withOwnerTransaction(db, (connection) => paymentsStore.eraseUser(connection, subject.userId)),
  };
}
