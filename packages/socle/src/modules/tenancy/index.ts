/** The tenancy module: organizations, members and roles, invitations, API keys, the current organization. */
export { API_KEY_HEADER } from './api-key-authentication.hooks.js';
export type { ApiKeyRole, ApiKeySummary } from './api-keys.service.js';
export {
  type CurrentOrg,
  ORG_HEADER,
  OrgHeaders,
  type RequestApiKey,
  requireOrg,
  requireOrgRole,
  requireScope,
} from './current-org.hooks.js';
export { actingSettings, type InvitationDelivery } from './organizations.service.js';
export { OPERATOR_READ } from './organizations.store.js';
export { can, hasRole, ORG_PERMISSIONS, ORG_ROLES, type OrgPermission, type OrgRole } from './roles.js';
export { createTenancyModule, type TenancyOptions, type TenancyServices } from './tenancy.module.js';
export type { TenancyTables } from './tenancy.tables.js';
