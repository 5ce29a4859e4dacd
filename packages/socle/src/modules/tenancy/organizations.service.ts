import { randomUUID } from 'node:crypto';
import type { Clock, Database } from '../../kernel/index.js';
import { tenantSettings } from '../../kernel/index.js';
import {
  createSecretToken,
  hashSecretToken,
  type IdentityServices,
  normalizeEmail,
  parseSecretToken,
} from '../identity/index.js';
import { OPERATOR_READ, type OrganizationsStore } from './organizations.store.js';
import { hasRole, ORG_PERMISSIONS, type OrgRole } from './roles.js';
import { tenancyErrors } from './tenancy.errors.js';
import type { TenancyTables } from './tenancy.tables.js';

const INVITATION_PREFIX = 'inv';

export interface Organization {
  readonly id: string;
  readonly name: string;
  readonly slug: string;
  readonly role: OrgRole;
  readonly createdAt: string;
}

/** An organization as operators list it. */
export interface OrganizationSummary {
  readonly id: string;
  readonly name: string;
  readonly slug: string;
  readonly members: number;
  readonly createdAt: string;
}

/** Where the service acts: the organization and user of the request (already checked). */
export interface Acting {
  readonly orgId: string;
  readonly userId: string;
  readonly role: OrgRole;
}

/**
 * The operator (`OPERATOR_TOKEN`) acting on an organization it need not belong to: it manages its
 * members and invitations with an owner's reach, under the same rules (the last owner stays).
 */
export interface OperatorActing {
  readonly orgId: string;
  readonly operator: true;
}

/** Who manages an organization's members: one of its admins or owners, or the operator. */
export type Manager = Acting | OperatorActing;

const isOperator = (manager: Manager): manager is OperatorActing => 'operator' in manager;

/** The settings that make the database act in `acting`'s organization as its user (row-level security). */
export const actingSettings = (acting: { readonly orgId: string; readonly userId: string }) =>
  tenantSettings({ tenantId: acting.orgId, userId: acting.userId });

/**
 * `inOrg`: a transaction in the acting organization, as the acting user, whatever the ambient
 * scope says; `inOrgStatement`: one statement there, in its own implicit transaction (one round
 * trip, no BEGIN/COMMIT).
 */
export function actingIn<Tables>(db: Database<Tables>) {
  return {
    inOrg: <T>(
      acting: { readonly orgId: string; readonly userId: string },
      work: Parameters<typeof db.transaction<T>>[0],
    ) => db.transaction(work, { settings: actingSettings(acting) }),
    inOrgStatement: (acting: { readonly orgId: string; readonly userId: string }) =>
      db.withSettings(actingSettings(acting)),
  };
}

/** Sends an invitation's token to its recipient; runs inside the transaction that created it. */
export type InvitationDelivery = (
  invitation: {
    id: string;
    orgId: string;
    orgName: string;
    email: string;
    role: OrgRole;
    token: string;
    expiresAt: Date;
  },
  trx: Parameters<Parameters<Database<TenancyTables>['transaction']>[0]>[0],
) => Promise<void>;

type Transaction = Parameters<Parameters<Database<TenancyTables>['transaction']>[0]>[0];

export interface OrganizationServiceOptions {
  readonly db: Database<TenancyTables>;
  readonly store: OrganizationsStore;
  /** Members' emails and names, and the invited account's email, come from the identity module. */
  readonly identity: Pick<IdentityServices, 'findProfiles' | 'findEmail' | 'markEmailVerified'>;
  readonly clock: Clock;
  readonly invitationTtlMs: number;
  readonly deliverInvitation: InvitationDelivery;
}

function slugify(name: string): string {
  const base = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return base || 'org';
}

/**
 * Organizations and their members. Each method acts in the caller's organization, set explicitly
 * here whatever the request scope says, so row-level security confines it: in a transaction when
 * it runs several statements, as one statement in its own implicit transaction otherwise.
 */
