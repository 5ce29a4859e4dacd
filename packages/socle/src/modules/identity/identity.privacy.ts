import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from '../../kernel/index.js';
import { type PrivacyHooks, withOwnerTransaction } from '../../kernel/index.js';
import { CREDENTIALS_CHECK_TTL_MS } from './authentication.js';

/**
 * The account, its sessions and second factor. Erasure first revokes the account's credentials
 * (access tokens included), then deletes sessions, tokens and second-factor data and pseudonymizes
 * the account row, which stays because other modules refer to it (an
 * organization's creator, an invitation's sender). It runs last of all modules' erasures.
 */
export function createIdentityPrivacy(db: Pick<Database, 'withConnection'>): PrivacyHooks {
  return {
    exportSubject: (subject) =>
      withOwnerTransaction(db, async (connection) => {
        const { rows: users } = await connection.query(
          `select id, email, name, email_verified_at as "emailVerifiedAt", created_at as "createdAt",
                  totp_confirmed_at is not null as "twoFactorEnabled"
             from identity.users where id = $1`,
          [subject.userId],
        );
        const { rows: sessions } = await connection.query(
          `select id, created_at as "createdAt", last_refreshed_at as "lastRefreshedAt", expires_at as "expiresAt",
                  revoked_at as "revokedAt", user_agent as "userAgent", ip
             from identity.sessions where user_id = $1 order by created_at`,
          [subject.userId],
        );
        return { account: users[0] ?? null, sessions };
      }),
    // The access tokens already handed out are refused from now on; the sessions end, so no
    // refresh token works either, and the password goes, so no new session opens. Nodes trust a user's credentials for CREDENTIALS_CHECK_TTL_MS
    // without reading the column again: waiting that long means no node accepts them afterwards.
    revokeAccess: async (subject) => {
      await withOwnerTransaction(db, async (connection) => {
        await connection.query(
          `update identity.users
              set credentials_revoked_at = coalesce(credentials_revoked_at, now()), password_hash = null
            where id = $1`,
          [subject.userId],
        );
        await connection.query(
          `update identity.sessions set revoked_at = now(), revoked_reason = 'erased'
            where user_id = $1 and revoked_at is null`,
          [subject.userId],
        );
      });
      await sleep(CREDENTIALS_CHECK_TTL_MS);
    },
    eraseSubject: (subject) =>
      withOwnerTransaction(db, async (connection) => {
        for (const table of ['sessions', 'mfa_challenges', 'recovery_codes', 'email_tokens']) {
          await connection.query(`delete from identity.${table} where user_id = $1`, [subject.userId]);
        }
        await connection.query(
          `update identity.users
              set email = 'erased-' || id || '@erased.invalid', name = null, password_hash = null,
                  email_verified_at = null, totp_secret = null, totp_confirmed_at = null, totp_last_step = null,
                  updated_at = now()
            where id = $1`,
          [subject.userId],
        );
      }),
  };
}
