import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { operatorListQuery, requireOperator, requireUser } from '../identity/index.js';
import { OrgHeaders, requireOrgRole } from './current-org.hooks.js';
import type { OrganizationService } from './organizations.service.js';

const Role = Type.Union([
  Type.Literal('owner'),
  Type.Literal('admin'),
  Type.Literal('member'),
  Type.Literal('viewer'),
]);
const GrantableRole = Type.Union([Type.Literal('admin'), Type.Literal('member'), Type.Literal('viewer')]);
const Organization = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  slug: Type.String(),
  role: Role,
  createdAt: Type.String({ format: 'date-time' }),
});
const Member = Type.Object({
  userId: Type.String({ format: 'uuid' }),
  email: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  role: Role,
  joinedAt: Type.String({ format: 'date-time' }),
});
const Invitation = Type.Object({
  id: Type.String({ format: 'uuid' }),
  email: Type.String(),
  role: GrantableRole,
  expiresAt: Type.String({ format: 'date-time' }),
});
const UserParams = Type.Object({ userId: Type.String({ format: 'uuid' }) });
const InvitationBody = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: 254, examples: ['broker@example.com'] }),
    role: GrantableRole,
  },
  { additionalProperties: false },
);

/** Organizations, members, invitations. Routes under /org act in the organization of X-Org-Id. */
export function registerTenancyRoutes(app: HttpServer, organizations: OrganizationService): void {
  const tags = ['organizations'];

  app.post(
    '/orgs',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Create an organization; you become its owner',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200, examples: ['Cabinet Dupont'] }),
            slug: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,62}$' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: Organization },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await organizations.create(requireUser(request).userId, request.body)),
  );

  app.get(
    '/orgs',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Organizations you belong to',
        response: { 200: Type.Array(Organization) },
      },
    },
    async (request) => organizations.listMine(requireUser(request).userId),
  );

  app.get(
    '/operator/organizations',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary:
          'Every organization with its number of members, in slug order, page after page (operator token)',
        querystring: operatorListQuery('`next` of the previous page (the last slug it listed)'),
        response: {
          200: Type.Object({
            organizations: Type.Array(
              Type.Object({
                id: Type.String({ format: 'uuid' }),
                name: Type.String(),
                slug: Type.String(),
                members: Type.Integer(),
                createdAt: Type.String({ format: 'date-time' }),
              }),
            ),
            next: Type.Union([Type.String(), Type.Null()], { description: 'the `after` of the next page' }),
          }),
        },
      },
    },
    async (request) => {
      requireOperator(request);
      const { search, after, limit = 50 } = request.query;
      return organizations.listAll({ search, after, limit });
    },
  );

  app.get(
    '/operator/organizations/:orgId/members',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary: "Any organization's members, oldest first, without belonging to it (operator token)",
        params: Type.Object({ orgId: Type.String({ format: 'uuid' }) }),
        response: { 200: Type.Object({ members: Type.Array(Member) }) },
      },
    },
    async (request) => {
      requireOperator(request);
      return { members: await organizations.membersForOperator(request.params.orgId) };
    },
  );

  // The operator manages any organization's members and invitations through the same service as
  // its admins (with an owner's reach, the last owner staying), audited in that organization's log.
  const OrgParams = Type.Object({ orgId: Type.String({ format: 'uuid' }) });
  const operatorIn = (request: FastifyRequest<{ Params: { orgId: string } }>) => {
    requireOperator(request, request.params.orgId);
    return { orgId: request.params.orgId, operator: true as const };
  };

  app.patch(
    '/operator/organizations/:orgId/members/:userId',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary: "Change the role of any organization's member (operator token; audited in its log)",
        params: Type.Object({ ...OrgParams.properties, ...UserParams.properties }),
        body: Type.Object({ role: GrantableRole }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      await organizations.changeRole(operatorIn(request), request.params.userId, request.body.role);
      return reply.code(204).send();
    },
  );

  app.delete(
    '/operator/organizations/:orgId/members/:userId',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary:
          "Remove any organization's member, an owner too unless the last one (operator token; audited in its log)",
        params: Type.Object({ ...OrgParams.properties, ...UserParams.properties }),
      },
    },
    async (request, reply) => {
      await organizations.remove(operatorIn(request), request.params.userId);
      return reply.code(204).send();
    },
  );

  app.post(
    '/operator/organizations/:orgId/invitations',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary: 'Invite someone by email to any organization (operator token); the link is emailed to them',
        params: OrgParams,
        body: InvitationBody,
        response: { 201: Invitation },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await organizations.invite(operatorIn(request), request.body)),
  );

  app.get(
    '/operator/organizations/:orgId/invitations',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary: "Any organization's pending invitations (operator token)",
        params: OrgParams,
        response: { 200: Type.Array(Invitation) },
      },
    },
    async (request) => organizations.invitations(operatorIn(request)),
  );

  app.delete(
    '/operator/organizations/:orgId/invitations/:id',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary: "Revoke any organization's invitation (operator token; audited in its log)",
        params: Type.Object({ ...OrgParams.properties, id: Type.String({ format: 'uuid' }) }),
      },
    },
    async (request, reply) => {
      await organizations.revokeInvitation(operatorIn(request), request.params.id);
      return reply.code(204).send();
    },
  );

  app.get(
    '/org',
    {
      schema: {
        tags,
        security: routeSecurity.memberOrApiKey,
        summary: 'The current organization',
        headers: OrgHeaders,
        response: { 200: Organization },
      },
    },
    async (request) => organizations.current(requireOrgRole(request, 'viewer')),
  );

  app.patch(
    '/org',
    {
      schema: {
        tags,
        security: routeSecurity.memberOrApiKey,
        summary: 'Rename the current organization (admin)',
        headers: OrgHeaders,
        body: Type.Object(
          { name: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
      },
    },
    async (request, reply) => {
      await organizations.rename(requireOrgRole(request, 'admin'), request.body.name);
      return reply.code(204).send();
    },
  );

  app.get(
    '/org/members',
    {
      schema: {
        tags,
        security: routeSecurity.memberOrApiKey,
        summary: 'Members of the current organization',
        headers: OrgHeaders,
        response: { 200: Type.Array(Member) },
      },
    },
    async (request) => organizations.members(requireOrgRole(request, 'viewer')),
  );

  app.patch(
    '/org/members/:userId',
    {
      schema: {
        tags,
        security: routeSecurity.memberOrApiKey,
        summary: "Change a member's role (admin; use transfer-ownership to make an owner)",
        headers: OrgHeaders,
        params: UserParams,
        body: Type.Object({ role: GrantableRole }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      await organizations.changeRole(
        requireOrgRole(request, 'admin'),
        request.params.userId,
        request.body.role,
      );
      return reply.code(204).send();
    },
  );

  app.delete(
    '/org/members/:userId',
    {
      schema: {
        tags,
        security: routeSecurity.memberOrApiKey,
        summary: 'Remove a member (admin)',
        headers: OrgHeaders,
        params: UserParams,
      },
    },
    async (request, reply) => {
      await organizations.remove(requireOrgRole(request, 'admin'), request.params.userId);
      return reply.code(204).send();
    },
  );

  app.post(
    '/org/leave',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Leave the current organization',
        headers: OrgHeaders,
      },
    },
    async (request, reply) => {
      requireUser(request); // an API key has no membership to leave
      await organizations.leave(requireOrgRole(request, 'viewer'));
      return reply.code(204).send();
    },
  );

  app.post(
    '/org/transfer-ownership',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Make another member the owner; you become an admin (owner)',
        headers: OrgHeaders,
        body: Type.Object({ userId: Type.String({ format: 'uuid' }) }, { additionalProperties: false }),
      },
    },
    async (request, reply) => {
      requireUser(request);
      await organizations.transferOwnership(requireOrgRole(request, 'owner'), request.body.userId);
      return reply.code(204).send();
    },
  );

  app.post(
    '/org/invitations',
    {
      schema: {
        tags,
        security: routeSecurity.memberOrApiKey,
        summary: 'Invite someone by email (admin); the link is emailed to them',
        headers: OrgHeaders,
        body: InvitationBody,
        response: { 201: Invitation },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await organizations.invite(requireOrgRole(request, 'admin'), request.body)),
  );

  app.get(
    '/org/invitations',
    {
      schema: {
        tags,
        security: routeSecurity.memberOrApiKey,
        summary: 'Pending invitations (admin)',
        headers: OrgHeaders,
        response: { 200: Type.Array(Invitation) },
      },
    },
    async (request) => organizations.invitations(requireOrgRole(request, 'admin')),
  );

  app.delete(
    '/org/invitations/:id',
    {
      schema: {
        tags,
        security: routeSecurity.memberOrApiKey,
        summary: 'Revoke an invitation (admin)',
        headers: OrgHeaders,
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
      },
    },
    async (request, reply) => {
      await organizations.revokeInvitation(requireOrgRole(request, 'admin'), request.params.id);
      return reply.code(204).send();
    },
  );

  app.post(
    '/invitations/accept',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Accept an invitation sent to your email',
        body: Type.Object(
          { token: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ orgId: Type.String({ format: 'uuid' }), role: Role }) },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const accepted = await organizations.accept(userId, request.body.token);
      // The request named no organization (no X-Org-Id): from now on it acts in the one joined,
      // so its audit event lands in that organization's log, where admins see who joined.
      request.org = { orgId: accepted.orgId, userId, role: accepted.role };
      return accepted;
    },
  );
}
