import { type FieldError, SocleError } from '../../kernel/index.js';

/**
 * Errors of the mail module. They are programming errors of the calling module (a message that
 * cannot be sent, a mail queued outside a transaction), not client input: the caller validates
 * addresses it takes from a request and answers 400 itself, so these surface as 500.
 */
export const mailErrors = {
  /** The message given to `enqueue` cannot be sent; each problem names its field. */
  invalidMessage: (errors: readonly FieldError[]) =>
    new SocleError(
      'mail.invalid_message',
      `The mail cannot be queued: ${errors.map((error) => `${error.field} ${error.message}`).join('; ')}`,
      { errors },
    ),
  notInTransaction: () =>
    new SocleError(
      'mail.not_in_transaction',
      'Mail is queued inside a transaction (db.transaction(trx => outbox.enqueue(trx, …))): its row and its delivery job must commit together',
    ),
};
