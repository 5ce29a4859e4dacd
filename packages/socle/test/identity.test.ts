import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManualClock } from '../src/index.js';
import { CREDENTIALS_CHECK_TTL_MS, createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { get as getAs, post as postAs } from './support/api-client.js';
import { describeEachDatabase, postgresTarget } from './support/each-database.js';

const PASSWORD = 'correct horse battery staple orbit';

interface Tokens {
  accessToken: string;
  refreshToken: string;
  sessionId: string;
  expiresIn: number;
}

describeEachDatabase('Identity: accounts, sessions, tokens', (target) => {
  let socle: TestSocle;
  const clock = createManualClock(new Date('2026-06-01T08:00:00Z'));
  let counter = 0;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [
        createIdentityModule({ accessTokenTtlSeconds: 600, refreshReuseGraceMs: 10_000, rateLimits: false }),
        createMailModule(),
      ],
      clock,
    });
  });
  afterAll(() => socle?.dispose());

  const post = (url: string, payload: object, token?: string) => postAs(socle, url, payload, token);
  const get = (url: string, token?: string) => getAs(socle, url, token);

  async function signUp(): Promise<{ email: string; tokens: Tokens; userId: string }> {
    const email = `User.${++counter}@Example.com `;
    const response = await post('/auth/sign-up', { email, password: PASSWORD, name: 'Ada' });
    expect(response.statusCode).toBe(201);
    const body = response.json();
    return { email: email.trim().toLowerCase(), tokens: body.tokens, userId: body.user.id };
  }

  it('signs up with a normalized email and a strong password, and knows the user', async () => {
    const { email, tokens, userId } = await signUp();
    const me = await get('/me', tokens.accessToken);
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ id: userId, email, name: 'Ada', emailVerified: false });
    expect(me.json()).not.toHaveProperty('password_hash');
  });

  it('refuses a weak password with its reasons and a taken email with 409', async () => {
    const weak = await post('/auth/sign-up', { email: 'weak@example.com', password: 'password1234' });
    expect(weak.statusCode).toBe(400);
    expect(weak.json().code).toBe('auth.weak_password');
    expect(weak.json().errors[0].field).toBe('body/password');
    const { email } = await signUp();
    const taken = await post('/auth/sign-up', { email: email.toUpperCase(), password: PASSWORD });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().code).toBe('auth.email_taken');
  });

  it('signs in, and fails the same way for a wrong password and an unknown email', async () => {
    const { email } = await signUp();
    const ok = await post('/auth/sign-in', { email: ` ${email.toUpperCase()}`, password: PASSWORD });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().tokenType).toBe('Bearer');
    const wrong = await post('/auth/sign-in', { email, password: `${PASSWORD}!` });
    const unknown = await post('/auth/sign-in', { email: 'nobody@example.com', password: PASSWORD });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    const { requestId: _a, instance: _b, ...wrongProblem } = wrong.json();
    const { requestId: _c, instance: _d, ...unknownProblem } = unknown.json();
    expect(wrongProblem).toEqual(unknownProblem);
    expect(wrongProblem.code).toBe('auth.invalid_credentials');
  });

  it('answers 401 without a token, with a bad one, and once it expired', async () => {
    expect((await get('/me')).json().code).toBe('auth.unauthenticated');
    expect((await get('/me', 'not.a.jwt')).json().code).toBe('auth.token_invalid');
    const { tokens } = await signUp();
    const forged = `${tokens.accessToken.slice(0, -4)}AAAA`;
    expect((await get('/me', forged)).json().code).toBe('auth.token_invalid');
    clock.advance(601_000);
    const expired = await get('/me', tokens.accessToken);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().code).toBe('auth.token_expired');
  });

  it('rotates refresh tokens: each works once and the new one works', async () => {
    const { tokens } = await signUp();
    const first = await post('/auth/refresh', { refreshToken: tokens.refreshToken });
    expect(first.statusCode).toBe(200);
    const rotated: Tokens = first.json();
    expect(rotated.refreshToken).not.toBe(tokens.refreshToken);
    expect(rotated.sessionId).toBe(tokens.sessionId);
    expect((await get('/me', rotated.accessToken)).statusCode).toBe(200);
    const second = await post('/auth/refresh', { refreshToken: rotated.refreshToken });
    expect(second.statusCode).toBe(200);
  });

  it('lets concurrent refreshes with one token all succeed with the same new token (several tabs)', async () => {
    const { tokens } = await signUp();
    const responses = await Promise.all(
      Array.from({ length: 6 }, () => post('/auth/refresh', { refreshToken: tokens.refreshToken })),
    );
    expect(responses.map((response) => response.statusCode)).toEqual([200, 200, 200, 200, 200, 200]);
    const refreshTokens = new Set(responses.map((response) => response.json().refreshToken));
    expect(refreshTokens.size).toBe(1);
    const [next] = refreshTokens;
    expect((await post('/auth/refresh', { refreshToken: next })).statusCode).toBe(200);
  });

  it('revokes the whole session when a used refresh token comes back after the grace window', async () => {
    const { tokens } = await signUp();
    const rotated: Tokens = (await post('/auth/refresh', { refreshToken: tokens.refreshToken })).json();
    clock.advance(11_000);
    const replay = await post('/auth/refresh', { refreshToken: tokens.refreshToken });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().code).toBe('auth.refresh_token_reused');
    // The thief's replay ended the legitimate client's session too: it must sign in again.
    const legitimate = await post('/auth/refresh', { refreshToken: rotated.refreshToken });
    expect(legitimate.statusCode).toBe(401);
    expect(legitimate.json().code).toBe('auth.refresh_token_invalid');
  });

  it('refuses malformed and unknown refresh tokens alike', async () => {
    for (const refreshToken of ['garbage', `rt_${'A'.repeat(43)}`]) {
      const response = await post('/auth/refresh', { refreshToken });
      expect(response.statusCode).toBe(401);
      expect(response.json().code).toBe('auth.refresh_token_invalid');
    }
  });

  it('lists sessions, revokes one, signs out, and signs out everywhere', async () => {
    const { email, tokens } = await signUp();
    const laptop: Tokens = (await post('/auth/sign-in', { email, password: PASSWORD })).json();
    const phone: Tokens = (await post('/auth/sign-in', { email, password: PASSWORD })).json();
    const listed = (await get('/auth/sessions', laptop.accessToken)).json() as {
      id: string;
      current: boolean;
    }[];
    expect(listed.map((session) => session.id).sort()).toEqual(
      [tokens.sessionId, laptop.sessionId, phone.sessionId].sort(),
    );
    expect(listed.find((session) => session.current)?.id).toBe(laptop.sessionId);

    const revoke = await socle.app.inject({
      method: 'DELETE',
      url: `/auth/sessions/${phone.sessionId}`,
      headers: { authorization: `Bearer ${laptop.accessToken}` },
    });
    expect(revoke.statusCode).toBe(204);
    expect((await post('/auth/refresh', { refreshToken: phone.refreshToken })).statusCode).toBe(401);

    expect((await post('/auth/sign-out', {}, laptop.accessToken)).statusCode).toBe(204);
    expect((await post('/auth/refresh', { refreshToken: laptop.refreshToken })).statusCode).toBe(401);

    expect((await post('/auth/sign-out-everywhere', {}, tokens.accessToken)).statusCode).toBe(204);
    expect((await post('/auth/refresh', { refreshToken: tokens.refreshToken })).statusCode).toBe(401);
  });

  it('ends the access token of a session at once when it is signed out or revoked, not at its expiry', async () => {
    const { email, tokens } = await signUp();
    const laptop: Tokens = (await post('/auth/sign-in', { email, password: PASSWORD })).json();
    const phone: Tokens = (await post('/auth/sign-in', { email, password: PASSWORD })).json();
    // Each token was just used: the node remembers its session as valid.
    for (const token of [tokens.accessToken, laptop.accessToken, phone.accessToken])
      expect((await get('/auth/sessions', token)).statusCode).toBe(200);

    expect((await post('/auth/sign-out', {}, laptop.accessToken)).statusCode).toBe(204);
    const afterSignOut = await get('/auth/sessions', laptop.accessToken);
    expect(afterSignOut.statusCode).toBe(401);
    expect(afterSignOut.json()).toMatchObject({ code: 'auth.credentials_revoked' });

    const revoked = await socle.app.inject({
      method: 'DELETE',
      url: `/auth/sessions/${phone.sessionId}`,
      headers: { authorization: `Bearer ${tokens.accessToken}` },
    });
    expect(revoked.statusCode).toBe(204);
    expect((await get('/auth/sessions', phone.accessToken)).statusCode).toBe(401);
    // The other sessions are untouched.
    expect((await get('/auth/sessions', tokens.accessToken)).statusCode).toBe(200);

    expect((await post('/auth/sign-out-everywhere', {}, tokens.accessToken)).statusCode).toBe(204);
    expect((await get('/auth/sessions', tokens.accessToken)).statusCode).toBe(401);
  });

  it("cannot revoke another user's session", async () => {
    const alice = await signUp();
    const bob = await signUp();
    const response = await socle.app.inject({
      method: 'DELETE',
      url: `/auth/sessions/${bob.tokens.sessionId}`,
      headers: { authorization: `Bearer ${alice.tokens.accessToken}` },
    });
    expect(response.statusCode).toBe(404);
    expect((await post('/auth/refresh', { refreshToken: bob.tokens.refreshToken })).statusCode).toBe(200);
  });

  it('publishes a JWKS that verifies access tokens, and keeps verifying across a key rotation', async () => {
    const { tokens } = await signUp();
    const jwks = (await get('/.well-known/jwks.json')).json();
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
    const { payload, protectedHeader } = await jwtVerify(tokens.accessToken, createLocalJWKSet(jwks), {
      currentDate: clock.now(),
    });
    expect(payload.sub).toBeTypeOf('string');
    expect(protectedHeader.kid).toBe(jwks.keys[0].kid);
  });
});

