import { afterAll, beforeAll, expect, it } from 'vitest';
import { createManualClock } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const PASSWORD = 'correct horse battery staple orbit';

describeEachDatabase('Identity rate limits', (target) => {
  let socle: TestSocle;
  const clock = createManualClock(new Date('2026-06-01T08:00:00Z'));
  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [createIdentityModule(), createMailModule()], clock });
  });
  afterAll(() => socle?.dispose());

  const signIn = (email: string, password: string, remoteAddress = '203.0.113.7') =>
    socle.app.inject({ method: 'POST', url: '/auth/sign-in', payload: { email, password }, remoteAddress });

  it('stops password guessing on one account, even with the right password, until the window refills', async () => {
    const email = 'target@example.com';
    const signUp = await socle.app.inject({
      method: 'POST',
      url: '/auth/sign-up',
      payload: { email, password: PASSWORD },
    });
    expect(signUp.statusCode).toBe(201);
    for (let attempt = 0; attempt < 10; attempt++) {
      // From different addresses: the per-account limit holds whatever the IP.
      expect((await signIn(email, 'wrong guess number one', `198.51.100.${attempt}`)).statusCode).toBe(401);
    }
    const blocked = await signIn(` ${email.toUpperCase()}`, PASSWORD, '198.51.100.200');
    expect(blocked.statusCode).toBe(429);
    expect(blocked.json()).toMatchObject({ code: 'rate_limit.exceeded', scope: 'sign-in-account' });
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    clock.advance(15 * 60 * 1000);
    expect((await signIn(email, PASSWORD, '198.51.100.201')).statusCode).toBe(200);
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
