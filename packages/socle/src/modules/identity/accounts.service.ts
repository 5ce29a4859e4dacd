import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Clock, Database } from '../../kernel/index.js';
import { identityErrors } from './identity.errors.js';
import type { IdentityTables, UserRow } from './identity.tables.js';
import type { MfaService } from './mfa.service.js';
import {
  checkPasswordPolicy,
  hashPassword,
  needsRehash,
  normalizeEmail,
  verifyAgainstDummy,
  verifyPassword,
} from './passwords.js';
import { sessionErrors } from './sessions.errors.js';
import type { ClientInfo, IssuedTokens, SessionService } from './sessions.service.js';
import type { UsersStore } from './users.store.js';

/** A user as the API shows it: never the password hash. */
export interface PublicUser {
  readonly id: string;
  readonly email: string;
  readonly name: string | null;
  readonly emailVerified: boolean;
  readonly createdAt: string;
}

/** An account as operators list it. */
export interface AccountSummary extends PublicUser {
  /** Two-factor authentication (TOTP) is on. */
  readonly twoFactor: boolean;
  /** Sessions neither revoked nor expired. */
  readonly activeSessions: number;
}

export function toPublicUser(user: UserRow): PublicUser {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    emailVerified: user.email_verified_at !== null,
    createdAt: user.created_at.toISOString(),
  };
}

export interface AccountServiceOptions {
  readonly db: Database<IdentityTables>;
  /** "Now" of the operator list's active sessions. */
  readonly clock: Clock;
  readonly users: UsersStore;
  readonly sessions: SessionService;
  /** Opens the second step of a sign-in when the account has two-factor authentication on. */
  readonly mfa: Pick<MfaService, 'startSignInChallenge' | 'isEnabled' | 'confirmSecondFactor'>;
  /** Queues the verification mail of a new account in the sign-up transaction (the email token service). */
  readonly verification: {
    queueVerificationMail(
      user: Pick<UserRow, 'id' | 'email'>,
      trx: Transaction<IdentityTables>,
    ): Promise<void>;
  };
}

/** What a signed-in user sends to prove it is them again (see `confirmIdentity`). */
export interface IdentityCredentials {
  readonly password: string;
  /** A TOTP code or a recovery code; required when two-factor authentication is on. */
  readonly code?: string | undefined;
}