describe.skipIf(!postgresTarget.available)(
  'Identity: a revocation on one node, seen by another [postgres]',
  () => {
    let first: TestSocle;
    let second: TestSocle;
    beforeAll(async () => {
      const modules = () => [createIdentityModule({ rateLimits: false }), createMailModule()];
      first = await createTestSocle(postgresTarget, { modules: modules() });
      second = await createTestSocle(postgresTarget, { modules: modules(), database: first.database });
    });
    afterAll(async () => {
      await second?.close();
      await first?.dispose();
    });

    it("stops accepting a signed-out session's access token on every node within the credentials check's second", async () => {
      const signedUp = await postAs(first, '/auth/sign-up', {
        email: 'fleet.user@example.com',
        password: PASSWORD,
      });
      const { accessToken } = signedUp.json().tokens as Tokens;
      // The other node has seen the token and remembers the session as valid.
      expect((await getAs(second, '/auth/sessions', accessToken)).statusCode).toBe(200);
      expect((await postAs(first, '/auth/sign-out', {}, accessToken)).statusCode).toBe(204);
      const deadline = Date.now() + 10 * CREDENTIALS_CHECK_TTL_MS;
      let status = 200;
      while (status === 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        status = (await getAs(second, '/auth/sessions', accessToken)).statusCode;
      }
      expect(status).toBe(401);
    });
  },
);
