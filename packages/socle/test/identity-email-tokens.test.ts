import { generate } from 'otplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, createManualClock, sql } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { post as postAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

const PASSWORD = 'correct horse battery staple orbit';
const NEW_PASSWORD = 'violet lantern gravel mosaic tundra';
const HOUR_MS = 60 * 60 * 1000;

interface Mail {
  subject: string;
  text_body: string;
}

/** The mails queued for `recipient`, oldest first. */
async function mailsTo(socle: TestSocle, recipient: string): Promise<Mail[]> {
  const { rows } = await sql<Mail>`
    select subject, text_body from mail.outbox where recipient = ${recipient} order by created_at, id`.execute(
    socle.db.kysely,
  );
  return rows;
}

/** The token a mail carries after `label` ("verification", "password reset"). */
function tokenIn(mail: Mail | undefined, label: string): string {
  const token = new RegExp(`Your ${label} token: (\\S+)`).exec(mail?.text_body ?? '')?.[1];
  expect(token).toBeDefined();
  return token as string;
}

describeEachDatabase('Identity: email verification and password reset', (target) => {
  let socle: TestSocle;
  const clock = createManualClock(new Date('2026-06-01T08:00:15Z'));
  let counter = 0;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [createIdentityModule({ rateLimits: false }), createMailModule()],
      clock,
    });
  });
  afterAll(() => socle?.dispose());

  const post = (url: string, payload: object, token?: string) => postAs(socle, url, payload, token);
  const me = (accessToken: string) =>
    socle.app.inject({ method: 'GET', url: '/me', headers: { authorization: `Bearer ${accessToken}` } });

  async function signUp(): Promise<{ email: string; accessToken: string; refreshToken: string }> {
    const user = await socle.newUser({ email: `mailbox.${++counter}@example.com`, password: PASSWORD });
    return { email: user.email, accessToken: user.token, refreshToken: user.refreshToken };
  }

  async function resetToken(email: string): Promise<string> {
    expect((await post('/auth/password-reset', { email })).statusCode).toBe(202);
    const resets = (await mailsTo(socle, email)).filter((mail) => mail.subject === 'Reset your password');
    return tokenIn(resets.at(-1), 'password reset');
  }

  it('queues a verification mail at sign-up; its token verifies the address once', async () => {
    const { email, accessToken } = await signUp();
    const mails = await mailsTo(socle, email);
    expect(mails).toHaveLength(1);
    expect(mails[0]?.subject).toBe('Confirm your email address');
    expect(mails[0]?.text_body).toContain('expires in 24 hours');
    const token = tokenIn(mails[0], 'verification');
    expect(token).toMatch(/^ev_/);
    expect((await me(accessToken)).json().emailVerified).toBe(false);

    const confirmed = await post('/auth/email-verification/confirm', { token });
    expect(confirmed.statusCode).toBe(200);
    expect(confirmed.json()).toMatchObject({ email, emailVerified: true });
    expect((await me(accessToken)).json().emailVerified).toBe(true);

    const again = await post('/auth/email-verification/confirm', { token });
    expect(again.statusCode).toBe(400);
    expect(again.json().code).toBe('auth.email_token_invalid');
    const verifiedAlready = await post('/auth/email-verification', {}, accessToken);
    expect(verifiedAlready.statusCode).toBe(409);
    expect(verifiedAlready.json().code).toBe('auth.email_already_verified');
  });

  it('sends a new verification mail on request, which replaces the earlier one', async () => {
    const { email, accessToken } = await signUp();
    const first = tokenIn((await mailsTo(socle, email))[0], 'verification');
    expect((await post('/auth/email-verification', {})).statusCode).toBe(401);
    const requested = await post('/auth/email-verification', {}, accessToken);
    expect(requested.statusCode).toBe(202);
    const mails = await mailsTo(socle, email);
    expect(mails).toHaveLength(2);
    const second = tokenIn(mails[1], 'verification');
    expect(second).not.toBe(first);
    expect((await post('/auth/email-verification/confirm', { token: first })).statusCode).toBe(400);
    expect((await post('/auth/email-verification/confirm', { token: second })).statusCode).toBe(200);
  });

  it('refuses an expired verification token and a malformed one', async () => {
    const { email } = await signUp();
    const token = tokenIn((await mailsTo(socle, email))[0], 'verification');
    clock.advance(25 * HOUR_MS);
    const expired = await post('/auth/email-verification/confirm', { token });
    expect(expired.statusCode).toBe(400);
    expect(expired.json().code).toBe('auth.email_token_invalid');
    expect(expired.json().errors[0].field).toBe('body/token');
    for (const bad of ['garbage', `ev_${'A'.repeat(43)}`, token.replace(/^ev_/, 'pr_')]) {
      const response = await post('/auth/email-verification/confirm', { token: bad });
      expect(response.statusCode).toBe(400);
      expect(response.json().code).toBe('auth.email_token_invalid');
    }
  });

  it('answers a reset request for an unknown email exactly like one for a known email, and mails nobody', async () => {
    const { email } = await signUp();
    const known = await post('/auth/password-reset', { email });
    const unknown = await post('/auth/password-reset', { email: 'nobody.here@example.com' });
    expect(known.statusCode).toBe(202);
    expect(unknown.statusCode).toBe(202);
    expect(unknown.json()).toEqual(known.json());
    expect(await mailsTo(socle, 'nobody.here@example.com')).toEqual([]);
    const resets = (await mailsTo(socle, email)).filter((mail) => mail.subject === 'Reset your password');
    expect(resets).toHaveLength(1);
    expect(resets[0]?.text_body).toContain('expires in 1 hour');
  });

  it('resets the password: weak refused, then set; old sessions and password stop working', async () => {
    const { email, refreshToken } = await signUp();
    const token = await resetToken(email);
    expect(token).toMatch(/^pr_/);

    const weak = await post('/auth/password-reset/confirm', { token, password: 'password1234' });
    expect(weak.statusCode).toBe(400);
    expect(weak.json().code).toBe('auth.weak_password');

    const reset = await post('/auth/password-reset/confirm', { token, password: NEW_PASSWORD });
    expect(reset.statusCode).toBe(200);
    const tokens = reset.json();
    expect(tokens.tokenType).toBe('Bearer');
    expect((await me(tokens.accessToken)).json()).toMatchObject({ email, emailVerified: true });

    const oldPassword = await post('/auth/sign-in', { email, password: PASSWORD });
    expect(oldPassword.statusCode).toBe(401);
    expect(oldPassword.json().code).toBe('auth.invalid_credentials');
    expect((await post('/auth/sign-in', { email, password: NEW_PASSWORD })).statusCode).toBe(200);

    const stale = await post('/auth/refresh', { refreshToken });
    expect(stale.statusCode).toBe(401);
    expect(stale.json().code).toBe('auth.refresh_token_invalid');
    expect((await post('/auth/refresh', { refreshToken: tokens.refreshToken })).statusCode).toBe(200);

    const reuse = await post('/auth/password-reset/confirm', { token, password: `${NEW_PASSWORD} again` });
    expect(reuse.statusCode).toBe(400);
    expect(reuse.json().code).toBe('auth.email_token_invalid');
  });

  it('keeps only the latest reset token, and expires it after an hour', async () => {
    const { email } = await signUp();
    const first = await resetToken(email);
    const second = await resetToken(email);
    const replaced = await post('/auth/password-reset/confirm', { token: first, password: NEW_PASSWORD });
    expect(replaced.json().code).toBe('auth.email_token_invalid');
    clock.advance(HOUR_MS + 1000);
    const expired = await post('/auth/password-reset/confirm', { token: second, password: NEW_PASSWORD });
    expect(expired.statusCode).toBe(400);
    expect(expired.json().code).toBe('auth.email_token_invalid');
    expect((await post('/auth/sign-in', { email, password: PASSWORD })).statusCode).toBe(200);
  });

  it('lets exactly one of two concurrent confirms with one token succeed', async () => {
    const { email } = await signUp();
    const token = await resetToken(email);
    const responses = await Promise.all([
      post('/auth/password-reset/confirm', { token, password: NEW_PASSWORD }),
      post('/auth/password-reset/confirm', { token, password: `${NEW_PASSWORD} bis` }),
    ]);
    expect(responses.map((response) => response.statusCode).sort()).toEqual([200, 400]);
    const loser = responses.find((response) => response.statusCode === 400);
    expect(loser?.json().code).toBe('auth.email_token_invalid');
  });

  it('asks for the second factor after a reset when two-factor authentication is on', async () => {
    const { email, accessToken } = await signUp();
    const enrolled = await post('/auth/mfa/totp/enroll', {}, accessToken);
    const { secret } = enrolled.json();
    const code = () => generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });
    expect((await post('/auth/mfa/totp/confirm', { code: await code() }, accessToken)).statusCode).toBe(200);
    clock.advance(30_000);

    const token = await resetToken(email);
    const reset = await post('/auth/password-reset/confirm', { token, password: NEW_PASSWORD });
    expect(reset.statusCode).toBe(401);
    expect(reset.json().code).toBe('auth.mfa_required');
    const signedIn = await post('/auth/sign-in/mfa', { mfaToken: reset.json().mfaToken, code: await code() });
    expect(signedIn.statusCode).toBe(200);
    // The password did change, and the token is spent.
    expect((await post('/auth/sign-in', { email, password: PASSWORD })).json().code).toBe(
      'auth.invalid_credentials',
    );
    expect((await post('/auth/password-reset/confirm', { token, password: NEW_PASSWORD })).statusCode).toBe(
      400,
    );
  });
});