export function createOrganizationService(options: OrganizationServiceOptions) {
  const { db, store, identity, clock } = options;
  /** Acting in the manager's organization: as its user, or as no user for the operator. */
  const settingsOf = (manager: Manager) =>
    isOperator(manager) ? tenantSettings({ tenantId: manager.orgId }) : actingSettings(manager);
  const inOrg = <T>(manager: Manager, work: (trx: Transaction) => Promise<T>) =>
    db.transaction(work, { settings: settingsOf(manager) });
  const inOrgStatement = (manager: Manager) => db.withSettings(settingsOf(manager));

  /** 404 `tenancy.organization_not_found` for an operator naming an organization that does not exist. */
  async function checkOperatorTarget(
    manager: Manager,
    executor: Parameters<OrganizationsStore['findOrganization']>[1],
  ) {
    if (isOperator(manager) && (await store.findOrganization(manager.orgId, executor)) === undefined)
      throw tenancyErrors.organizationNotFound(manager.orgId);
  }

  /**
   * Locks the organization's memberships for the rest of the transaction and checks that the
   * acting user still holds `minimum` there. The role on `acting` comes from the request (cached
   * for a few seconds, and read before a concurrent change committed): a change of memberships
   * decides on the role read under the lock, so two simultaneous transfers cannot both pass as
   * owner, nor a former owner act as one. Returns that fresh role.
   */
  async function actingRoleUnderLock(acting: Manager, minimum: OrgRole, trx: Transaction): Promise<OrgRole> {
    await store.lockMemberships(trx);
    if (isOperator(acting)) {
      await checkOperatorTarget(acting, trx);
      return 'owner';
    }
    const role = (await store.findMembership(acting.userId, trx))?.role ?? null;
    if (role === null) throw tenancyErrors.notAMember();
    if (!hasRole(role, minimum)) throw tenancyErrors.forbidden(minimum);
    return role;
  }

  /**
   * The member a manager acts on, under the memberships lock: it exists, only an owner touches an
   * owner, and the last owner stays (an organization always has one).
   */
  async function memberToManage(acting: Manager, minimum: OrgRole, userId: string, trx: Transaction) {
    const actingRole = await actingRoleUnderLock(acting, minimum, trx);
    const member = await store.findMembership(userId, trx);
    if (member === undefined) throw tenancyErrors.memberNotFound(userId);
    if (member.role === 'owner' && actingRole !== 'owner') throw tenancyErrors.forbidden('owner');
    if (member.role === 'owner' && (await store.countOwners(trx)) <= 1) throw tenancyErrors.lastOwner();
    return member;
  }

  /** Memberships with their accounts' email and name (a membership's account always exists: foreign key). */
  const withProfiles = async (rows: { user_id: string; role: OrgRole; created_at: Date }[]) => {
    const profiles = new Map(
      (await identity.findProfiles(rows.map((row) => row.user_id))).map((profile) => [profile.id, profile]),
    );
    return rows.flatMap((row) => {
      const profile = profiles.get(row.user_id);
      if (profile === undefined) return [];
      return [
        {
          userId: row.user_id,
          email: profile.email,
          name: profile.name,
          role: row.role,
          joinedAt: row.created_at.toISOString(),
        },
      ];
    });
  };

  return {
    async create(userId: string, input: { name: string; slug?: string | undefined }): Promise<Organization> {
      const id = randomUUID();
      const slug = input.slug ?? `${slugify(input.name)}-${id.slice(0, 6)}`;
      return inOrg({ orgId: id, userId, role: 'owner' }, async (trx) => {
        if (
          !(await store.insertOrganization({ id, name: input.name.trim(), slug, createdBy: userId }, trx))
        ) {
          throw tenancyErrors.slugTaken(slug);
        }
        await store.insertMembership({ tenantId: id, userId, role: 'owner' }, trx);
        const org = await store.findOrganization(id, trx);
        return {
          id,
          name: input.name.trim(),
          slug,
          role: 'owner' as const,
          createdAt: (org?.created_at ?? clock.now()).toISOString(),
        };
      });
    },

    async listMine(userId: string): Promise<Organization[]> {
      const rows = await store.listForUser(userId, db.withSettings(tenantSettings({ userId })));
      return rows.map((row) => ({
        id: row.id,
        name: row.name,
        slug: row.slug,
        role: row.role,
        createdAt: row.created_at.toISOString(),
      }));
    },

    /**
     * Every organization with its number of members, for operators: a page in slug order after
     * `after` (the last slug of the previous page); `next` is the following page's, or null.
     */
    async listAll(query: {
      search?: string | undefined;
      after?: string | undefined;
      limit: number;
    }): Promise<{ organizations: OrganizationSummary[]; next: string | null }> {
      const rows = await store.listAll({ ...query, limit: query.limit + 1 }, db.withSettings(OPERATOR_READ));
      const page = rows.slice(0, query.limit);
      return {
        organizations: page.map((row) => ({
          id: row.id,
          name: row.name,
          slug: row.slug,
          members: Number(row.members ?? 0),
          createdAt: row.created_at.toISOString(),
        })),
        next: rows.length > query.limit ? (page.at(-1)?.slug ?? null) : null,
      };
    },

    async current(acting: Acting): Promise<Organization> {
      const org = await store.findOrganization(acting.orgId, inOrgStatement(acting));
      if (org === undefined) throw tenancyErrors.notAMember();
      return {
        id: org.id,
        name: org.name,
        slug: org.slug,
        role: acting.role,
        createdAt: org.created_at.toISOString(),
      };
    },

    async rename(acting: Acting, name: string): Promise<void> {
      await store.renameOrganization(acting.orgId, name.trim(), inOrgStatement(acting));
    },

    async members(acting: Acting) {
      return withProfiles(await store.listMembers(inOrgStatement(acting)));
    },

    /**
     * The members of any organization, for operators (who need not belong to it): read acting in
     * that organization, with no user; 404 `tenancy.organization_not_found` when there is none.
     */
    async membersForOperator(orgId: string) {
      const inThatOrg = db.withSettings(tenantSettings({ tenantId: orgId }));
      if ((await store.findOrganization(orgId, inThatOrg)) === undefined)
        throw tenancyErrors.organizationNotFound(orgId);
      return withProfiles(await store.listMembers(inThatOrg));
    },

    async changeRole(acting: Manager, userId: string, role: Exclude<OrgRole, 'owner'>): Promise<void> {
      await inOrg(acting, async (trx) => {
        await memberToManage(acting, ORG_PERMISSIONS['members.change_role'], userId, trx);
        await store.setRole(userId, role, trx);
      });
    },

    async remove(acting: Manager, userId: string): Promise<void> {
      await inOrg(acting, async (trx) => {
        await memberToManage(acting, ORG_PERMISSIONS['members.remove'], userId, trx);
        await store.deleteMembership(userId, trx);
      });
    },

    async leave(acting: Acting): Promise<void> {
      await inOrg(acting, async (trx) => {
        await memberToManage(acting, 'viewer', acting.userId, trx);
        await store.deleteMembership(acting.userId, trx);
      });
    },

    async transferOwnership(acting: Acting, toUserId: string): Promise<void> {
      await inOrg(acting, async (trx) => {
        await actingRoleUnderLock(acting, ORG_PERMISSIONS['ownership.transfer'], trx);
        const target = await store.findMembership(toUserId, trx);
        if (target === undefined) throw tenancyErrors.memberNotFound(toUserId);
        await store.setRole(toUserId, 'owner', trx);
        if (toUserId !== acting.userId) await store.setRole(acting.userId, 'admin', trx);
      });
    },

    async invite(acting: Manager, input: { email: string; role: Exclude<OrgRole, 'owner'> }) {
      const email = normalizeEmail(input.email);
      const { token, hash } = createSecretToken(INVITATION_PREFIX);
      const id = randomUUID();
      const expiresAt = new Date(clock.now().getTime() + options.invitationTtlMs);
      return inOrg(acting, async (trx) => {
        const org = await store.findOrganization(acting.orgId, trx);
        if (org === undefined && isOperator(acting)) throw tenancyErrors.organizationNotFound(acting.orgId);
        await store.insertInvitation(
          {
            id,
            tenantId: acting.orgId,
            email,
            role: input.role,
            tokenHash: hash,
            // None for the operator: it has no account (the audit log names it).
            invitedBy: isOperator(acting) ? null : acting.userId,
            expiresAt,
          },
          trx,
        );
        await options.deliverInvitation(
          { id, orgId: acting.orgId, orgName: org?.name ?? '', email, role: input.role, token, expiresAt },
          trx,
        );
        return { id, email, role: input.role, expiresAt: expiresAt.toISOString() };
      });
    },

    async invitations(acting: Manager) {
      await checkOperatorTarget(acting, inOrgStatement(acting));
      const rows = await store.listPendingInvitations(clock.now(), inOrgStatement(acting));
      return rows.map((row) => ({
        id: row.id,
        email: row.email,
        role: row.role,
        expiresAt: row.expires_at.toISOString(),
      }));
    },

    async revokeInvitation(acting: Manager, id: string): Promise<void> {
      const revoked = await store.revokeInvitation(id, clock.now(), inOrgStatement(acting));
      if (!revoked) throw tenancyErrors.invitationNotFound(id);
    },

    /** Accepts an invitation sent to the signed-in user's email; returns the organization joined. */
    async accept(userId: string, token: string): Promise<{ orgId: string; role: OrgRole }> {
      if (parseSecretToken(token, INVITATION_PREFIX) === undefined) throw tenancyErrors.invitationInvalid();
      const tokenHash = hashSecretToken(token);
      return db.transaction(
        async (trx) => {
          const invitation = await store.invitationByToken(tokenHash, trx);
          const now = clock.now();
          if (
            invitation === undefined ||
            invitation.accepted_at !== null ||
            invitation.revoked_at !== null ||
            invitation.expires_at <= now
          ) {
            throw tenancyErrors.invitationInvalid();
          }
          if ((await identity.findEmail(userId, trx)) !== invitation.email)
            throw tenancyErrors.invitationForAnotherEmail();
          await store.actIn(invitation.tenant_id, trx);
          if (!(await store.markInvitationAccepted(invitation.id, userId, now, trx)))
            throw tenancyErrors.invitationInvalid();
          if (
            !(await store.insertMembership(
              { tenantId: invitation.tenant_id, userId, role: invitation.role },
              trx,
            ))
          ) {
            throw tenancyErrors.alreadyMember();
          }
          // The token was sent to this address only: presenting it proves the account's owner
          // reads mail there, as the verification mail's token would.
          await identity.markEmailVerified(userId, now, trx);
          return { orgId: invitation.tenant_id, role: invitation.role };
        },
        { settings: { ...tenantSettings({ userId }), 'app.invitation_token_hash': tokenHash } },
      );
    },
  };
}

export type OrganizationService = ReturnType<typeof createOrganizationService>;
