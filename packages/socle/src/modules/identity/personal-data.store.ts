import { type Database, type PrivacySubject, withOwnerTransaction } from '../../kernel/index.js';

/**
 * SQL of what identity holds about one person, for export and erasure (the privacy hooks), as the
 * owner role: an erasure may run while the account is half gone, beneath row-level security.
 */
export function createPersonalDataStore(db: Pick<Database, 'withConnection'>) {
  return {
    /** The account row and its sessions, as the export shows them. */
    exportAccount: (subject: PrivacySubject) =>
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

    /** Revokes the account's credentials (access tokens), drops its password and ends its sessions. */
    async revokeCredentials(subject: PrivacySubject): Promise<void> {
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
    },

    /**
     * Deletes sessions, tokens and second-factor data and pseudonymizes the account row, which
     * stays because other modules refer to it.
     */
    async eraseAccount(subject: PrivacySubject): Promise<void> {
      await withOwnerTransaction(db, async (connection) => {
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
      });
    },
  };
}

export type PersonalDataStore = ReturnType<typeof createPersonalDataStore>;
