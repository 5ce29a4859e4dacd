import type { Transaction } from 'kysely';
import type { Clock, Database } from '../../kernel/index.js';
import type { MailOutbox } from '../mail/index.js';
import { type PublicUser, toPublicUser } from './accounts.service.js';
import type { EmailTokensStore } from './email-tokens.store.js';
import { identityErrors } from './identity.errors.js';
import type { EmailTokenPurpose, IdentityTables, UserRow } from './identity.tables.js';
import type { MfaService } from './mfa.service.js';
import { checkPasswordPolicy, hashPassword, normalizeEmail } from './passwords.js';
import { createSecretToken, parseSecretToken } from './secret-tokens.js';
import { sessionErrors } from './sessions.errors.js';
import type { ClientInfo, IssuedTokens, SessionService } from './sessions.service.js';
import type { UsersStore } from './users.store.js';

const VERIFY_PREFIX = 'ev';
const RESET_PREFIX = 'pr';
const HOUR_MS = 60 * 60 * 1000;

export interface EmailTokenServiceOptions {
  readonly db: Database<IdentityTables>;
  readonly store: EmailTokensStore;
  readonly users: UsersStore;
  readonly sessions: Pick<SessionService, 'start' | 'revokeAll'>;
  readonly mfa: Pick<MfaService, 'startSignInChallenge' | 'cancelSignInChallenges'>;
  /** Where the mails go: the mail module's outbox, in the transaction that stores the token. */
  readonly mail: MailOutbox;
  readonly clock: Clock;
  /** How long a verification mail works. */
  readonly verificationTtlMs: number;
  /** How long a password reset mail works. */
  readonly passwordResetTtlMs: number;
  /** Builds the link of the verification mail from its token; without it the mail shows the token. */
  readonly verificationLink?: ((token: string) => string) | undefined;
  /** Builds the link of the password reset mail from its token; without it the mail shows the token. */
  readonly passwordResetLink?: ((token: string) => string) | undefined;
}

/** "24 hours", "1 hour", "90 minutes": how long a mail's token works, as its text says it. */
function describeDuration(milliseconds: number): string {
  if (milliseconds % HOUR_MS === 0) {
    const hours = milliseconds / HOUR_MS;
    return hours === 1 ? '1 hour' : `${hours} hours`;
  }
  const minutes = Math.max(1, Math.round(milliseconds / 60_000));
  return minutes === 1 ? '1 minute' : `${minutes} minutes`;
}

/**
 * Email verification and password reset: single-use tokens that prove control of a mailbox.
 *
 * A token is made by `createSecretToken` (`ev_…` to verify, `pr_…` to reset), stored only as its
 * SHA-256, and mailed through the mail module's outbox in the same transaction that stores it: a
 * token never exists without its mail, nor a mail without its token. A new mail of one purpose
 * replaces the earlier tokens of that purpose. A token is consumed by a conditional UPDATE, so of
 * two concurrent uses exactly one succeeds. Expiry is judged with the injected clock.
 */