/** Sign-up and sign-in with email and password. */
export function createAccountService(options: AccountServiceOptions) {
  const { db, clock, users, sessions, mfa, verification } = options;
  return {
    /** Creates an account, signs it in and queues its verification mail, in one transaction. */
    async signUp(
      input: { email: string; password: string; name?: string | undefined },
      client: ClientInfo,
    ): Promise<{ user: PublicUser; tokens: IssuedTokens }> {
      const email = normalizeEmail(input.email);
      const policy = checkPasswordPolicy(input.password, {
        email,
        ...(input.name ? { name: input.name } : {}),
      });
      if (!policy.ok) throw identityErrors.weakPassword(policy.reasons);
      const passwordHash = await hashPassword(input.password);
      const id = randomUUID();
      return db.transaction(async (trx) => {
        if (!(await users.insert({ id, email, passwordHash, name: input.name?.trim() || null }, trx))) {
          throw sessionErrors.emailTaken();
        }
        const user = (await users.findById(id, trx)) as UserRow;
        await verification.queueVerificationMail(user, trx);
        return { user: toPublicUser(user), tokens: await sessions.start(id, client, trx) };
      });
    },

    /**
     * Test and benchmark support (`createTestAccounts` of `socle/testing`, never a route): opens
     * accounts that all share one password hash computed once by the caller, each signed in, in one
     * transaction. What sign-up spends per account and a test of many players does not need is
     * skipped: the password policy, an Argon2id hash (≈ 20 ms and 19 MiB of working memory each,
     * which the allocator keeps and a memory-per-player figure would count) and the verification
     * mail. The accounts sign in through the real route with the shared password.
     */
    async openTestAccounts(
      input: { readonly emails: readonly string[]; readonly passwordHash: string },
      client: ClientInfo,
    ): Promise<{ user: PublicUser; tokens: IssuedTokens }[]> {
      return db.transaction(async (trx) => {
        const opened: { user: PublicUser; tokens: IssuedTokens }[] = [];
        for (const raw of input.emails) {
          const email = normalizeEmail(raw);
          const id = randomUUID();
          if (!(await users.insert({ id, email, passwordHash: input.passwordHash, name: null }, trx)))
            throw sessionErrors.emailTaken();
          const user = (await users.findById(id, trx)) as UserRow;
          opened.push({ user: toPublicUser(user), tokens: await sessions.start(id, client, trx) });
        }
        return opened;
      });
    },

    /**
     * Signs in. An unknown email and a wrong password fail the same way and take the same time
     * (a dummy hash is verified), so the answer does not tell whether an account exists. With
     * two-factor authentication on, a correct password opens no session: it fails with
     * `auth.mfa_required`, whose `mfaToken` the client exchanges with a code (`completeSignIn`).
     */
    async signIn(input: { email: string; password: string }, client: ClientInfo): Promise<IssuedTokens> {
      let email: string;
      try {
        email = normalizeEmail(input.email);
      } catch {
        await verifyAgainstDummy(input.password);
        throw identityErrors.invalidCredentials();
      }
      const user = await users.findByEmail(email);
      if (user === undefined || user.password_hash === null) {
        await verifyAgainstDummy(input.password);
        throw identityErrors.invalidCredentials();
      }
      if (!(await verifyPassword(user.password_hash, input.password)))
        throw identityErrors.invalidCredentials();
      if (needsRehash(user.password_hash))
        await users.updatePasswordHash(user.id, await hashPassword(input.password));
      if (user.totp_confirmed_at !== null) {
        const challenge = await mfa.startSignInChallenge(user.id, client);
        throw identityErrors.mfaRequired(challenge.token, challenge.expiresInSeconds);
      }
      return db.transaction((trx) => sessions.start(user.id, client, trx));
    },

    /**
     * Re-authentication of a signed-in user before a sensitive action: the password, and a second
     * factor when 2FA is on. A stolen access token alone cannot erase an account.
     */
    async confirmIdentity(userId: string, credentials: IdentityCredentials): Promise<void> {
      const user = await users.findById(userId);
      if (user === undefined) throw sessionErrors.tokenInvalid();
      if (user.password_hash === null || !(await verifyPassword(user.password_hash, credentials.password)))
        throw identityErrors.wrongPassword();
      if (!(await mfa.isEnabled(userId))) return;
      if (credentials.code === undefined) throw identityErrors.mfaCodeRequired();
      await mfa.confirmSecondFactor(userId, credentials.code);
    },

    async me(userId: string): Promise<PublicUser> {
      const user = await users.findById(userId);
      if (user === undefined) throw sessionErrors.tokenInvalid();
      return toPublicUser(user);
    },

    /**
     * Every account, for operators: a page in email order after `after` (the last email of the
     * previous page), `next` being the cursor of the following page or null at the end.
     */
    async listAll(query: {
      search?: string | undefined;
      after?: string | undefined;
      limit: number;
    }): Promise<{ users: AccountSummary[]; next: string | null }> {
      const rows = await users.listAll({ ...query, limit: query.limit + 1, now: clock.now() });
      const page = rows.slice(0, query.limit);
      return {
        users: page.map((row) => ({
          id: row.id,
          email: row.email,
          name: row.name,
          emailVerified: row.email_verified_at !== null,
          twoFactor: row.totp_confirmed_at !== null,
          activeSessions: Number(row.active_sessions ?? 0),
          createdAt: row.created_at.toISOString(),
        })),
        next: rows.length > query.limit ? (page.at(-1)?.email ?? null) : null,
      };
    },
  };
}

export type AccountService = ReturnType<typeof createAccountService>;
