import { SocleError } from '../../kernel/index.js';

export const privacyErrors = {
  subjectNotFound: (reference: string) =>
    new SocleError('privacy.subject_not_found', `No account matches ${reference}`, { status: 404 }),
  /** An operator's erasure names the account by its email, typed again, and it did not match. */
  confirmationMismatch: () =>
    new SocleError('privacy.confirmation_mismatch', 'Type the email of the account to erase to confirm', {
      status: 400,
      errors: [{ field: 'body/confirmEmail', message: 'is not the email of this account' }],
    }),
  moduleFailed: (module: string, cause: unknown) =>
    new SocleError(
      'privacy.erasure_incomplete',
      `Erasure stopped in module "${module}": ${cause instanceof Error ? cause.message : String(cause)}. Run it again to resume.`,
      { cause, details: { module } },
    ),
};
