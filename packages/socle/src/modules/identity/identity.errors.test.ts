import { describe, expect, it } from 'vitest';
import { toProblem } from '../../kernel/errors/index.js';
import { identityErrors } from './identity.errors.js';

describe('identityErrors', () => {
  it('names the password field once per reason in a weak password error', () => {
    const error = identityErrors.weakPassword(['Use at least 10 characters.', 'Avoid common words.']);
    expect(error.status).toBe(400);
    expect(error.code).toBe('auth.weak_password');
    expect(toProblem(error).errors).toEqual([
      { field: 'body/password', message: 'Use at least 10 characters.' },
      { field: 'body/password', message: 'Avoid common words.' },
    ]);
  });

  it('names the email field in an invalid email error', () => {
    const error = identityErrors.invalidEmail();
    expect(error).toMatchObject({ status: 400, code: 'auth.invalid_email' });
    expect(error.errors.map((fieldError) => fieldError.field)).toEqual(['body/email']);
  });

  it('answers a bad email token with a 400 naming the token field, not a 401', () => {
    const error = identityErrors.emailTokenInvalid();
    expect(error).toMatchObject({ status: 400, code: 'auth.email_token_invalid' });
    expect(error.errors.map((fieldError) => fieldError.field)).toEqual(['body/token']);
  });

  it.each([
    ['invalidTotpCode', identityErrors.invalidTotpCode(), 'auth.invalid_mfa_code'],
    ['totpCodeReused', identityErrors.totpCodeReused(), 'auth.mfa_code_reused'],
    ['invalidCredentials', identityErrors.invalidCredentials(), 'auth.invalid_credentials'],
  ])('%s is a 401 with a stable code', (_name, error, code) => {
    expect(error.status).toBe(401);
    expect(error.code).toBe(code);
  });
});