describeEachDatabase('Identity: rate limits of password reset mails', (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [createIdentityModule(), createMailModule()],
    });
  });
  afterAll(() => socle?.dispose());

  describe('per account', () => {
    it('mails one account at most 3 reset messages in 15 minutes, whatever the IP', async () => {
      const email = 'flooded@example.com';
      const signUp = await socle.app.inject({
        method: 'POST',
        url: '/auth/sign-up',
        payload: { email, password: PASSWORD },
      });
      expect(signUp.statusCode).toBe(201);
      const reset = (remoteAddress: string) =>
        socle.app.inject({ method: 'POST', url: '/auth/password-reset', payload: { email }, remoteAddress });
      for (let attempt = 0; attempt < 3; attempt++) {
        expect((await reset(`198.51.100.${attempt}`)).statusCode).toBe(202);
      }
      const blocked = await reset('198.51.100.99');
      expect(blocked.statusCode).toBe(429);
      expect(blocked.json()).toMatchObject({ code: 'rate_limit.exceeded', scope: 'password-reset-account' });
      const resets = (await mailsTo(socle, email)).filter((mail) => mail.subject === 'Reset your password');
      expect(resets).toHaveLength(3);
    });
  });
});

describeEachDatabase('Identity: the verification mail goes out through its job', (target) => {
  it('is written to the log by the log sender when the job runs, and its token verifies the address', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger(
      { logLevel: 'info', logFormat: 'json' },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const socle = await createTestSocle(target, {
      modules: [createIdentityModule({ rateLimits: false }), createMailModule()],
      // No worker: the test runs the due jobs itself and sees the outcome when the call returns.
      config: { jobsQueues: [] },
      settings: { mail: { smtpUrl: undefined } },
      log,
    });
    try {
      const email = 'logged.mailbox@example.com';
      const signUp = await postAs(socle, '/auth/sign-up', { email, password: PASSWORD });
      expect(signUp.statusCode).toBe(201);
      // Queued with the account, not sent: nothing in the log until the job runs.
      expect(lines.filter((line) => line.to === email)).toEqual([]);

      expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 0 });
      const logged = lines.filter((line) => line.to === email);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatchObject({ subject: 'Confirm your email address' });
      const token = /Your verification token: (\S+)/.exec(String(logged[0]?.text))?.[1];
      expect(token).toMatch(/^ev_/);
      const { rows } = await sql<{ sent: boolean }>`
        select sent_at is not null as sent from mail.outbox where recipient = ${email}`.execute(
        socle.db.kysely,
      );
      expect(rows).toEqual([{ sent: true }]);

      expect((await postAs(socle, '/auth/email-verification/confirm', { token })).statusCode).toBe(200);
      const me = await socle.app.inject({
        method: 'GET',
        url: '/me',
        headers: { authorization: `Bearer ${signUp.json().tokens.accessToken}` },
      });
      expect(me.json().emailVerified).toBe(true);
    } finally {
      await socle.dispose();
    }
  });
});
