import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, TEST_PASSWORD, type TestSocle, type TestUser } from '../src/testing/index.js';
import { callAs } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

const OPERATOR_TOKEN = 'operator-token-of-the-operator-suite-0123456789';
const operator = { 'x-operator-token': OPERATOR_TOKEN };

describeEachDatabase('Operator routes: every organization and account, erasure of anyone', (target) => {
  let socle: TestSocle;
  let alice: TestUser;
  let bruno: TestUser;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: createBuiltInModules(),
      settings: { identity: { operatorToken: OPERATOR_TOKEN } },
    });
    alice = await socle.newUser({ email: 'alice@operator.test' });
    bruno = await socle.newUser({ email: 'bruno@operator.test' });
    const alpha = await socle.newTenant({ owner: alice, name: 'Cabinet Alpha' });
    await socle.newMember(alpha, { user: bruno });
    await socle.newTenant({ owner: bruno, name: 'Cabinet Beta' });
    await socle.newTenant({ owner: bruno, name: 'Cabinet 100% Gamma' });
  });
  afterAll(() => socle?.dispose());

  const get = (url: string, headers: Record<string, string> = operator) =>
    socle.app.inject({ method: 'GET', url, headers });

  it('refuses without the operator token: a user, an API-less caller, a wrong token', async () => {
    for (const url of ['/operator/organizations', '/operator/users']) {
      expect((await get(url, {})).json().code, url).toBe('auth.not_operator');
      expect((await get(url, { 'x-operator-token': OPERATOR_TOKEN.replace('0', '1') })).statusCode).toBe(401);
      // A signed-in user, even an organization owner, is not an operator.
      expect((await callAs(socle, alice, 'GET', url)).statusCode, url).toBe(401);
    }
    const erase = await callAs(socle, alice, 'POST', `/operator/users/${bruno.userId}/erase`, {
      payload: { confirmEmail: 'bruno@operator.test' },
    });
    expect(erase.statusCode).toBe(401);
    expect(
      (await socle.app.inject({ method: 'POST', url: `/operator/users/${bruno.userId}/export` })).statusCode,
    ).toBe(401);
  });

  it('lists every organization with its members, searched and page by page', async () => {
    const all = await get('/operator/organizations?search=cabinet');
    expect(all.statusCode, all.body).toBe(200);
    expect(
      all.json().organizations.map((org: { name: string; members: number }) => [org.name, org.members]),
    ).toEqual([
      ['Cabinet 100% Gamma', 1],
      ['Cabinet Alpha', 2],
      ['Cabinet Beta', 1],
    ]);
    // `%` is a character, not a wildcard; the search ignores case.
    expect((await get('/operator/organizations?search=100%25')).json().organizations).toHaveLength(1);
    expect((await get('/operator/organizations?search=ALPHA')).json().organizations).toHaveLength(1);
    const first = (await get('/operator/organizations?search=cabinet&limit=2')).json();
    expect(first.organizations).toHaveLength(2);
    expect(first.next).toBe(first.organizations[1].slug);
    const second = (await get(`/operator/organizations?search=cabinet&limit=2&after=${first.next}`)).json();
    expect(second).toEqual({
      organizations: [expect.objectContaining({ name: 'Cabinet Beta' })],
      next: null,
    });
  });

  it('lists every account with its 2FA state and sessions, searched and page by page', async () => {
    const page = await get('/operator/users?search=operator.test&limit=1');
    expect(page.statusCode, page.body).toBe(200);
    expect(page.json()).toEqual({
      users: [
        expect.objectContaining({
          id: alice.userId,
          email: 'alice@operator.test',
          twoFactor: false,
          activeSessions: 1,
        }),
      ],
      next: 'alice@operator.test',
    });
    const next = (
      await get('/operator/users?search=operator.test&limit=1&after=alice%40operator.test')
    ).json();
    expect(next.users.map((user: { email: string }) => user.email)).toEqual(['bruno@operator.test']);
    expect((await get('/operator/users?search=nobody-here')).json()).toEqual({ users: [], next: null });
  });

  it('answers bad input with a 400 naming the field', async () => {
    const tooMany = await get('/operator/users?limit=1000');
    expect(tooMany.statusCode).toBe(400);
    expect(JSON.stringify(tooMany.json().errors)).toContain('limit');
    const notUuid = await socle.app.inject({
      method: 'POST',
      url: '/operator/users/not-a-uuid/erase',
      headers: operator,
      payload: { confirmEmail: 'x@y.z' },
    });
    expect(notUuid.statusCode).toBe(400);
  });

  it('shows the configuration in effect, every credential masked', async () => {
    const response = await get('/operator/configuration');
    expect(response.statusCode, response.body).toBe(200);
    expect(response.body).not.toContain(OPERATOR_TOKEN);
    const settings: {
      env: string;
      module: string | null;
      secret: boolean;
      set: boolean;
      value: string | null;
    }[] = response.json().settings;
    const byEnv = new Map(settings.map((entry) => [entry.env, entry]));
    expect(byEnv.get('OPERATOR_TOKEN')).toMatchObject({
      module: 'identity',
      secret: true,
      set: true,
      value: null,
    });
    expect(byEnv.get('SECRET_KEY')).toMatchObject({ module: null, secret: true, value: null });
    expect(byEnv.get('DATABASE_URL')).toMatchObject({ secret: true, value: null });
    expect(byEnv.get('DATABASE_APP_ROLE')).toMatchObject({
      secret: false,
      value: expect.stringContaining('"'),
    });
    expect(byEnv.get('MAIL_MAX_ATTEMPTS')).toMatchObject({ module: 'mail', secret: false, value: '10' });
    // Whatever looks like a credential is declared one (public names listed with why).
    const shownOnPurpose = new Set([
      'REALTIME_APP_KEY', // the public key browsers connect with
      'BLOB_URL', // refused when it carries credentials (they come from AWS_*)
      'REALTIME_WEBHOOK_URL', // shown to the organization's admins by /realtime/apps as well
    ]);
    const credentialLike = /SECRET|TOKEN|PASSWORD|_KEY$|_KEYS|_URLS?$/;
    expect(
      settings.filter(
        (entry) => credentialLike.test(entry.env) && !entry.secret && !shownOnPurpose.has(entry.env),
      ),
    ).toEqual([]);
    expect((await get('/operator/configuration', {})).statusCode).toBe(401);
  });

  it("shows any organization's members and another account's sessions, and revokes one, audited", async () => {
    const alpha = (await get('/operator/organizations?search=alpha')).json().organizations[0];
    const members = await get(`/operator/organizations/${alpha.id}/members`);
    expect(members.statusCode, members.body).toBe(200);
    expect(members.json().members).toEqual([
      expect.objectContaining({ userId: alice.userId, email: 'alice@operator.test', role: 'owner' }),
      expect.objectContaining({ userId: bruno.userId, email: 'bruno@operator.test', role: 'member' }),
    ]);
    const unknown = '00000000-0000-4000-8000-000000000000';
    const noOrg = await get(`/operator/organizations/${unknown}/members`);
    expect(noOrg.json()).toMatchObject({ status: 404, code: 'tenancy.organization_not_found' });
    expect((await get(`/operator/organizations/${alpha.id}/members`, {})).statusCode).toBe(401);
    // A member of the organization is not an operator either.
    expect(
      (await callAs(socle, alice, 'GET', `/operator/organizations/${alpha.id}/members`)).statusCode,
    ).toBe(401);

    // Bruno signs in on a second device: two live sessions; the operator revokes that one.
    const signedIn = await socle.app.inject({
      method: 'POST',
      url: '/auth/sign-in',
      payload: { email: 'bruno@operator.test', password: TEST_PASSWORD },
      headers: { 'user-agent': 'second laptop' },
    });
    expect(signedIn.statusCode, signedIn.body).toBe(200);
    const { sessionId, refreshToken } = signedIn.json();
    const listed = await get(`/operator/users/${bruno.userId}/sessions`);
    expect(listed.statusCode, listed.body).toBe(200);
    const sessions: { id: string; userAgent: string | null }[] = listed.json().sessions;
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    expect(sessions).toContainEqual(expect.objectContaining({ id: sessionId, userAgent: 'second laptop' }));
    const revoke = (userId: string, id: string, headers: Record<string, string> = operator) =>
      socle.app.inject({ method: 'DELETE', url: `/operator/users/${userId}/sessions/${id}`, headers });
    expect((await revoke(bruno.userId, sessionId, {})).statusCode).toBe(401);
    // Another account's session id under Bruno's: not found, nothing revoked.
    expect((await revoke(alice.userId, sessionId)).json().code).toBe('auth.session_not_found');
    const revoked = await revoke(bruno.userId, sessionId);
    expect(revoked.statusCode, revoked.body).toBe(204);
    const after = (await get(`/operator/users/${bruno.userId}/sessions`)).json().sessions;
    expect(after.map((session: { id: string }) => session.id)).not.toContain(sessionId);
    expect(after).toHaveLength(sessions.length - 1);
    const refresh = await socle.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refreshToken },
    });
    expect(refresh.statusCode).toBe(401);
    expect((await revoke(bruno.userId, sessionId)).json().code).toBe('auth.session_not_found');
    expect((await get(`/operator/users/${unknown}/sessions`)).json()).toMatchObject({
      status: 404,
      code: 'auth.account_not_found',
    });
    expect((await get('/operator/users/not-a-uuid/sessions')).statusCode).toBe(400);

    await new Promise((resolve) => setImmediate(resolve));
    await socle.servicesOf<{ flush(): Promise<void> }>('audit').flush();
    const { rows } = await socle.db.withConnection(
      (connection) =>
        connection.query<{ action: string; status: number }>(
          `select action, status from audit.events where action like 'DELETE /operator/users/%' order by occurred_at, id`,
        ),
      'owner',
    );
    expect(rows).toContainEqual({
      action: 'DELETE /operator/users/:userId/sessions/:id',
      status: 204,
    });
  });

  it("exports another person's data, and erases them only when their email is typed again", async () => {
    const exported = await socle.app.inject({
      method: 'POST',
      url: `/operator/users/${bruno.userId}/export`,
      headers: operator,
    });
    expect(exported.statusCode, exported.body).toBe(200);
    expect(exported.json().subject).toEqual({ userId: bruno.userId, email: 'bruno@operator.test' });
    expect(Object.keys(exported.json().modules)).toContain('tenancy');

    const erase = (confirmEmail: string) =>
      socle.app.inject({
        method: 'POST',
        url: `/operator/users/${bruno.userId}/erase`,
        headers: operator,
        payload: { confirmEmail },
      });
    const wrong = await erase('alice@operator.test');
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({
      code: 'privacy.confirmation_mismatch',
      errors: [{ field: 'body/confirmEmail' }],
    });
    expect((await callAs(socle, bruno, 'GET', '/me')).statusCode).toBe(200);

    const erased = await erase(' Bruno@Operator.test ');
    expect(erased.statusCode, erased.body).toBe(200);
    expect(erased.json().erasedModules).toContain('identity');
    // Gone: their token no longer works, the lists no longer show them (not even pseudonymized),
    // and no email of theirs is left to confirm another erasure with.
    expect((await callAs(socle, bruno, 'GET', '/me')).statusCode).toBe(401);
    expect((await get('/operator/users?search=bruno')).json().users).toEqual([]);
    expect((await get('/operator/users?search=erased')).json().users).toEqual([]);
    expect((await get('/operator/organizations?search=alpha')).json().organizations[0].members).toBe(1);
    // Erasing again (a retry whose first answer was lost) answers the same run and erases
    // nothing, whatever is typed: nothing is left to confirm against, nor to erase.
    const again = await erase('bruno@operator.test');
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json()).toEqual({ runId: erased.json().runId, erasedModules: [] });
    // And the finished run forgot the email it kept while it ran.
    const { rows: runs } = await socle.db.withConnection(
      (connection) =>
        connection.query<{ email: string | null }>(
          'select email from privacy.erasure_runs where user_id = $1',
          [bruno.userId],
        ),
      'owner',
    );
    expect(runs).toEqual([{ email: null }]);
    const nobody = await socle.app.inject({
      method: 'POST',
      url: '/operator/users/00000000-0000-4000-8000-000000000000/erase',
      headers: operator,
      payload: { confirmEmail: 'bruno@operator.test' },
    });
    expect(nobody.json()).toMatchObject({ status: 404, code: 'privacy.subject_not_found' });
    // The operator's reads and erasure are in the audit log (no organization, no user as actor).
    await new Promise((resolve) => setImmediate(resolve));
    await socle.servicesOf<{ flush(): Promise<void> }>('audit').flush();
    const { rows } = await socle.db.withConnection(
      (connection) =>
        connection.query<{ action: string; status: number; target: string }>(
          `select action, status, target from audit.events where action like '% /operator/users/%' order by occurred_at, id`,
        ),
      'owner',
    );
    expect(rows).toContainEqual({
      action: 'POST /operator/users/:userId/erase',
      status: 200,
      target: JSON.stringify({ userId: bruno.userId }),
    });
    expect(rows).toContainEqual(
      expect.objectContaining({ action: 'POST /operator/users/:userId/export', status: 200 }),
    );
  });
});
