import { SocleError } from '../../kernel/index.js';

export const privacyErrors = {
  subjectNotFound: (reference: string) =>
    new SocleError('privacy.subject_not_found', `No account matches ${reference}`, { status: 404 }),
  moduleFailed: (module: string, cause: unknown) =>
    new SocleError(
      'privacy.erasure_incomplete',
      `Erasure stopped in module "${module}": ${cause instanceof Error ? cause.message : String(cause)}. Run it again to resume.`,
      { cause, details: { module } },
    ),
};
