import { SocleError } from '../../kernel/index.js';
import type { OrgRole } from './roles.js';

/** Errors of organizations and memberships: stable codes clients branch on. */
export const tenancyErrors = {
  orgRequired: () =>
    new SocleError('tenancy.org_required', 'Name the organization to act in with the X-Org-Id header', {
      status: 400,
      errors: [{ field: 'header/x-org-id', message: 'is required' }],
    }),
  invalidOrgHeader: () =>
    new SocleError('tenancy.invalid_org_id', 'X-Org-Id must be an organization id (a UUID)', {
      status: 400,
      errors: [{ field: 'header/x-org-id', message: 'must be a UUID' }],
    }),
  notAMember: () =>
    new SocleError('tenancy.not_a_member', 'You are not a member of this organization', { status: 403 }),
  forbidden: (needed: OrgRole) =>
    new SocleError(
      'tenancy.forbidden',
      `This action needs the ${needed} role or higher in this organization`,
      {
        status: 403,
        details: { requiredRole: needed },
      },
    ),
  slugTaken: (slug: string) =>
    new SocleError('tenancy.slug_taken', `The organization slug "${slug}" is taken`, {
      status: 409,
      errors: [{ field: 'body/slug', message: 'is taken' }],
    }),
  organizationNotFound: (orgId: string) =>
    new SocleError('tenancy.organization_not_found', `No organization ${orgId}`, {
      status: 404,
      details: { orgId },
    }),
  memberNotFound: (userId: string) =>
    new SocleError('tenancy.member_not_found', `No member ${userId} in this organization`, {
      status: 404,
      details: { userId },
    }),
  invitationNotFound: (id: string) =>
    new SocleError('tenancy.invitation_not_found', `No invitation ${id} in this organization`, {
      status: 404,
      details: { id },
    }),
  invitationInvalid: () =>
    new SocleError(
      'tenancy.invitation_invalid',
      'This invitation does not exist, has expired, or was already used',
      {
        status: 400,
      },
    ),
  invitationForAnotherEmail: () =>
    new SocleError('tenancy.invitation_email_mismatch', 'This invitation was sent to another email address', {
      status: 403,
    }),
  lastOwner: () =>
    new SocleError(
      'tenancy.last_owner',
      'An organization needs an owner: transfer ownership to another member before leaving or being removed',
      { status: 409 },
    ),
  alreadyMember: () =>
    new SocleError('tenancy.already_member', 'This user is already a member', { status: 409 }),
  apiKeyNotFound: (id: string) =>
    new SocleError('tenancy.api_key_not_found', `No API key ${id} in this organization`, {
      status: 404,
      details: { id },
    }),
  apiKeyInvalid: () =>
    new SocleError('auth.api_key_invalid', 'The API key is not valid: unknown, revoked or expired', {
      status: 401,
    }),
  apiKeyOtherOrg: () =>
    new SocleError(
      'auth.api_key_org_mismatch',
      'This API key belongs to another organization than the one X-Org-Id names',
      { status: 403, errors: [{ field: 'header/x-org-id', message: "must be the API key's organization" }] },
    ),
  conflictingCredentials: () =>
    new SocleError(
      'auth.conflicting_credentials',
      'Send either an access token (Authorization: Bearer) or an API key (X-Api-Key), not both',
      { status: 400 },
    ),
  insufficientScope: (scope: string) =>
    new SocleError('auth.insufficient_scope', `This API key lacks the scope "${scope}"`, {
      status: 403,
      details: { requiredScope: scope },
    }),
};
