import type { QueryExecutorProvider } from 'kysely';
import type { HttpRateLimitRule } from '../../kernel/index.js';
import {
  defineModule,
  defineSettings,
  type PrivacySubject,
  type SettingValues,
  type SetupContext,
  setting,
} from '../../kernel/index.js';
import type { MailServices } from '../mail/index.js';
import { createAccessTokens } from './access-tokens.service.js';
import { registerAccountRoutes } from './accounts.routes.js';
import { createAccountService } from './accounts.service.js';
import { installAuthentication, rememberValidCredentials } from './authentication.hooks.js';
import { registerEmailTokenRoutes } from './email-tokens.routes.js';
import { createEmailTokenService } from './email-tokens.service.js';
import { createEmailTokensStore } from './email-tokens.store.js';
import { createIdentityPrivacy } from './identity.privacy.js';
import type { IdentityTables } from './identity.tables.js';
import { registerMfaRoutes } from './mfa.routes.js';
import { createMfaService } from './mfa.service.js';
import { createMfaStore } from './mfa.store.js';
import {
  registerOperatorAccountRoutes,
  registerOperatorConfigurationRoute,
  registerOperatorFleetHealthRoute,
} from './operator.routes.js';
import { installOperatorAccess } from './operator-access.hooks.js';
import { createPersonalDataStore } from './personal-data.store.js';
import { createIdentityRateLimits, installIdentityRateLimits } from './rate-limits.hooks.js';
import { installReauthentication } from './reauthentication.hooks.js';
import { registerOperatorSessionRoutes, registerSessionRoutes } from './sessions.routes.js';
import { createSessionService } from './sessions.service.js';
import { createSessionsStore } from './sessions.store.js';
import { createSigningKeysStore } from './signing-keys.store.js';
import { type AccountProfile, createUsersStore, findPrivacySubject } from './users.store.js';

export interface IdentityOptions {
  /** Lifetime of access tokens; also how long a signed-out session's access token keeps working. */
  readonly accessTokenTtlSeconds?: number;
  /** Lifetime of a session (refresh tokens) without signing in again. */
  readonly sessionTtlMs?: number;
  /** How long a used refresh token may be presented again (concurrent tabs) before it counts as stolen. */
  readonly refreshReuseGraceMs?: number;
  /** Rate limits by route (default `createIdentityRateLimits`, see IDENTITY_RATE_LIMITS); `false` turns them off (tests that sign up many users). */
  readonly rateLimits?: Readonly<Record<string, readonly HttpRateLimitRule[]>> | false;
  /** Product name authenticator apps show beside the account when enrolling TOTP. */
  readonly totpIssuer?: string;
  /** How long the second step of a sign-in (TOTP or recovery code) may wait after the password. */
  readonly mfaChallengeTtlMs?: number;
  /** How long an email verification mail works; default 24 hours. */
  readonly emailVerificationTtlMs?: number;
  /** How long a password reset mail works; default 1 hour. */
  readonly passwordResetTtlMs?: number;
  /**
   * Builds the link put in the verification mail from its token (your app's page, which posts
   * the token to `POST /auth/email-verification/confirm`); without it the mail shows the token.
   */
  readonly emailVerificationLink?: (token: string) => string;
  /**
   * Builds the link put in the password reset mail from its token (your app's page, which posts
   * it with the new password to `POST /auth/password-reset/confirm`); without it the mail shows the token.
   */
  readonly passwordResetLink?: (token: string) => string;
}

/** The identity module's settings. */
export const identitySettings = defineSettings({
  operatorToken: setting.secret({
    env: 'OPERATOR_TOKEN',
    description:
      'Token of the operator API (/operator/*: every organization, account and job; X-Operator-Token header); unset disables it',
    minLength: 32,
  }),
});

export type IdentitySettings = SettingValues<typeof identitySettings>;

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

function createIdentityServices(
  context: SetupContext<IdentityTables, IdentitySettings>,
  options: IdentityOptions,
) {
  const { db, clock, log, secrets } = context;
  const accessTokens = createAccessTokens({
    store: createSigningKeysStore(db, secrets),
    clock,
    log,
    ttlSeconds: options.accessTokenTtlSeconds ?? 900,
  });
  const sessionsStore = createSessionsStore(db);
  const sessionTtlMs = options.sessionTtlMs ?? 30 * DAY_MS;
  /** An address the account opened a session from within a session's lifetime. */
  const knownSignInAddress = (email: string, ip: string) =>
    sessionsStore.signedInFrom(email, ip, new Date(clock.now().getTime() - sessionTtlMs));
  const users = createUsersStore(db);
  // Whether an access token's session and account still work, remembered a second per session;
  // a revocation made here is forgotten at once (see authentication.hooks.ts).
  const credentials = rememberValidCredentials(users);
  const sessions = createSessionService({
    db,
    store: sessionsStore,
    onRevoked: credentials.forget,
    accessTokens,
    clock,
    sessionTtlMs,
    reuseGraceMs: options.refreshReuseGraceMs ?? 10_000,
  });
  const mfa = createMfaService({
    db,
    store: createMfaStore(db, secrets),
    sessions,
    clock,
    issuer: options.totpIssuer ?? 'Socle',
    challengeTtlMs: options.mfaChallengeTtlMs ?? 5 * 60 * 1000,
  });
  const emailTokens = createEmailTokenService({
    db,
    store: createEmailTokensStore(),
    users,
    sessions,
    mfa,
    mail: context.servicesOf<MailServices>('mail').outbox,
    clock,
    verificationTtlMs: options.emailVerificationTtlMs ?? DAY_MS,
    passwordResetTtlMs: options.passwordResetTtlMs ?? HOUR_MS,
    verificationLink: options.emailVerificationLink,
    passwordResetLink: options.passwordResetLink,
  });
  const accounts = createAccountService({ db, clock, users, sessions, mfa, verification: emailTokens });
  return {
    accessTokens,
    sessions,
    accounts,
    mfa,
    emailTokens,
    users,
    credentials,
    knownSignInAddress,
    personalData: createPersonalDataStore(db),
    findPrivacySubject: (reference: string) => findPrivacySubject(db.withTables<unknown>(), reference),
    findProfiles: users.findProfiles,
    findEmail: users.findEmail,
    markEmailVerified: users.markEmailVerified,
  } satisfies IdentityServices & Record<string, unknown>;
}

