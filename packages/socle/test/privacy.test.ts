import { generate } from 'otplib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineModule, sql } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createPrivacyService } from '../src/modules/privacy/index.js';
import { createTestSocle, type TestSocle, type TestUser } from '../src/testing/index.js';
import { TEST_PASSWORD as PASSWORD } from './support/api-client.js';
import { describeEachDatabase } from './support/each-database.js';

describeEachDatabase('Privacy: export and erasure across every module', (target) => {
  let socle: TestSocle;
  let failNextErasure = true;
  const flakyCalls: string[] = [];
  /** An app whose erasure fails once, as if the process crashed half-way. */
  const flaky = defineModule({
    name: 'flaky_app',
    privacy: () => ({
      exportSubject: async () => ({ note: 'flaky app data' }),
      eraseSubject: async (subject) => {
        flakyCalls.push(subject.email);
        if (failNextErasure) {
          failNextErasure = false;
          throw new Error('connection lost');
        }
      },
    }),
  });

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [flaky, ...createBuiltInModules()],
    });
  });
  afterAll(() => socle?.dispose());

  const signUp = (email: string) => socle.newUser({ email: email });
  const as = (token: string, orgId?: string) => ({
    authorization: `Bearer ${token}`,
    ...(orgId ? { 'x-org-id': orgId } : {}),
  });
  async function createOrg(owner: TestUser, name: string) {
    return (await socle.newTenant({ owner, name })).id;
  }
  async function invite(
    ownerToken: string,
    orgId: string,
    email: string,
    role: string,
    inviteeToken: string,
  ) {
    await socle.app.inject({
      method: 'POST',
      url: '/org/invitations',
      payload: { email, role },
      headers: as(ownerToken, orgId),
    });
    const { rows } = await sql<{ text_body: string }>`
      select text_body from mail.outbox where recipient = ${email} and subject like 'You are invited%' order by created_at desc limit 1`.execute(
      socle.db.kysely,
    );
    const token = /Your invitation token: (\S+)/.exec(rows[0]?.text_body ?? '')?.[1];
    const accepted = await socle.app.inject({
      method: 'POST',
      url: '/invitations/accept',
      payload: { token },
      headers: as(inviteeToken),
    });
    expect(accepted.statusCode).toBe(200);
  }

  it('exports everything about a person, then erases it everywhere, resuming after a failure', async () => {
    const ada = await signUp('ada@cabinet.example');
    const bob = await signUp('bob@cabinet.example');
    const cy = await signUp('cy@cabinet.example');
    const alone = await createOrg(ada, 'Ada Solo');
    const bobs = await createOrg(bob, 'Cabinet Bob');
    await invite(bob.token, bobs, 'ada@cabinet.example', 'admin', ada.token);
    const adas = await createOrg(ada, 'Cabinet Ada');
    await invite(ada.token, adas, 'cy@cabinet.example', 'member', cy.token);

    const exported = await socle.app.inject({ method: 'GET', url: '/me/export', headers: as(ada.token) });
    expect(exported.statusCode).toBe(200);
    expect(exported.headers['content-disposition']).toContain('attachment');
    const archive = exported.json();
    expect(archive.subject).toEqual({ userId: ada.userId, email: 'ada@cabinet.example' });
    expect(archive.modules.identity.account.email).toBe('ada@cabinet.example');
    expect(archive.modules.identity.sessions.length).toBeGreaterThan(0);
    expect(archive.modules.tenancy.memberships.map((m: { name: string }) => m.name).sort()).toEqual([
      'Ada Solo',
      'Cabinet Ada',
      'Cabinet Bob',
    ]);
    expect(archive.modules.mail.mails.length).toBeGreaterThan(0);
    expect(archive.modules.audit.actions.length).toBeGreaterThan(0);
    expect(archive.modules.flaky_app).toEqual({ note: 'flaky app data' });
    expect(JSON.stringify(archive)).not.toContain('password_hash');

    const privacy = createPrivacyService(socle.context);
    const subject = await privacy.findSubject('ADA@cabinet.example');
    expect(subject.userId).toBe(ada.userId);
    await expect(privacy.erase(subject)).rejects.toMatchObject({ code: 'privacy.erasure_incomplete' });
    // Interrupted, the person stays fenced out until the erasure is resumed.
    const fenced = await socle.app.inject({ method: 'GET', url: '/me', headers: as(ada.token) });
    expect([fenced.statusCode, fenced.json().code]).toEqual([401, 'auth.credentials_revoked']);
    // As if the crash had come after identity pseudonymized the account: the account's email is
    // not Ada's any more, but an operator confirms with the one the erasure started with.
    await socle.db.withConnection(
      (connection) =>
        connection.query(
          `update identity.users set email = 'erased-' || id || '@erased.invalid' where id = $1`,
          [ada.userId],
        ),
      'owner',
    );
    await expect(
      privacy.eraseConfirmed(ada.userId, `erased-${ada.userId}@erased.invalid`),
    ).rejects.toMatchObject({
      code: 'privacy.confirmation_mismatch',
    });
    // Resumed: modules already erased are not erased again; the rest finish.
    const resumed = await privacy.eraseConfirmed(ada.userId, ' Ada@Cabinet.example ');
    expect(resumed.erasedNow).toEqual(['flaky_app']);
    expect(flakyCalls).toEqual(['ada@cabinet.example', 'ada@cabinet.example']);

    const ownerRead = async <T>(query: string, parameters: unknown[] = []) =>
      socle.db.withConnection(
        async (connection) => (await connection.query<T>(query, parameters)).rows,
        'owner',
      );
    expect(await ownerRead('select id from tenancy.organizations where id = $1', [alone])).toEqual([]);
    expect(
      await ownerRead('select user_id, role from tenancy.memberships where tenant_id = $1 order by role', [
        bobs,
      ]),
    ).toEqual([{ user_id: bob.userId, role: 'owner' }]);
    expect(
      await ownerRead('select user_id, role from tenancy.memberships where tenant_id = $1', [adas]),
    ).toEqual([{ user_id: cy.userId, role: 'owner' }]);
    const [account] = await ownerRead<{ email: string; password_hash: string | null }>(
      'select email, password_hash from identity.users where id = $1',
      [ada.userId],
    );
    expect(account).toEqual({ email: `erased-${ada.userId}@erased.invalid`, password_hash: null });
    expect(await ownerRead("select id from mail.outbox where recipient = 'ada@cabinet.example'")).toEqual([]);
    expect(await ownerRead('select id from audit.events where actor_user_id = $1', [ada.userId])).toEqual([]);
    expect(
      (
        await socle.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: { refreshToken: ada.refreshToken },
        })
      ).statusCode,
    ).toBe(401);
    const signIn = await socle.app.inject({
      method: 'POST',
      url: '/auth/sign-in',
      payload: { email: 'ada@cabinet.example', password: PASSWORD },
    });
    expect(signIn.statusCode).toBe(401);

    // Erasing again is harmless.
    const again = await privacy.erase(await privacy.findSubject(ada.userId));
    expect(again.erasedNow).toContain('identity');
  });

  it('erases your own account over HTTP only after re-authentication (password, then a second factor)', async () => {
    const eve = await signUp('eve@cabinet.example');
    const erase = (payload: object) =>
      socle.app.inject({ method: 'POST', url: '/me/erase', payload, headers: as(eve.token) });

    expect(
      (await socle.app.inject({ method: 'POST', url: '/me/erase', payload: { password: PASSWORD } }))
        .statusCode,
    ).toBe(401);
    const noPassword = await erase({});
    expect(noPassword.statusCode).toBe(400);
    expect(noPassword.json().errors[0].field).toBe('body/password');
    const wrong = await erase({ password: 'not the password at all' });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json()).toMatchObject({ code: 'auth.wrong_password', errors: [{ field: 'body/password' }] });

    // With 2FA on, the password alone is not enough.
    const { secret } = (
      await socle.app.inject({
        method: 'POST',
        url: '/auth/mfa/totp/enroll',
        payload: {},
        headers: as(eve.token),
      })
    ).json();
    const confirmed = await socle.app.inject({
      method: 'POST',
      url: '/auth/mfa/totp/confirm',
      payload: { code: await generate({ secret }) },
      headers: as(eve.token),
    });
    expect(confirmed.statusCode).toBe(200);
    const [recoveryCode] = confirmed.json().recoveryCodes as string[];
    const missingCode = await erase({ password: PASSWORD });
    expect(missingCode.statusCode).toBe(400);
    expect(missingCode.json()).toMatchObject({
      code: 'auth.mfa_code_required',
      errors: [{ field: 'body/code' }],
    });
    expect((await erase({ password: PASSWORD, code: 'ABCD-EFGH-JKLM' })).json().code).toBe(
      'auth.invalid_mfa_code',
    );
    // Nothing was erased by the refused attempts.
    expect((await socle.app.inject({ method: 'GET', url: '/me', headers: as(eve.token) })).statusCode).toBe(
      200,
    );

    const erased = await erase({ password: PASSWORD, code: recoveryCode });
    expect(erased.statusCode, erased.body).toBe(200);
    expect(erased.json().erasedModules).toEqual(
      expect.arrayContaining(['identity', 'tenancy', 'mail', 'audit']),
    );
    const signIn = await socle.app.inject({
      method: 'POST',
      url: '/auth/sign-in',
      payload: { email: 'eve@cabinet.example', password: PASSWORD },
    });
    expect(signIn.statusCode).toBe(401);
    expect(signIn.json().code).toBe('auth.invalid_credentials');
  });

  it('limits password guesses through re-authentication per account', async () => {
    const fay = await signUp('fay@cabinet.example');
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 11; attempt++) {
      const response = await socle.app.inject({
        method: 'POST',
        url: '/me/erase',
        payload: { password: `wrong guess number ${attempt}` },
        headers: as(fay.token),
      });
      statuses.push(response.statusCode);
      if (response.statusCode === 429) expect(response.headers['retry-after']).toMatch(/^\d+$/);
    }
    expect(statuses).toEqual([...Array(10).fill(400), 429]);
  });

  it('names an unknown person', async () => {
    const privacy = createPrivacyService(socle.context);
    await expect(privacy.findSubject('nobody@example.com')).rejects.toMatchObject({
      code: 'privacy.subject_not_found',
    });
  });
});
