import { generate } from 'otplib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createManualClock } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { post as postAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

const PASSWORD = 'correct horse battery staple orbit';
const STEP_MS = 30_000;

describeEachDatabase('Identity: two-factor authentication (TOTP, recovery codes)', (target) => {
  let socle: TestSocle;
  // 15 s into a TOTP step, so codes computed "now" are mid-step.
  const clock = createManualClock(new Date('2026-06-01T08:00:15Z'));
  let counter = 0;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [createIdentityModule({ totpIssuer: 'Socle Test', rateLimits: false }), createMailModule()],
      clock,
    });
  });
  afterAll(() => socle?.dispose());

  const post = (url: string, payload: object, token?: string) => postAs(socle, url, payload, token);

  /** The code an authenticator app shows for `secret` at the manual clock's time. */
  const codeNow = (secret: string) => generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });

  /** Moves to the next TOTP step, so the next code is fresh. */
  const nextStep = () => clock.advance(STEP_MS);

  async function signUp(): Promise<{ email: string; accessToken: string }> {
    const user = await socle.newUser({ email: `mfa.${++counter}@example.com`, password: PASSWORD });
    return { email: user.email, accessToken: user.token };
  }

  async function enableTotp(accessToken: string): Promise<{ secret: string; recoveryCodes: string[] }> {
    const enrolled = await post('/auth/mfa/totp/enroll', {}, accessToken);
    expect(enrolled.statusCode).toBe(200);
    const { secret } = enrolled.json();
    const confirmed = await post('/auth/mfa/totp/confirm', { code: await codeNow(secret) }, accessToken);
    expect(confirmed.statusCode).toBe(200);
    return { secret, recoveryCodes: confirmed.json().recoveryCodes };
  }

  /** Signs in with the password of an account with 2FA on and returns the challenge token. */
  async function startSignIn(email: string): Promise<string> {
    const response = await post('/auth/sign-in', { email, password: PASSWORD });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('auth.mfa_required');
    return response.json().mfaToken;
  }

  it('enrols, confirms, asks for the second factor at sign-in, refuses replays, and disables', async () => {
    const { email, accessToken } = await signUp();

    const enrolled = await post('/auth/mfa/totp/enroll', {}, accessToken);
    expect(enrolled.statusCode).toBe(200);
    const { secret, otpauthUri, qrCodeDataUrl } = enrolled.json();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    expect(otpauthUri).toContain(`secret=${secret}`);
    expect(decodeURIComponent(otpauthUri)).toContain(email);
    expect(qrCodeDataUrl).toMatch(/^data:image\/png;base64,/);

    // A pending enrolment does not change sign-in yet.
    expect((await post('/auth/sign-in', { email, password: PASSWORD })).statusCode).toBe(200);

    const confirmed = await post('/auth/mfa/totp/confirm', { code: await codeNow(secret) }, accessToken);
    expect(confirmed.statusCode).toBe(200);
    const recoveryCodes: string[] = confirmed.json().recoveryCodes;
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);

    // The password alone opens no session any more.
    const passwordOnly = await post('/auth/sign-in', { email, password: PASSWORD });
    expect(passwordOnly.statusCode).toBe(401);
    expect(passwordOnly.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = passwordOnly.json();
    expect(problem.code).toBe('auth.mfa_required');
    expect(problem.mfaToken).toMatch(/^mfa_[A-Za-z0-9_-]{43}$/);
    expect(problem).not.toHaveProperty('accessToken');
    expect(problem).not.toHaveProperty('refreshToken');

    nextStep();
    const code = await codeNow(secret);
    const second = await post('/auth/sign-in/mfa', { mfaToken: problem.mfaToken, code });
    expect(second.statusCode).toBe(200);
    const tokens = second.json();
    expect(tokens).toMatchObject({ tokenType: 'Bearer' });
    const me = await socle.app.inject({
      method: 'GET',
      url: '/me',
      headers: { authorization: `Bearer ${tokens.accessToken}` },
    });
    expect(me.json().email).toBe(email);

    // The challenge is single-use, even with the next code.
    nextStep();
    const usedChallenge = await post('/auth/sign-in/mfa', {
      mfaToken: problem.mfaToken,
      code: await codeNow(secret),
    });
    expect(usedChallenge.statusCode).toBe(401);
    expect(usedChallenge.json().code).toBe('auth.mfa_challenge_invalid');

    // A code is accepted once: replaying it in the same step (on a new challenge) is refused.
    clock.advance(-STEP_MS);
    const replay = await post('/auth/sign-in/mfa', { mfaToken: await startSignIn(email), code });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().code).toBe('auth.mfa_code_reused');
    clock.advance(STEP_MS);

    // A recovery code works once, in any letter case and with spaces.
    const recovery = recoveryCodes[0] as string;
    const withRecovery = await post('/auth/sign-in/mfa', {
      mfaToken: await startSignIn(email),
      code: ` ${recovery.toUpperCase()} `,
    });
    expect(withRecovery.statusCode).toBe(200);
    const recoveryAgain = await post('/auth/sign-in/mfa', {
      mfaToken: await startSignIn(email),
      code: recovery,
    });
    expect(recoveryAgain.statusCode).toBe(401);
    expect(recoveryAgain.json().code).toBe('auth.invalid_mfa_code');

    // Disabling needs a fresh code; then the password alone signs in again.
    nextStep();
    const disabled = await post('/auth/mfa/totp/disable', { code: await codeNow(secret) }, accessToken);
    expect(disabled.statusCode).toBe(204);
    const oneStep = await post('/auth/sign-in', { email, password: PASSWORD });
    expect(oneStep.statusCode).toBe(200);
    expect(oneStep.json().tokenType).toBe('Bearer');
    // The old recovery codes went with the secret.
    const afterDisable = await post('/auth/mfa/recovery-codes', { code: recoveryCodes[1] }, accessToken);
    expect(afterDisable.statusCode).toBe(409);
    expect(afterDisable.json().code).toBe('auth.mfa_not_enabled');
  });

  it('refuses a wrong confirmation code as a field error and leaves 2FA off', async () => {
    const { email, accessToken } = await signUp();
    const noEnrollment = await post('/auth/mfa/totp/confirm', { code: '123456' }, accessToken);
    expect(noEnrollment.statusCode).toBe(409);
    expect(noEnrollment.json().code).toBe('auth.mfa_not_enrolled');

    const { secret } = (await post('/auth/mfa/totp/enroll', {}, accessToken)).json();
    const right = await codeNow(secret);
    const wrong = right === '000000' ? '000001' : '000000';
    const refused = await post('/auth/mfa/totp/confirm', { code: wrong }, accessToken);
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({
      code: 'auth.invalid_mfa_code',
      errors: [{ field: 'body/code' }],
    });
    expect((await post('/auth/sign-in', { email, password: PASSWORD })).statusCode).toBe(200);
  });

  it('restarts a pending enrolment with a new secret, and refuses enrolment once 2FA is on', async () => {
    const { accessToken } = await signUp();
    const first = (await post('/auth/mfa/totp/enroll', {}, accessToken)).json();
    const second = (await post('/auth/mfa/totp/enroll', {}, accessToken)).json();
    expect(second.secret).not.toBe(first.secret);
    const withOldSecret = await post(
      '/auth/mfa/totp/confirm',
      { code: await codeNow(first.secret) },
      accessToken,
    );
    expect(withOldSecret.json().code).toBe('auth.invalid_mfa_code');
    const confirmed = await post(
      '/auth/mfa/totp/confirm',
      { code: await codeNow(second.secret) },
      accessToken,
    );
    expect(confirmed.statusCode).toBe(200);

    const again = await post('/auth/mfa/totp/enroll', {}, accessToken);
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('auth.mfa_already_enabled');
  });

  it('needs a signed-in user for enrolment, confirmation, disabling and recovery codes', async () => {
    for (const url of [
      '/auth/mfa/totp/enroll',
      '/auth/mfa/totp/confirm',
      '/auth/mfa/totp/disable',
      '/auth/mfa/recovery-codes',
    ]) {
      const response = await post(url, { code: '123456' });
      expect(response.statusCode, url).toBe(401);
      expect(response.json().code, url).toBe('auth.unauthenticated');
    }
  });

  it('replaces recovery codes: the old ones stop working, the new ones work', async () => {
    const { email, accessToken } = await signUp();
    const { secret, recoveryCodes: old } = await enableTotp(accessToken);
    nextStep();
    const replaced = await post('/auth/mfa/recovery-codes', { code: await codeNow(secret) }, accessToken);
    expect(replaced.statusCode).toBe(200);
    const fresh: string[] = replaced.json().recoveryCodes;
    expect(fresh).toHaveLength(10);
    expect(fresh.some((code) => old.includes(code))).toBe(false);

    const mfaToken = await startSignIn(email);
    const withOld = await post('/auth/sign-in/mfa', { mfaToken, code: old[0] });
    expect(withOld.json().code).toBe('auth.invalid_mfa_code');
    // The wrong code did not burn the challenge.
    expect((await post('/auth/sign-in/mfa', { mfaToken, code: fresh[0] })).statusCode).toBe(200);

    // A recovery code also proves the second factor for replacing them, and is used up doing so.
    const byRecovery = await post('/auth/mfa/recovery-codes', { code: fresh[1] }, accessToken);
    expect(byRecovery.statusCode).toBe(200);
    const reusedTotp = await post('/auth/mfa/recovery-codes', { code: await codeNow(secret) }, accessToken);
    expect(reusedTotp.statusCode).toBe(400);
    expect(reusedTotp.json().code).toBe('auth.mfa_code_reused');
  });

  it('burns a challenge after 5 wrong codes, and refuses expired and malformed ones', async () => {
    const { email, accessToken } = await signUp();
    const { secret } = await enableTotp(accessToken);
    nextStep();
    const right = await codeNow(secret);
    const wrong = right === '000000' ? '000001' : '000000';

    const mfaToken = await startSignIn(email);
    for (let attempt = 1; attempt <= 5; attempt++) {
      const response = await post('/auth/sign-in/mfa', { mfaToken, code: wrong });
      expect(response.json().code, `attempt ${attempt}`).toBe('auth.invalid_mfa_code');
    }
    const burnt = await post('/auth/sign-in/mfa', { mfaToken, code: right });
    expect(burnt.statusCode).toBe(401);
    expect(burnt.json().code).toBe('auth.mfa_challenge_invalid');

    const slow = await startSignIn(email);
    clock.advance(5 * 60_000 + 1000);
    const expired = await post('/auth/sign-in/mfa', { mfaToken: slow, code: await codeNow(secret) });
    expect(expired.json().code).toBe('auth.mfa_challenge_invalid');

    for (const token of ['garbage', `mfa_${'A'.repeat(43)}`, `rt_${'A'.repeat(43)}`]) {
      const response = await post('/auth/sign-in/mfa', { mfaToken: token, code: await codeNow(secret) });
      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('auth.mfa_challenge_invalid');
    }
    // The right code was never consumed by the refused attempts: it still signs in.
    const fine = await post('/auth/sign-in/mfa', {
      mfaToken: await startSignIn(email),
      code: await codeNow(secret),
    });
    expect(fine.statusCode).toBe(200);
  });

  it('accepts one fresh TOTP code once when several sign-ins present it at the same time', async () => {
    const { email, accessToken } = await signUp();
    const { secret } = await enableTotp(accessToken);
    for (let round = 0; round < 3; round++) {
      nextStep();
      const code = await codeNow(secret);
      const challenges = await Promise.all([1, 2, 3, 4].map(() => startSignIn(email)));
      const responses = await Promise.all(
        challenges.map((mfaToken) => post('/auth/sign-in/mfa', { mfaToken, code })),
      );
      const outcomes = responses.map((response) =>
        response.statusCode === 200 ? 'signed in' : response.json().code,
      );
      expect(outcomes.sort()).toEqual([
        'auth.mfa_code_reused',
        'auth.mfa_code_reused',
        'auth.mfa_code_reused',
        'signed in',
      ]);
    }
  });

  it('accepts one recovery code once when several sign-ins present it at the same time', async () => {
    const { email, accessToken } = await signUp();
    const { recoveryCodes } = await enableTotp(accessToken);
    const code = recoveryCodes[0] as string;
    const challenges = await Promise.all([1, 2, 3].map(() => startSignIn(email)));
    const responses = await Promise.all(
      challenges.map((mfaToken) => post('/auth/sign-in/mfa', { mfaToken, code })),
    );
    expect(responses.map((response) => response.statusCode).sort()).toEqual([200, 401, 401]);
    expect(responses.filter((response) => response.statusCode === 401).map((r) => r.json().code)).toEqual([
      'auth.invalid_mfa_code',
      'auth.invalid_mfa_code',
    ]);
  });
});
