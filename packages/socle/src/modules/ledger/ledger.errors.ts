import { SocleError } from '../../kernel/index.js';

/** Where an invalid value was: `body/transfers/2/amount` on HTTP, `transfers/2/amount` in code. */
const field = (path: string, message: string) => [{ field: path, message }];

/** Errors of the ledger: stable codes clients branch on. Nothing is written when one is thrown. */
export const ledgerErrors = {
  accountNotFound: (accountId: string, path: string) =>
    new SocleError('ledger.account_not_found', `Account ${accountId} does not exist`, {
      status: 404,
      details: { accountId },
      errors: field(path, 'is not an account of this organization'),
    }),
  ownerNotMember: (userId: string) =>
    new SocleError(
      'ledger.owner_not_member',
      `User ${userId} is not a member of this organization: their account cannot be opened in it`,
      {
        status: 422,
        details: { userId },
        errors: field('owner/userId', 'is not a member of this organization'),
      },
    ),
  accountExists: (accountId: string) =>
    new SocleError('ledger.account_exists', `Account ${accountId} already exists`, {
      status: 409,
      details: { accountId },
      errors: field('id', 'is taken'),
    }),
  transferNotFound: (transferId: string, path = 'transferId') =>
    new SocleError('ledger.transfer_not_found', `Transfer ${transferId} does not exist`, {
      status: 404,
      details: { transferId },
      errors: field(path, 'is not a transfer of this organization'),
    }),
  notAHold: (transferId: string, path: string) =>
    new SocleError('ledger.not_a_hold', `Transfer ${transferId} is not a hold`, {
      status: 422,
      details: { transferId },
      errors: field(path, 'is not a pending transfer (hold)'),
    }),
  invalidAmount: (path: string, message: string) =>
    new SocleError('ledger.invalid_amount', `The amount ${message}`, {
      status: 400,
      errors: field(path, message),
    }),
  /** A malformed field other than an amount: `code` names what (`ledger.invalid_transfer_id`). */
  invalidInput: (code: string, path: string, message: string) =>
    new SocleError(code, `${path} ${message}`, { status: 400, errors: field(path, message) }),
  invalidUnit: (unit: string, path: string, message: string) =>
    new SocleError('ledger.invalid_unit', `Unit "${unit}" ${message}`, {
      status: 400,
      details: { unit },
      errors: field(path, message),
    }),
  unitMismatch: (debitUnit: string, creditUnit: string, path: string) =>
    new SocleError(
      'ledger.unit_mismatch',
      `A transfer moves one unit: the debit account holds ${debitUnit}, the credit account ${creditUnit}`,
      { status: 422, details: { debitUnit, creditUnit }, errors: field(path, 'has another unit') },
    ),
  sameAccount: (path: string) =>
    new SocleError('ledger.same_account', 'The debit and credit accounts must differ', {
      status: 422,
      errors: field(path, 'is the debit account too'),
    }),
  insufficientFunds: (accountId: string, path: string, rule: string) =>
    new SocleError('ledger.insufficient_funds', `Account ${accountId} cannot cover this transfer (${rule})`, {
      status: 422,
      details: { accountId, rule },
      errors: field(path, `would break the account's rule ${rule}`),
    }),
  overflow: (path: string) =>
    new SocleError('ledger.overflow', 'A balance would exceed the largest amount the ledger holds (2^63-1)', {
      status: 422,
      errors: field(path, 'would overflow a balance'),
    }),
  holdExpired: (holdId: string, path: string) =>
    new SocleError('ledger.hold_expired', `Hold ${holdId} has expired`, {
      status: 409,
      details: { holdId },
      errors: field(path, 'is an expired hold'),
    }),
  holdResolved: (holdId: string, resolution: string, path: string) =>
    new SocleError('ledger.hold_already_resolved', `Hold ${holdId} was already resolved (${resolution})`, {
      status: 409,
      details: { holdId, resolution },
      errors: field(path, `is a hold already resolved (${resolution})`),
    }),
  exceedsHold: (holdId: string, path: string) =>
    new SocleError('ledger.exceeds_hold', `The amount exceeds what hold ${holdId} reserved`, {
      status: 422,
      details: { holdId },
      errors: field(path, 'exceeds the amount held'),
    }),
  exceedsReversible: (transferId: string, path: string) =>
    new SocleError(
      'ledger.exceeds_reversible',
      `The amount exceeds what remains to reverse of transfer ${transferId}`,
      { status: 422, details: { transferId }, errors: field(path, 'exceeds what remains to reverse') },
    ),
  notReversible: (transferId: string, path: string) =>
    new SocleError('ledger.not_reversible', `Transfer ${transferId} moved no posted value to reverse`, {
      status: 422,
      details: { transferId },
      errors: field(path, 'is a hold or a void: nothing posted to reverse'),
    }),
  idempotencyConflict: (transferId: string, path: string) =>
    new SocleError(
      'ledger.idempotency_conflict',
      `Transfer ${transferId} already exists with different content: a new transfer needs a new id`,
      { status: 409, details: { transferId }, errors: field(path, 'was used for another transfer') },
    ),
  duplicateInBatch: (transferId: string, path: string) =>
    new SocleError('ledger.duplicate_in_batch', `Transfer id ${transferId} appears twice in the batch`, {
      status: 400,
      details: { transferId },
      errors: field(path, 'appears twice in the batch'),
    }),
  tenantRequired: () =>
    new SocleError(
      'ledger.tenant_required',
      'Ledger calls act in an organization: run them in a transaction carrying app.tenant_id',
      { status: 400 },
    ),
  invalidCursor: () =>
    new SocleError('ledger.invalid_cursor', 'The cursor is not one this list returned', {
      status: 400,
      errors: field('query/cursor', 'is not a cursor returned by this list'),
    }),
  concurrentDuplicate: (transferId: string) =>
    new SocleError(
      'ledger.concurrent_duplicate',
      `Transfer ${transferId} was being written by another request at the same time: retry`,
      { status: 409, details: { transferId }, headers: { 'retry-after': '0' } },
    ),
};
