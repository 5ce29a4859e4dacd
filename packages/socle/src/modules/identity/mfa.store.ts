import type { Kysely, Transaction } from 'kysely';
import type { Database, SecretBox } from '../../kernel/index.js';
import type { IdentityTables, MfaChallengeRow } from './identity.tables.js';

type Executor = Kysely<IdentityTables>;

/** The second-factor state of a user, as the MFA service reasons about it. */
export interface TotpState {
  readonly userId: string;
  readonly email: string;
  /** Set while an enrolment is pending and once it is confirmed. */
  readonly secret: string | null;
  readonly confirmedAt: Date | null;
  /** RFC 6238 time step of the last accepted code; codes of this step or earlier are refused. */
  readonly lastStep: number | null;
}

const totpContext = (userId: string) => `identity.totp:${userId}`;
const RESEAL_BATCH = 500;

/**
 * SQL of TOTP secrets, recovery codes and sign-in challenges. TOTP secrets are sealed with the
 * secret box before they are written and opened when read; callers only see plain secrets.
 */
export function createMfaStore(db: Database<IdentityTables>, secrets: SecretBox) {
  return {
    /**
     * Reads a user's TOTP state. With `lock`, the user row stays locked until the transaction
     * ends, so enrolment changes (confirm, disable, new recovery codes) of one user run one at a time.
     */
    async findTotpState(
      userId: string,
      executor: Executor,
      options: { lock?: boolean } = {},
    ): Promise<TotpState | undefined> {
      let query = executor
        .selectFrom('identity.users')
        .select(['id', 'email', 'totp_secret', 'totp_confirmed_at', 'totp_last_step'])
        .where('id', '=', userId);
      if (options.lock) query = query.forUpdate();
      const row = await query.executeTakeFirst();
      if (row === undefined) return undefined;
      return {
        userId: row.id,
        email: row.email,
        secret: row.totp_secret === null ? null : secrets.openStored(row.totp_secret, totpContext(row.id)),
        confirmedAt: row.totp_confirmed_at,
        lastStep: row.totp_last_step === null ? null : Number(row.totp_last_step),
      };
    },

    /**
     * Starts (or restarts) a pending enrolment with a new secret. Resolves false when 2FA is
     * already confirmed: the condition is in the UPDATE, so a concurrent confirm cannot be overwritten.
     */
    async startEnrollment(userId: string, secret: string, at: Date): Promise<boolean> {
      const result = await db.kysely
        .updateTable('identity.users')
        .set({
          totp_secret: secrets.seal(secret, totpContext(userId)),
          totp_confirmed_at: null,
          totp_last_step: null,
          updated_at: at,
        })
        .where('id', '=', userId)
        .where('totp_confirmed_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },

    /**
     * Seals TOTP secrets stored in plain text (before sealing existed) or under a previous
     * SECRET_KEY with the current key, a batch at a time. Resolves to the number resealed.
     */
    async resealTotpSecrets(): Promise<number> {
      let resealed = 0;
      for (;;) {
        const rows = await db.kysely
          .selectFrom('identity.users')
          .select(['id', 'totp_secret'])
          .where('totp_secret', 'is not', null)
          .where('totp_secret', 'not like', `${secrets.currentPrefix}%`)
          .limit(RESEAL_BATCH)
          .execute();
        for (const row of rows) {
          const stored = row.totp_secret as string;
          // The stored value in the condition: a concurrent enrolment or reseal wins untouched.
          const result = await db.kysely
            .updateTable('identity.users')
            .set({ totp_secret: secrets.reseal(stored, totpContext(row.id)) })
            .where('id', '=', row.id)
            .where('totp_secret', '=', stored)
            .executeTakeFirst();
          resealed += Number(result.numUpdatedRows);
        }
        if (rows.length < RESEAL_BATCH) return resealed;
      }
    },

    /** Turns a pending enrolment on, recording the step of the code that proved it. */
    async confirmEnrollment(
      userId: string,
      step: number,
      at: Date,
      trx: Transaction<IdentityTables>,
    ): Promise<boolean> {
      const result = await trx
        .updateTable('identity.users')
        .set({ totp_confirmed_at: at, totp_last_step: step, updated_at: at })
        .where('id', '=', userId)
        .where('totp_secret', 'is not', null)
        .where('totp_confirmed_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },

    /**
     * Records `step` as the last accepted TOTP step, only if it is later than the recorded one;
     * resolves false otherwise. This conditional UPDATE is the replay guard: two transactions
     * accepting the same code both reach it, the second waits for the first's row lock, then
     * re-evaluates the condition against the committed step and updates nothing.
     */
    async advanceTotpStep(userId: string, step: number, trx: Transaction<IdentityTables>): Promise<boolean> {
      const result = await trx
        .updateTable('identity.users')
        .set({ totp_last_step: step })
        .where('id', '=', userId)
        .where('totp_confirmed_at', 'is not', null)
        .where((where) =>
          where.or([where('totp_last_step', 'is', null), where('totp_last_step', '<', String(step))]),
        )
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },

    /** Turns 2FA off: forgets the secret, the recovery codes and the open sign-in challenges. */
    async clearTotp(userId: string, at: Date, trx: Transaction<IdentityTables>): Promise<void> {
      await trx
        .updateTable('identity.users')
        .set({ totp_secret: null, totp_confirmed_at: null, totp_last_step: null, updated_at: at })
        .where('id', '=', userId)
        .execute();
      await trx.deleteFrom('identity.recovery_codes').where('user_id', '=', userId).execute();
      await trx.deleteFrom('identity.mfa_challenges').where('user_id', '=', userId).execute();
    },

    /** Replaces every recovery code of a user (used or not) with new ones, given by hash. */
    async replaceRecoveryCodes(
      userId: string,
      codeHashes: readonly string[],
      trx: Transaction<IdentityTables>,
    ): Promise<void> {
      await trx.deleteFrom('identity.recovery_codes').where('user_id', '=', userId).execute();
      await trx
        .insertInto('identity.recovery_codes')
        .values(codeHashes.map((codeHash) => ({ user_id: userId, code_hash: codeHash, used_at: null })))
        .execute();
    },

    /**
     * Marks an unused recovery code used; resolves false when it is unknown or already used. Like
     * {@link advanceTotpStep}, the condition in the UPDATE makes concurrent uses of one code
     * succeed once.
     */
    async useRecoveryCode(
      userId: string,
      codeHash: string,
      at: Date,
      trx: Transaction<IdentityTables>,
    ): Promise<boolean> {
      const result = await trx
        .updateTable('identity.recovery_codes')
        .set({ used_at: at })
        .where('user_id', '=', userId)
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },

    /** Stores a new sign-in challenge, and drops the user's challenges that can no longer be used. */
    async insertChallenge(challenge: {
      hash: string;
      userId: string;
      expiresAt: Date;
      now: Date;
      client: { userAgent: string | null; ip: string | null };
    }): Promise<void> {
      await db.transaction(async (trx) => {
        await trx
          .deleteFrom('identity.mfa_challenges')
          .where('user_id', '=', challenge.userId)
          .where((where) =>
            where.or([where('used_at', 'is not', null), where('expires_at', '<=', challenge.now)]),
          )
          .execute();
        await trx
          .insertInto('identity.mfa_challenges')
          .values({
            hash: challenge.hash,
            user_id: challenge.userId,
            expires_at: challenge.expiresAt,
            used_at: null,
            client: JSON.stringify(challenge.client),
          })
          .execute();
      });
    },

    /** Deletes every sign-in challenge of a user: the password step they passed no longer counts. */
    async deleteChallenges(userId: string, trx: Transaction<IdentityTables>): Promise<void> {
      await trx.deleteFrom('identity.mfa_challenges').where('user_id', '=', userId).execute();
    },

    /** Reads a challenge and locks it until the transaction ends: its attempts are counted one at a time. */
    lockChallenge(hash: string, trx: Transaction<IdentityTables>): Promise<MfaChallengeRow | undefined> {
      return trx
        .selectFrom('identity.mfa_challenges')
        .selectAll()
        .where('hash', '=', hash)
        .forUpdate()
        .executeTakeFirst();
    },

    async markChallengeUsed(hash: string, at: Date, trx: Transaction<IdentityTables>): Promise<void> {
      await trx
        .updateTable('identity.mfa_challenges')
        .set({ used_at: at })
        .where('hash', '=', hash)
        .execute();
    },

    async recordFailedAttempt(hash: string, trx: Transaction<IdentityTables>): Promise<void> {
      await trx
        .updateTable('identity.mfa_challenges')
        .set((update) => ({ failed_attempts: update('failed_attempts', '+', 1) }))
        .where('hash', '=', hash)
        .execute();
    },
  };
}

export type MfaStore = ReturnType<typeof createMfaStore>;
