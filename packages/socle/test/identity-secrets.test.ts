import { randomBytes } from 'node:crypto';
import { generate } from 'otplib';
import { expect, it } from 'vitest';
import { createManualClock } from '../src/index.js';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule } from '../src/modules/mail/index.js';
import type { TestSocle } from '../src/testing/index.js';
import { post, TEST_PASSWORD } from './support/api-client.js';
import { describeEachDatabase, nodesOnSharedDatabase } from './support/each-database.js';

const keyOne = randomBytes(32).toString('base64');
const keyTwo = randomBytes(32).toString('base64url');

describeEachDatabase(
  'Identity: secrets sealed at rest, SECRET_KEY rotation, 2FA ends other sessions',
  (target) => {
    const clock = createManualClock(new Date('2026-06-01T08:00:15Z'));
    let counter = 0;

    /** A node on the shared database with the given keys; the database outlives it. */
    const startNode = nodesOnSharedDatabase(target, () => ({
      clock,
      modules: [createIdentityModule({ rateLimits: false }), createMailModule()],
    }));

    const codeNow = (secret: string) => generate({ secret, epoch: Math.floor(clock.now().getTime() / 1000) });

    async function enableTotp(socle: TestSocle, token: string): Promise<string> {
      const { secret } = (await post(socle, '/auth/mfa/totp/enroll', {}, token)).json();
      const confirmed = await post(socle, '/auth/mfa/totp/confirm', { code: await codeNow(secret) }, token);
      expect(confirmed.statusCode, confirmed.body).toBe(200);
      clock.advance(30_000);
      return secret;
    }

    const ownerQuery = <Row>(socle: TestSocle, text: string, parameters: unknown[] = []) =>
      socle.db.withConnection((connection) => connection.query<Row>(text, parameters), 'owner');

    async function signInWithTotp(socle: TestSocle, email: string, secret: string) {
      const first = await post(socle, '/auth/sign-in', { email, password: TEST_PASSWORD });
      expect(first.json().code).toBe('auth.mfa_required');
      const second = await post(socle, '/auth/sign-in/mfa', {
        mfaToken: first.json().mfaToken,
        code: await codeNow(secret),
      });
      clock.advance(30_000);
      return second;
    }

    it('stores TOTP secrets and private signing keys sealed, never in plain text', async () => {
      const socle = await startNode({ secretKey: keyOne });
      try {
        const user = await socle.newUser({ email: `sealed.${++counter}@example.com` });
        const secret = await enableTotp(socle, user.token);
        const [row] = (
          await ownerQuery<{ totp_secret: string }>(
            socle,
            'select totp_secret from identity.users where id = $1',
            [user.userId],
          )
        ).rows;
        expect(row?.totp_secret).toMatch(/^sb1\./);
        expect(row?.totp_secret).not.toContain(secret);
        const keys = await ownerQuery<{ private_jwk: string }>(
          socle,
          'select private_jwk from identity.signing_keys',
        );
        expect(keys.rows.length).toBeGreaterThan(0);
        for (const key of keys.rows) {
          expect(key.private_jwk).toMatch(/^sb1\./);
          expect(key.private_jwk).not.toContain('"d"');
        }
      } finally {
        await socle.close();
      }
    });

    it('after a rotation, opens values of the previous key, reseals them, and works without the old key', async () => {
      const first = await startNode({ secretKey: keyOne });
      const user = await first.newUser({ email: `rotation.${++counter}@example.com` });
      const secret = await enableTotp(first, user.token);
      // A row written before sealing existed: plain text (what migration 0004 leaves behind).
      const legacy = await first.newUser({ email: `legacy.${++counter}@example.com` });
      const legacySecret = await enableTotp(first, legacy.token);
      await ownerQuery(first, 'update identity.users set totp_secret = $1 where id = $2', [
        legacySecret,
        legacy.userId,
      ]);
      await first.close();

      const second = await startNode({ secretKey: keyTwo, previousSecretKeys: [keyOne] });
      try {
        // The access token signed with the key sealed under keyOne still verifies.
        const sessions = await second.app.inject({
          method: 'GET',
          url: '/auth/sessions',
          headers: { authorization: `Bearer ${user.token}` },
        });
        expect(sessions.statusCode).toBe(200);
        const stored = await ownerQuery<{ totp_secret: string }>(
          second,
          'select totp_secret from identity.users where id = any($1::uuid[])',
          [[user.userId, legacy.userId]],
        );
        // Both accounts' secrets, each resealed under the new key.
        expect(stored.rows.map((row) => row.totp_secret.split('.').slice(0, 2).join('.'))).toEqual([
          `sb1.${second.secrets.keyId}`,
          `sb1.${second.secrets.keyId}`,
        ]);
      } finally {
        await second.close();
      }

      // keyOne is gone from the configuration: everything was resealed, so nothing needs it.
      const third = await startNode({ secretKey: keyTwo });
      try {
        expect((await signInWithTotp(third, user.email, secret)).statusCode).toBe(200);
        expect((await signInWithTotp(third, legacy.email, legacySecret)).statusCode).toBe(200);
      } finally {
        await third.close();
      }
    });

    it('turning 2FA on signs out every other session of the user, and keeps the calling one', async () => {
      const socle = await startNode({ secretKey: keyTwo });
      try {
        const user = await socle.newUser({ email: `sessions.${++counter}@example.com` });
        const other = (
          await post(socle, '/auth/sign-in', { email: user.email, password: TEST_PASSWORD })
        ).json();

        const { secret } = (await post(socle, '/auth/mfa/totp/enroll', {}, user.token)).json();
        const confirmed = await post(
          socle,
          '/auth/mfa/totp/confirm',
          { code: await codeNow(secret) },
          user.token,
        );
        expect(confirmed.statusCode).toBe(200);
        expect(confirmed.json().otherSessionsRevoked).toBe(1);
        clock.advance(30_000);

        const refusedRefresh = await post(socle, '/auth/refresh', { refreshToken: other.refreshToken });
        expect(refusedRefresh.statusCode).toBe(401);
        const keptRefresh = await post(socle, '/auth/refresh', { refreshToken: user.refreshToken });
        expect(keptRefresh.statusCode).toBe(200);
        const listed = await socle.app.inject({
          method: 'GET',
          url: '/auth/sessions',
          headers: { authorization: `Bearer ${keptRefresh.json().accessToken}` },
        });
        expect(listed.json()).toHaveLength(1);
      } finally {
        await socle.close();
      }
    });
  },
);
