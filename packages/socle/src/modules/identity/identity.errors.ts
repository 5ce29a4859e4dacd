import { SocleError } from '../../kernel/errors/index.js';

/**
 * Errors of the identity module. Codes start with `auth.` because that is what clients see
 * them as: failures to sign up, sign in or prove a second factor.
 *
 * Sign-in failures deliberately say little: `invalidCredentials` is the same for an unknown
 * email and a wrong password, and `invalidToken` is the same for a malformed, unknown, used or
 * expired token, so that an attacker cannot probe which accounts or tokens exist.
 */
export const identityErrors = {
  /** The password breaks the policy; each reason becomes one `errors[]` entry on `body/password`. */
  weakPassword: (reasons: readonly string[]) =>
    new SocleError('auth.weak_password', `Choose a stronger password: ${reasons.join(' ')}`, {
      status: 400,
      errors: reasons.map((message) => ({ field: 'body/password', message })),
    }),
  invalidEmail: () =>
    new SocleError('auth.invalid_email', 'The email address is not valid', {
      status: 400,
      errors: [{ field: 'body/email', message: 'must be an email address such as name@example.com' }],
    }),
  /** Wrong email or wrong password: one error for both, so sign-in does not reveal who has an account. */
  invalidCredentials: () =>
    new SocleError('auth.invalid_credentials', 'The email address or the password is incorrect', {
      status: 401,
    }),
  invalidTotpCode: () =>
    new SocleError('auth.invalid_mfa_code', 'The authentication code is incorrect or has expired', {
      status: 401,
    }),
  /** The code was right but already used: one-time codes are accepted once, even within their 30 s. */
  totpCodeReused: () =>
    new SocleError(
      'auth.mfa_code_reused',
      'This authentication code has already been used; wait for the next one',
      { status: 401 },
    ),
  /** A secret token (refresh, verification, reset, invitation) that is malformed, unknown or expired. */
  invalidToken: () =>
    new SocleError('auth.invalid_token', 'The token is invalid or has expired', { status: 401 }),
};
