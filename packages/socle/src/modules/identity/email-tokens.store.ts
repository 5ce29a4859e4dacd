import type { Kysely, Transaction } from 'kysely';
import type { EmailTokenPurpose, IdentityTables } from './identity.tables.js';

type Executor = Kysely<IdentityTables>;

/** An unused, unexpired email token with what the service needs to know about its user. */
export interface UsableEmailToken {
  readonly userId: string;
  readonly email: string;
  readonly name: string | null;
}

/** SQL of email verification and password reset tokens (stored by hash only). */
export function createEmailTokensStore() {
  return {
    /**
     * Stores a new token and deletes the user's earlier tokens of the same purpose, so only the
     * latest mail works. Run it in a transaction that holds the user's row lock, so two requests
     * at once cannot leave two live tokens.
     */
    async replace(
      token: { hash: string; userId: string; purpose: EmailTokenPurpose; expiresAt: Date; now: Date },
      trx: Transaction<IdentityTables>,
    ): Promise<void> {
      await trx
        .deleteFrom('identity.email_tokens')
        .where('user_id', '=', token.userId)
        .where('purpose', '=', token.purpose)
        .execute();
      await trx
        .insertInto('identity.email_tokens')
        .values({
          hash: token.hash,
          user_id: token.userId,
          purpose: token.purpose,
          expires_at: token.expiresAt,
          used_at: null,
          created_at: token.now,
        })
        .execute();
    },

    /**
     * Reads a token that is still usable at `now`, without consuming it: for checks that must
     * not spend the token when they fail (a weak new password). {@link consume} decides.
     */
    async findUsable(
      hash: string,
      purpose: EmailTokenPurpose,
      now: Date,
      executor: Executor,
    ): Promise<UsableEmailToken | undefined> {
      const row = await executor
        .selectFrom('identity.email_tokens as token')
        .innerJoin('identity.users as user', 'user.id', 'token.user_id')
        .select(['token.user_id', 'user.email', 'user.name'])
        .where('token.hash', '=', hash)
        .where('token.purpose', '=', purpose)
        .where('token.used_at', 'is', null)
        .where('token.expires_at', '>', now)
        .executeTakeFirst();
      return row === undefined ? undefined : { userId: row.user_id, email: row.email, name: row.name };
    },

    /**
     * Marks a usable token used and returns its user; `undefined` when it is unknown, of another
     * purpose, used or expired. The condition is in the UPDATE: of two concurrent uses, the second
     * waits for the first's row lock, re-reads `used_at` once it commits, and updates nothing.
     */
    async consume(
      hash: string,
      purpose: EmailTokenPurpose,
      now: Date,
      trx: Transaction<IdentityTables>,
    ): Promise<string | undefined> {
      const row = await trx
        .updateTable('identity.email_tokens')
        .set({ used_at: now })
        .where('hash', '=', hash)
        .where('purpose', '=', purpose)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .returning('user_id')
        .executeTakeFirst();
      return row?.user_id;
    },

    /** Deletes a user's unused tokens of a purpose (the other reset mails, once one was used). */
    async discardUnused(
      userId: string,
      purpose: EmailTokenPurpose,
      trx: Transaction<IdentityTables>,
    ): Promise<void> {
      await trx
        .deleteFrom('identity.email_tokens')
        .where('user_id', '=', userId)
        .where('purpose', '=', purpose)
        .where('used_at', 'is', null)
        .execute();
    },
  };
}

export type EmailTokensStore = ReturnType<typeof createEmailTokensStore>;