/** What the identity module gives other modules (`context.servicesOf<IdentityServices>('identity')`). */
export interface IdentityServices {
  /** The account a privacy request (export, erasure) is about, by user id or email; undefined if none. */
  findPrivacySubject(reference: string): Promise<PrivacySubject | undefined>;
  /** Email and name of the accounts of `userIds` that exist, in no particular order. */
  findProfiles(userIds: readonly string[]): Promise<AccountProfile[]>;
  /** The account's email, read with the caller's executor (their transaction); undefined if none. */
  findEmail(userId: string, executor: QueryExecutorProvider): Promise<string | undefined>;
  /**
   * Records that the user proved they read mail at their address (an invitation's token, sent
   * there); keeps the first such time. Runs with the caller's executor (their transaction).
   */
  markEmailVerified(userId: string, at: Date, executor: QueryExecutorProvider): Promise<void>;
}

/**
 * Accounts (email + password), email verification and password reset (tokens mailed through the
 * mail module's outbox, hence `dependsOn: ['mail']`), two-factor authentication (TOTP and
 * recovery codes), sessions with rotating refresh tokens, access tokens (EdDSA JWTs, JWKS) and
 * request authentication for every module, the operator token included (`requireOperator`, `OPERATOR_TOKEN`).
 */
export function createIdentityModule(options: IdentityOptions = {}) {
  return defineModule({
    name: 'identity',
    // Read before a request's tenant (and so its shard) is known: stays on the primary with SHARDS.
    placement: 'primary',
    settings: identitySettings,
    setup: (context: SetupContext<IdentityTables, IdentitySettings>) =>
      createIdentityServices(context, options),
    privacy: ({ services }) => createIdentityPrivacy(services.personalData),
    dependsOn: ['mail'],
    migrations: new URL('./migrations/', import.meta.url),
    globalTables: {
      users:
        'an account exists outside any organization; read by the identity module keyed by the signed-in user or sign-in email',
      sessions:
        "a session belongs to a user, not an organization; queried by the identity module with the user's id",
      refresh_tokens: 'looked up by token hash before anyone is authenticated',
      signing_keys: 'keys of the whole deployment, not of a tenant',
      recovery_codes: "a user's second factor, not an organization's; read by the signed-in user's id",
      mfa_challenges: 'the second step of a sign-in, looked up by token hash before anyone is authenticated',
      email_tokens:
        "a user's verification and password reset tokens, looked up by token hash before anyone is authenticated",
    },
    async onStart(context) {
      const { accessTokens, mfa } = context.services;
      await accessTokens.start();
      const resealed = await mfa.resealSecrets();
      if (resealed > 0)
        context.log.info({ secrets: resealed }, 'TOTP secrets resealed with the current SECRET_KEY');
    },
    configureHttp(app, context) {
      const { accessTokens, credentials, accounts, knownSignInAddress } = context.services;
      installAuthentication(app, accessTokens, context.scope, credentials);
      installOperatorAccess(app, context.settings.operatorToken);
      installReauthentication(app, accounts, options.rateLimits === false ? undefined : context.rateLimiter);
      if (options.rateLimits !== false)
        installIdentityRateLimits(
          app,
          context.rateLimiter,
          options.rateLimits ?? createIdentityRateLimits(knownSignInAddress),
        );
    },
    routes(app, { services, configuration, fleetHealth }) {
      registerAccountRoutes(app, services.accounts);
      registerSessionRoutes(app, services.sessions, services.accessTokens);
      registerMfaRoutes(app, services);
      registerEmailTokenRoutes(app, services);
      registerOperatorAccountRoutes(app, services.accounts);
      registerOperatorSessionRoutes(
        app,
        services.sessions,
        async (userId) => (await services.findProfiles([userId])).length > 0,
      );
      registerOperatorConfigurationRoute(app, configuration);
      registerOperatorFleetHealthRoute(app, fleetHealth);
    },
  });
}
