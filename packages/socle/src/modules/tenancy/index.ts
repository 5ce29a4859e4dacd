/** The tenancy module: organizations, members and roles, invitations, the current organization. */
export { type CurrentOrg, ORG_HEADER, requireOrg, requireOrgRole } from './current-org.js';
export type { InvitationDelivery } from './organizations.service.js';
export { can, hasRole, ORG_PERMISSIONS, ORG_ROLES, type OrgPermission, type OrgRole } from './roles.js';
export { createTenancyModule, type TenancyOptions } from './tenancy.module.js';
export type { TenancyTables } from './tenancy.tables.js';
