import { SocleError } from '../../kernel/index.js';

/**
 * Errors of the identity module. Codes start with `auth.` because that is what clients see
 * them as: failures to sign up, sign in or prove a second factor.
 *
 * Sign-in failures deliberately say little: `invalidCredentials` is the same for an unknown
 * email and a wrong password, and a token error is the same for a malformed, unknown, used or
 * expired token (`sessionErrors.tokenInvalid`, the email-token errors), so that an attacker
 * cannot probe which accounts or tokens exist.
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
  /**
   * A wrong second-factor code (TOTP or recovery code). At sign-in it is a 401. On the routes of a
   * signed-in user (`field` given), it is a 400 naming the field: the session is fine, and a
   * client that answers 401 by signing out must not do so for a mistyped code.
   */
  invalidTotpCode: (field?: string) =>
    new SocleError(
      'auth.invalid_mfa_code',
      'The authentication code is incorrect or has expired',
      field === undefined
        ? { status: 401 }
        : { status: 400, errors: [{ field, message: 'is not a valid authentication or recovery code' }] },
    ),
  /** The code was right but already used: one-time codes are accepted once, even within their 30 s. */
  totpCodeReused: (field?: string) =>
    new SocleError(
      'auth.mfa_code_reused',
      'This authentication code has already been used; wait for the next one',
      field === undefined
        ? { status: 401 }
        : { status: 400, errors: [{ field, message: 'was already used; wait for the next code' }] },
    ),
  /**
   * The password was right and the account has two-factor authentication: no session yet. The
   * client sends `mfaToken` with a code to `POST /auth/sign-in/mfa`.
   */
  mfaRequired: (mfaToken: string, expiresInSeconds: number) =>
    new SocleError(
      'auth.mfa_required',
      'Enter the code from your authenticator app (or a recovery code) to finish signing in',
      { status: 401, details: { mfaToken, expiresIn: expiresInSeconds } },
    ),
  /**
   * Re-authentication before a sensitive action (erasing the account) failed: wrong password. A
   * 400 naming the field, not a 401: the session itself is fine.
   */
  wrongPassword: () =>
    new SocleError('auth.wrong_password', 'The password is incorrect', {
      status: 400,
      errors: [{ field: 'body/password', message: 'is not the password of this account' }],
    }),
  /** Re-authentication of an account with 2FA on needs a code as well as the password. */
  mfaCodeRequired: () =>
    new SocleError(
      'auth.mfa_code_required',
      'This account has two-factor authentication on: send a code from the authenticator app (or a recovery code) with the password',
      { status: 400, errors: [{ field: 'body/code', message: 'is required' }] },
    ),
  /** The sign-in challenge is malformed, unknown, used, expired or burnt by too many wrong codes. */
  mfaChallengeInvalid: () =>
    new SocleError(
      'auth.mfa_challenge_invalid',
      'This sign-in attempt has expired or was already used; sign in with your password again',
      { status: 401 },
    ),
  mfaAlreadyEnabled: () =>
    new SocleError(
      'auth.mfa_already_enabled',
      'Two-factor authentication is already on; disable it first to enrol a new authenticator',
      { status: 409 },
    ),
  /** Confirming without a pending enrolment (never started, or already confirmed elsewhere). */
  mfaNotEnrolled: () =>
    new SocleError(
      'auth.mfa_not_enrolled',
      'There is no pending authenticator enrolment; start one with POST /auth/mfa/totp/enroll',
      { status: 409 },
    ),
  mfaNotEnabled: () =>
    new SocleError('auth.mfa_not_enabled', 'Two-factor authentication is not on for this account', {
      status: 409,
    }),
  /**
   * An email verification or password reset token that is malformed, unknown, used, expired or
   * replaced by a newer mail. A 400 naming the field, not a 401: nobody is signed in with it, and
   * the client should offer to send a new mail.
   */
  emailTokenInvalid: () =>
    new SocleError(
      'auth.email_token_invalid',
      'This link is invalid, was already used or has expired; ask for a new email',
      {
        status: 400,
        errors: [{ field: 'body/token', message: 'is not a valid, unused and unexpired token' }],
      },
    ),
  /** Asking for a verification mail when the address is already verified. */
  emailAlreadyVerified: () =>
    new SocleError('auth.email_already_verified', 'This email address is already verified', {
      status: 409,
    }),
};