export function createEmailTokenService(options: EmailTokenServiceOptions) {
  const { db, store, users, sessions, mfa, mail, clock } = options;

  /** Stores a new token of `purpose` for `user` and queues its mail, all in `trx`. */
  async function issue(
    user: Pick<UserRow, 'id' | 'email'>,
    purpose: EmailTokenPurpose,
    trx: Transaction<IdentityTables>,
  ): Promise<void> {
    const verifying = purpose === 'verify_email';
    const ttlMs = verifying ? options.verificationTtlMs : options.passwordResetTtlMs;
    const { token, hash } = createSecretToken(verifying ? VERIFY_PREFIX : RESET_PREFIX);
    const now = clock.now();
    const expiresAt = new Date(now.getTime() + ttlMs);
    await store.replace({ hash, userId: user.id, purpose, expiresAt, now }, trx);
    const link = (verifying ? options.verificationLink : options.passwordResetLink)?.(token);
    const instructions = verifying
      ? link === undefined
        ? [`Your verification token: ${token}`, 'Enter it in the app to confirm your address.']
        : [`Open this link to confirm your address: ${link}`]
      : link === undefined
        ? [`Your password reset token: ${token}`, 'Enter it in the app with your new password.']
        : [`Open this link and choose your new password: ${link}`];
    const text = [
      verifying
        ? 'Please confirm that this email address is yours.'
        : 'Someone asked to reset the password of your account.',
      '',
      ...instructions,
      `It expires in ${describeDuration(ttlMs)} (${expiresAt.toISOString()}) and works once.`,
      ...(verifying ? [] : ['Resetting the password signs you out on every device.']),
      '',
      verifying
        ? 'If you did not create an account, ignore this email.'
        : 'If you did not ask for this, ignore this email: your password stays as it is.',
    ];
    await mail.enqueue(trx, {
      to: user.email,
      subject: verifying ? 'Confirm your email address' : 'Reset your password',
      text: text.join('\n'),
      // The token's hash identifies this mail: a replayed transaction adds no second one.
      idempotencyKey: `identity.${purpose}.${hash}`,
    });
  }

  return {
    /** Queues the verification mail of a user being created, in the sign-up transaction. */
    queueVerificationMail: (
      user: Pick<UserRow, 'id' | 'email'>,
      trx: Transaction<IdentityTables>,
    ): Promise<void> => issue(user, 'verify_email', trx),

    /**
     * Sends the signed-in user a new verification mail (the previous one stops working). Refused
     * with `auth.email_already_verified` once the address is verified.
     */
    async requestVerification(userId: string): Promise<void> {
      await db.transaction(async (trx) => {
        const user = await users.lock({ id: userId }, trx);
        if (user === undefined) throw sessionErrors.tokenInvalid();
        if (user.email_verified_at !== null) throw identityErrors.emailAlreadyVerified();
        await issue(user, 'verify_email', trx);
      });
    },

    /** Marks the address of the token's user verified, using the token up. */
    async confirmVerification(token: string): Promise<PublicUser> {
      const parsed = parseSecretToken(token, VERIFY_PREFIX);
      if (parsed === undefined) throw identityErrors.emailTokenInvalid();
      const user = await db.transaction(async (trx) => {
        const now = clock.now();
        const userId = await store.consume(parsed.hash, 'verify_email', now, trx);
        if (userId === undefined) return undefined;
        await users.markEmailVerified(userId, now, trx);
        return users.findById(userId, trx);
      });
      if (user === undefined) throw identityErrors.emailTokenInvalid();
      return toPublicUser(user);
    },

    /**
     * Mails a reset token to the account of `email`, if there is one. Resolves the same way
     * whether or not the account exists, so the caller's answer tells nothing.
     */
    async requestPasswordReset(email: string): Promise<void> {
      const normalized = normalizeEmail(email);
      await db.transaction(async (trx) => {
        const user = await users.lock({ email: normalized }, trx);
        if (user !== undefined) await issue(user, 'reset_password', trx);
      });
    },

    /**
     * Sets a new password with a reset token. The policy is checked before the token is spent,
     * so a refused password leaves the token usable. Success revokes every session of the user
     * and their open sign-in challenges, marks the address verified (the mail was read), and
     * opens a new session; with two-factor authentication on it opens a sign-in challenge instead
     * and fails with `auth.mfa_required`, exactly like a sign-in with the new password.
     */
    async confirmPasswordReset(token: string, password: string, client: ClientInfo): Promise<IssuedTokens> {
      const parsed = parseSecretToken(token, RESET_PREFIX);
      if (parsed === undefined) throw identityErrors.emailTokenInvalid();
      const pending = await store.findUsable(parsed.hash, 'reset_password', clock.now(), db.kysely);
      if (pending === undefined) throw identityErrors.emailTokenInvalid();
      const policy = checkPasswordPolicy(password, {
        email: pending.email,
        ...(pending.name ? { name: pending.name } : {}),
      });
      if (!policy.ok) throw identityErrors.weakPassword(policy.reasons);
      const passwordHash = await hashPassword(password);
      const outcome = await db.transaction(async (trx) => {
        const now = clock.now();
        const userId = await store.consume(parsed.hash, 'reset_password', now, trx);
        if (userId === undefined) return { kind: 'invalid' as const };
        await users.updatePasswordHash(userId, passwordHash, trx);
        await users.markEmailVerified(userId, now, trx);
        await store.discardUnused(userId, 'reset_password', trx);
        await sessions.revokeAll(userId, 'password reset', trx);
        await mfa.cancelSignInChallenges(userId, trx);
        const user = await users.findById(userId, trx);
        if (user?.totp_confirmed_at != null) return { kind: 'mfa_required' as const, userId };
        return { kind: 'signed_in' as const, tokens: await sessions.start(userId, client, trx) };
      });
      switch (outcome.kind) {
        case 'invalid':
          throw identityErrors.emailTokenInvalid();
        case 'mfa_required': {
          const challenge = await mfa.startSignInChallenge(outcome.userId, client);
          throw identityErrors.mfaRequired(challenge.token, challenge.expiresInSeconds);
        }
        case 'signed_in':
          return outcome.tokens;
      }
    },
  };
}

export type EmailTokenService = ReturnType<typeof createEmailTokenService>;
