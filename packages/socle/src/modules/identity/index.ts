/** The identity module: accounts, sessions, access tokens, authentication of requests. */
export type { IdentityCredentials } from './accounts.service.js';
export { type Authentication, CREDENTIALS_CHECK_TTL_MS, requireUser } from './authentication.hooks.js';
export {
  createIdentityModule,
  type IdentityOptions,
  type IdentityServices,
  type IdentitySettings,
  identitySettings,
} from './identity.module.js';
export type { IdentityTables } from './identity.tables.js';
export { operatorListQuery } from './operator.routes.js';
export {
  OPERATOR_TOKEN_HEADER,
  type OperatorAccess,
  operatorErrors,
  requireOperator,
} from './operator-access.hooks.js';
export { normalizeEmail } from './passwords.js';
export {
  createIdentityRateLimits,
  IDENTITY_RATE_LIMITS,
  type KnownSignInAddress,
} from './rate-limits.hooks.js';
export { ReauthenticationFields } from './reauthentication.hooks.js';
export { createApiKey, createSecretToken, hashSecretToken, parseSecretToken } from './secret-tokens.js';
export type { AccountProfile } from './users.store.js';
