/** The identity module: accounts, sessions, access tokens, authentication of requests. */
export { type Authentication, requireUser } from './authentication.js';
export { createIdentityModule, type IdentityOptions } from './identity.module.js';
export type { IdentityTables } from './identity.tables.js';
