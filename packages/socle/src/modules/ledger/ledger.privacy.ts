import type { Database } from '../../kernel/index.js';
import { type PrivacyHooks, withOwnerTransaction } from '../../kernel/index.js';
import { ledgerStore } from './ledger.store.js';

/**
 * A person's accounts and their history. Export gives both; erasure pseudonymizes: the accounts
 * stop naming the person and lose their metadata, as do the transfers touching them, while ids,
 * units and amounts stay (accounting keeps them, and every unit still sums to zero).
 */
export function createLedgerPrivacy(db: Pick<Database, 'withConnection'>): PrivacyHooks {
  return {
    exportSubject: (subject) =>
      withOwnerTransaction(db, (connection) => ledgerStore.exportOwner(connection, subject.userId)),
    eraseSubject: (subject) =>
      withOwnerTransaction(db, (connection) => ledgerStore.eraseOwner(connection, subject.userId)),
  };
}
