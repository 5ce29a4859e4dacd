/** Roles in an organization, from most to least powerful. */
export const ORG_ROLES = ['owner', 'admin', 'member', 'viewer'] as const;
export type OrgRole = (typeof ORG_ROLES)[number];

const RANK: Record<OrgRole, number> = { owner: 3, admin: 2, member: 1, viewer: 0 };

/** Whether `role` is at least `minimum` (an owner can do what an admin can, and so on). */
export function hasRole(role: OrgRole, minimum: OrgRole): boolean {
  return RANK[role] >= RANK[minimum];
}

/**
 * What each role may do with the organization itself. Modules and apps check their own actions
 * with `hasRole` / `requireOrgRole` (e.g. viewers read, members write, admins manage).
 */
export const ORG_PERMISSIONS = {
  'org.read': 'viewer',
  'org.update': 'admin',
  'org.delete': 'owner',
  'members.read': 'viewer',
  'members.invite': 'admin',
  'members.remove': 'admin',
  'members.change_role': 'admin',
  'ownership.transfer': 'owner',
} as const satisfies Record<string, OrgRole>;

export type OrgPermission = keyof typeof ORG_PERMISSIONS;

export function can(role: OrgRole, permission: OrgPermission): boolean {
  return hasRole(role, ORG_PERMISSIONS[permission]);
}
