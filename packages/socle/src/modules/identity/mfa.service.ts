import type { Transaction } from 'kysely';
import type { Clock, Database } from '../../kernel/index.js';
import { identityErrors } from './identity.errors.js';
import type { IdentityTables } from './identity.tables.js';
import type { MfaStore, TotpState } from './mfa.store.js';
import { createSecretToken, parseSecretToken } from './secret-tokens.js';
import { sessionErrors } from './sessions.errors.js';
import type { ClientInfo, IssuedTokens, SessionService } from './sessions.service.js';
import {
  createTotpEnrollment,
  generateRecoveryCodes,
  hashRecoveryCode,
  type TotpEnrollment,
  verifyTotp,
} from './totp.js';

const CHALLENGE_PREFIX = 'mfa';
const RECOVERY_CODE_COUNT = 10;
/** Wrong codes a sign-in challenge takes before it is burnt (the password must be typed again). */
export const MFA_CHALLENGE_MAX_FAILED_ATTEMPTS = 5;
/** Six digits once spaces are removed; anything else is taken as a recovery code. */
const TOTP_CODE = /^\d{6}$/;
/** Where the code is in the bodies of the signed-in user's routes, for 400 field errors. */
const CODE_FIELD = 'body/code';

type SecondFactorCheck = 'ok' | 'invalid' | 'reused';

export interface MfaServiceOptions {
  readonly db: Database<IdentityTables>;
  readonly store: MfaStore;
  readonly sessions: SessionService;
  readonly clock: Clock;
  /** Product name authenticator apps show beside the account (the otpauth `issuer`). */
  readonly issuer: string;
  /** How long the second step of a sign-in may wait after the password step. */
  readonly challengeTtlMs: number;
}

/** A started sign-in that needs its second factor: the token goes to the client once. */
export interface MfaChallenge {
  readonly token: string;
  readonly expiresInSeconds: number;
}

/**
 * Two-factor authentication with TOTP (authenticator apps) and single-use recovery codes.
 *
 * Enrolment is two steps: `enroll` stores a pending secret and returns it with its QR code;
 * `confirm` turns 2FA on only once the user proves the app shows the right codes, so a mis-scanned
 * QR code cannot lock anyone out. From then on a correct password only opens a short-lived
 * challenge, and `completeSignIn` exchanges it with a code for a session.
 *
 * Every accepted TOTP code moves the user's last step forward with a conditional UPDATE in the
 * transaction that accepts it, so a code observed over a shoulder or replayed by two concurrent
 * requests works once.
 */
