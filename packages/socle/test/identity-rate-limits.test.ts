import { afterAll, beforeAll, expect, it } from 'vitest';
import { createManualClock } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { TEST_PASSWORD } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

const PASSWORD = TEST_PASSWORD;

describeEachDatabase('Identity rate limits', (target) => {
  let socle: TestSocle;
  const clock = createManualClock(new Date('2026-06-01T08:00:00Z'));
  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [createIdentityModule(), createMailModule()], clock });
  });
  afterAll(() => socle?.dispose());

  const signIn = (email: string, password: string, remoteAddress = '203.0.113.7') =>
    socle.app.inject({ method: 'POST', url: '/auth/sign-in', payload: { email, password }, remoteAddress });

  const signUp = (email: string) => socle.newUser({ email: email });

  it('stops password guessing from one address without locking the owner out from theirs', async () => {
    const email = 'target@example.com';
    await signUp(email);
    const attacker = '203.0.113.66';
    for (let attempt = 0; attempt < 10; attempt++) {
      expect((await signIn(email, `wrong guess number ${attempt}`, attacker)).statusCode).toBe(401);
    }
    // The attacker's address is refused on this account, even with the right password...
    const blocked = await signIn(` ${email.toUpperCase()}`, PASSWORD, attacker);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json()).toMatchObject({ code: 'rate_limit.exceeded', scope: 'sign-in-account-ip' });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    // ...while the owner, from another address, signs in with it.
    expect((await signIn(email, PASSWORD, '198.51.100.10')).statusCode).toBe(200);
    expect((await signIn(email, 'one more guess', attacker)).statusCode).toBe(429);
    clock.advance(15 * 60 * 1000);
    expect((await signIn(email, PASSWORD, attacker)).statusCode).toBe(200);
  });

  it('slows a guessing campaign spread over many addresses to addresses the account signed in from', async () => {
    const email = 'botnet-target@example.com';
    await signUp(email);
    const home = '198.51.100.77';
    expect((await signIn(email, PASSWORD, home)).statusCode).toBe(200);
    // The ceiling is 100 sign-ins per account and 15 minutes: the owner's counts as one.
    for (let attempt = 0; attempt < 99; attempt++) {
      const address = `100.64.${Math.floor(attempt / 5)}.${attempt % 5}`;
      expect((await signIn(email, 'wrong guess', address)).statusCode).toBe(401);
    }
    // Past the account's ceiling, a new address is refused, right password or not...
    const stranger = await signIn(email, PASSWORD, '100.64.99.1');
    expect(stranger.statusCode).toBe(429);
    expect(stranger.json().scope).toBe('sign-in-account');
    // ...but the owner's known address still signs in: a stranger cannot lock them out.
    expect((await signIn(email, PASSWORD, home)).statusCode).toBe(200);
    expect((await signIn(email, 'wrong guess', home)).statusCode).toBe(401);
    clock.advance(15 * 60 * 1000);
  });

  it('stops one address from trying many accounts', async () => {
    const attacker = '192.0.2.66';
    for (let attempt = 0; attempt < 50; attempt++) {
      expect((await signIn(`victim${attempt}@example.com`, 'guess', attacker)).statusCode).toBe(401);
    }
    const blocked = await signIn('victim-last@example.com', 'guess', attacker);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().scope).toBe('sign-in-ip');
    expect((await signIn('victim-last@example.com', 'guess', '192.0.2.67')).statusCode).toBe(401);
  });
});

describeEachDatabase('Identity rate limits behind a load balancer (TRUST_PROXY=1)', (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [createIdentityModule(), createMailModule()],
      config: { trustProxy: 1 },
    });
  });
  afterAll(() => socle?.dispose());

  it('counts guesses against the address the balancer saw, whatever X-Forwarded-For the client forged', async () => {
    const email = 'behind-balancer@example.com';
    await socle.newUser({ email: email });
    // The balancer (10.0.0.1) appends the address it saw to what the client sent.
    const signIn = (password: string, forged: string, seen: string) =>
      socle.app.inject({
        method: 'POST',
        url: '/auth/sign-in',
        payload: { email, password },
        remoteAddress: '10.0.0.1',
        headers: { 'x-forwarded-for': `${forged}, ${seen}` },
      });
    for (let attempt = 0; attempt < 10; attempt++)
      expect((await signIn('wrong guess', `198.18.${attempt}.1`, '203.0.113.99')).statusCode).toBe(401);
    const blocked = await signIn(PASSWORD, '198.18.200.1', '203.0.113.99');
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json().scope).toBe('sign-in-account-ip');
    expect((await signIn(PASSWORD, '203.0.113.99', '198.51.100.5')).statusCode).toBe(200);
  });
});
