/** The ledger module: accounts, double-entry transfers, holds, reversals, reconciliation. */

export { ledgerErrors } from './ledger.errors.js';
export {
  createLedgerModule,
  type LedgerModule,
  type LedgerServices,
  type LedgerSettings,
  ledgerSettings,
} from './ledger.module.js';
export type {
  Account,
  AccountOwner,
  Balance,
  BalanceMessage,
  BalanceRule,
  HoldOperation,
  LedgerOperation,
  LedgerService,
  NewAccount,
  PersonalBook,
  PostedTransfer,
  PostOperation,
  ReconciliationReport,
  ReverseOperation,
  Transfer,
  TransferOperation,
  TransferPage,
  TransferQuery,
  VoidOperation,
} from './ledger.service.js';
export { LEDGER_PLATFORM_SETTING, ledgerPlatformSettings } from './ledger.service.js';
export type { LedgerExecutor as LedgerTransaction } from './ledger.store.js';
export type { LedgerTables } from './ledger.tables.js';
export type { Amount } from './units.js';