export function createMfaService(options: MfaServiceOptions) {
  const { db, store, sessions, clock } = options;

  /**
   * Checks a TOTP or recovery code against a user with TOTP on, consuming it when it is right:
   * the TOTP step or the recovery code is recorded in `trx`.
   */
  async function checkSecondFactor(
    state: TotpState & { secret: string },
    code: string,
    now: Date,
    trx: Transaction<IdentityTables>,
  ): Promise<SecondFactorCheck> {
    const compact = code.replace(/\s+/g, '');
    if (TOTP_CODE.test(compact)) {
      const result = await verifyTotp({
        secret: state.secret,
        code: compact,
        now,
        ...(state.lastStep === null ? {} : { lastUsedStep: state.lastStep }),
      });
      if (!result.ok) return result.reason;
      return (await store.advanceTotpStep(state.userId, result.step, trx)) ? 'ok' : 'reused';
    }
    return (await store.useRecoveryCode(state.userId, hashRecoveryCode(code), now, trx)) ? 'ok' : 'invalid';
  }

  /** Reads and locks the state of a user whose 2FA is on, or throws `auth.mfa_not_enabled`. */
  async function lockEnabled(
    userId: string,
    trx: Transaction<IdentityTables>,
  ): Promise<TotpState & { secret: string }> {
    const state = await store.findTotpState(userId, trx, { lock: true });
    if (state === undefined) throw sessionErrors.tokenInvalid();
    if (state.confirmedAt === null || state.secret === null) throw identityErrors.mfaNotEnabled();
    return { ...state, secret: state.secret };
  }

  /** Turns a failed check on a signed-in user's route into its 400 error. */
  function refuse(check: Exclude<SecondFactorCheck, 'ok'>): never {
    throw check === 'reused'
      ? identityErrors.totpCodeReused(CODE_FIELD)
      : identityErrors.invalidTotpCode(CODE_FIELD);
  }

  /** New recovery codes for a user, stored hashed in `trx`; the plain codes are returned once. */
  async function issueRecoveryCodes(userId: string, trx: Transaction<IdentityTables>): Promise<string[]> {
    const codes = generateRecoveryCodes(RECOVERY_CODE_COUNT);
    await store.replaceRecoveryCodes(userId, codes.map(hashRecoveryCode), trx);
    return codes;
  }

  return {
    /**
     * Starts a pending enrolment, or restarts one with a new secret (a user who lost the first
     * QR code). Refused with `auth.mfa_already_enabled` once 2FA is on.
     */
    async enroll(userId: string): Promise<TotpEnrollment> {
      const state = await store.findTotpState(userId, db.kysely);
      if (state === undefined) throw sessionErrors.tokenInvalid();
      if (state.confirmedAt !== null) throw identityErrors.mfaAlreadyEnabled();
      const enrollment = await createTotpEnrollment({ accountName: state.email, issuer: options.issuer });
      if (!(await store.startEnrollment(userId, enrollment.secret, clock.now())))
        throw identityErrors.mfaAlreadyEnabled();
      return enrollment;
    },

    /** Seals TOTP secrets stored in plain text or under a previous SECRET_KEY (at start). */
    resealSecrets: (): Promise<number> => store.resealTotpSecrets(),

    /**
     * Turns 2FA on with a first code from the pending secret, and returns the 10 recovery codes,
     * which are shown this once (only their hashes are kept). Every other session of the user is
     * signed out in the same transaction: a session opened with the password alone (perhaps by
     * whoever made the user turn 2FA on) must not outlive the change. `currentSessionId` stays.
     */
    async confirm(
      userId: string,
      code: string,
      currentSessionId: string,
    ): Promise<{ recoveryCodes: string[]; otherSessionsRevoked: number }> {
      return db.transaction(async (trx) => {
        const state = await store.findTotpState(userId, trx, { lock: true });
        if (state === undefined) throw sessionErrors.tokenInvalid();
        if (state.confirmedAt !== null) throw identityErrors.mfaAlreadyEnabled();
        if (state.secret === null) throw identityErrors.mfaNotEnrolled();
        const now = clock.now();
        const result = await verifyTotp({ secret: state.secret, code, now });
        if (!result.ok) refuse(result.reason);
        if (!(await store.confirmEnrollment(userId, result.step, now, trx)))
          throw identityErrors.mfaNotEnrolled();
        const otherSessionsRevoked = await sessions.revokeAll(
          userId,
          'two-factor authentication turned on',
          trx,
          currentSessionId,
        );
        return { recoveryCodes: await issueRecoveryCodes(userId, trx), otherSessionsRevoked };
      });
    },

    /**
     * Turns 2FA off, given a current TOTP code or an unused recovery code (an access token alone
     * is not enough: a stolen one must not remove the second factor).
     */
    async disable(userId: string, code: string): Promise<void> {
      await db.transaction(async (trx) => {
        const state = await lockEnabled(userId, trx);
        const now = clock.now();
        const check = await checkSecondFactor(state, code, now, trx);
        if (check !== 'ok') refuse(check);
        await store.clearTotp(userId, now, trx);
      });
    },

    /** True when the user has two-factor authentication on. */
    async isEnabled(userId: string): Promise<boolean> {
      const state = await store.findTotpState(userId, db.kysely);
      return state?.confirmedAt != null;
    },

    /**
     * Proves the second factor again for a sensitive action of a signed-in user: the TOTP step or
     * recovery code is consumed like at sign-in, so it cannot be replayed.
     */
    async confirmSecondFactor(userId: string, code: string): Promise<void> {
      await db.transaction(async (trx) => {
        const state = await lockEnabled(userId, trx);
        const check = await checkSecondFactor(state, code, clock.now(), trx);
        if (check !== 'ok') refuse(check);
      });
    },

    /** Replaces every recovery code with 10 new ones, given a TOTP code or an unused recovery code. */
    async regenerateRecoveryCodes(userId: string, code: string): Promise<{ recoveryCodes: string[] }> {
      return db.transaction(async (trx) => {
        const state = await lockEnabled(userId, trx);
        const check = await checkSecondFactor(state, code, clock.now(), trx);
        if (check !== 'ok') refuse(check);
        return { recoveryCodes: await issueRecoveryCodes(userId, trx) };
      });
    },

    /**
     * Opens the second step of a sign-in for a user whose password was just verified: a
     * single-use token, stored hashed, that expires after `challengeTtlMs`.
     */
    async startSignInChallenge(userId: string, client: ClientInfo): Promise<MfaChallenge> {
      const { token, hash } = createSecretToken(CHALLENGE_PREFIX);
      const now = clock.now();
      await store.insertChallenge({
        hash,
        userId,
        now,
        expiresAt: new Date(now.getTime() + options.challengeTtlMs),
        client: { userAgent: client.userAgent, ip: client.ip },
      });
      return { token, expiresInSeconds: Math.floor(options.challengeTtlMs / 1000) };
    },

    /**
     * Cancels the user's open sign-in challenges in `trx`: after a password reset, a second step
     * started with the old password must not open a session.
     */
    cancelSignInChallenges: (userId: string, trx: Transaction<IdentityTables>): Promise<void> =>
      store.deleteChallenges(userId, trx),

    /**
     * Finishes a sign-in with the challenge token and a TOTP or recovery code, and opens the
     * session. A wrong code leaves the challenge usable until it expires or has taken
     * {@link MFA_CHALLENGE_MAX_FAILED_ATTEMPTS} wrong codes; a right one uses it up.
     */
    async completeSignIn(mfaToken: string, code: string, client: ClientInfo): Promise<IssuedTokens> {
      const parsed = parseSecretToken(mfaToken, CHALLENGE_PREFIX);
      if (parsed === undefined) throw identityErrors.mfaChallengeInvalid();
      const outcome = await db.transaction(async (trx) => {
        const challenge = await store.lockChallenge(parsed.hash, trx);
        const now = clock.now();
        if (
          challenge === undefined ||
          challenge.used_at !== null ||
          challenge.expires_at <= now ||
          challenge.failed_attempts >= MFA_CHALLENGE_MAX_FAILED_ATTEMPTS
        ) {
          return { kind: 'challenge_invalid' as const };
        }
        // Not locked: the conditional UPDATEs in checkSecondFactor are what serialize concurrent uses.
        const state = await store.findTotpState(challenge.user_id, trx);
        if (state === undefined || state.confirmedAt === null || state.secret === null) {
          return { kind: 'challenge_invalid' as const };
        }
        const check = await checkSecondFactor({ ...state, secret: state.secret }, code, now, trx);
        if (check === 'reused') return { kind: 'reused' as const };
        if (check === 'invalid') {
          // Committed with the transaction: the error is thrown after it, not inside it.
          await store.recordFailedAttempt(parsed.hash, trx);
          return { kind: 'invalid' as const };
        }
        await store.markChallengeUsed(parsed.hash, now, trx);
        const tokens = await sessions.start(
          state.userId,
          {
            userAgent: client.userAgent ?? challenge.client?.userAgent ?? null,
            ip: client.ip ?? challenge.client?.ip ?? null,
          },
          trx,
        );
        return { kind: 'signed_in' as const, tokens };
      });
      switch (outcome.kind) {
        case 'challenge_invalid':
          throw identityErrors.mfaChallengeInvalid();
        case 'reused':
          throw identityErrors.totpCodeReused();
        case 'invalid':
          throw identityErrors.invalidTotpCode();
        case 'signed_in':
          return outcome.tokens;
      }
    },
  };
}

export type MfaService = ReturnType<typeof createMfaService>;
