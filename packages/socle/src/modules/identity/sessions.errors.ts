import { SocleError } from '../../kernel/index.js';

/** Errors of sessions and access tokens: stable codes clients branch on. */
export const sessionErrors = {
  unauthenticated: () =>
    new SocleError(
      'auth.unauthenticated',
      'Sign in first: this route needs an access token (Authorization: Bearer …)',
      {
        status: 401,
        headers: { 'www-authenticate': 'Bearer' },
      },
    ),
  tokenExpired: () =>
    new SocleError('auth.token_expired', 'The access token has expired; refresh it', {
      status: 401,
      headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
    }),
  tokenInvalid: () =>
    new SocleError('auth.token_invalid', 'The access token is not valid', {
      status: 401,
      headers: { 'www-authenticate': 'Bearer error="invalid_token"' },
    }),
  credentialsRevoked: () =>
    new SocleError(
      'auth.credentials_revoked',
      'The credentials of this account were revoked (the account was erased); its tokens no longer work',
      { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } },
    ),
  refreshTokenInvalid: () =>
    new SocleError('auth.refresh_token_invalid', 'The refresh token is not valid, or its session has ended', {
      status: 401,
    }),
  refreshTokenReused: () =>
    new SocleError(
      'auth.refresh_token_reused',
      'This refresh token was already used: the session is revoked on every device as a precaution. Sign in again.',
      { status: 401 },
    ),
  sessionNotFound: (id: string) =>
    new SocleError('auth.session_not_found', `No session ${id} for this account`, {
      status: 404,
      details: { id },
    }),
  accountNotFound: (userId: string) =>
    new SocleError('auth.account_not_found', `No account ${userId}`, { status: 404, details: { userId } }),
  emailTaken: () =>
    new SocleError('auth.email_taken', 'An account with this email already exists; sign in instead', {
      status: 409,
      errors: [{ field: 'body/email', message: 'is already registered' }],
    }),
};
