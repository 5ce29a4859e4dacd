import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../../kernel/index.js';
import {
  lockUntilTransactionEnds,
  PRIMARY_SHARD,
  settingsOfExecutor,
  TENANT_ID_SETTING,
} from '../../kernel/index.js';
import type { OrgRole } from './roles.js';
import type { TenancyTables } from './tenancy.tables.js';

type Executor = Kysely<TenancyTables>;
type Trx = Transaction<TenancyTables>;

/**
 * The organization the transaction acts in. Membership reads name it although RLS confines them:
 * the read policy also shows the acting user's own memberships in every other organization.
 */
const actingTenant = sql<string>`socle.current_tenant_id()`;

/** The transaction setting an operator's reads present (policies `*_operator_read`, migration 0003). */
export const OPERATOR_READ = { 'app.operator_read': 'on' } as const;

/** SQL of organizations, memberships and invitations. Row-level security scopes every query. */
export function createOrganizationsStore(db: Database<TenancyTables>) {
  const roleOf = db.prepare((kysely, params: { tenantId: string; userId: string }) =>
    kysely.selectNoFrom(
      sql<OrgRole | null>`tenancy.membership_role(${params.tenantId}::uuid, ${params.userId}::uuid)`.as(
        'role',
      ),
    ),
  );

  const roleInActingTenant = db.prepare((kysely, params: { userId: string }) =>
    kysely.selectNoFrom(
      sql<OrgRole | null>`tenancy.membership_role(${actingTenant}, ${params.userId}::uuid)`.as('role'),
    ),
  );

  return {
    /** The role of a user in an organization (null if not a member), in one statement. */
    async membershipRole(tenantId: string, userId: string): Promise<OrgRole | null> {
      return (await roleOf.executeTakeFirst({ tenantId, userId }))?.role ?? null;
    },

    /**
     * The role of a user in the organization `executor` acts in (null if not a member, or none).
     * With SHARDS, a transaction of an organization on a shard runs there, where memberships are
     * not (tenancy stays on the primary): its organization's role is then read on the primary.
     */
    async memberRole(executor: Kysely<unknown>, userId: string): Promise<OrgRole | null> {
      const tenantId = settingsOfExecutor(executor)?.[TENANT_ID_SETTING];
      if (tenantId !== undefined && tenantId !== '') {
        const shard = await db.shardOf(tenantId);
        if (shard !== undefined && shard !== PRIMARY_SHARD)
          return (await roleOf.executeTakeFirst({ tenantId, userId }))?.role ?? null;
      }
      return (await roleInActingTenant.executeTakeFirst({ userId }, executor))?.role ?? null;
    },

    async insertOrganization(
      org: { id: string; name: string; slug: string; createdBy: string },
      trx: Trx,
    ): Promise<boolean> {
      const result = await trx
        .insertInto('tenancy.organizations')
        .values({ id: org.id, name: org.name, slug: org.slug, created_by: org.createdBy })
        .onConflict((conflict) => conflict.column('slug').doNothing())
        .executeTakeFirst();
      return result.numInsertedOrUpdatedRows === 1n;
    },

    async insertMembership(
      membership: { tenantId: string; userId: string; role: OrgRole },
      trx: Trx,
    ): Promise<boolean> {
      const result = await trx
        .insertInto('tenancy.memberships')
        .values({ tenant_id: membership.tenantId, user_id: membership.userId, role: membership.role })
        .onConflict((conflict) => conflict.columns(['tenant_id', 'user_id']).doNothing())
        .executeTakeFirst();
      return result.numInsertedOrUpdatedRows === 1n;
    },

    /** Organizations the acting user belongs to, with their role. */
    listForUser(userId: string, trx: Executor) {
      return trx
        .selectFrom('tenancy.memberships as m')
        .innerJoin('tenancy.organizations as o', 'o.id', 'm.tenant_id')
        .select(['o.id', 'o.name', 'o.slug', 'o.created_at', 'm.role'])
        .where('m.user_id', '=', userId)
        .orderBy('o.created_at')
        .execute();
    },

    /**
     * Every organization in slug order with its number of members, a page after the slug
     * `after`, for operators: run it on an executor presenting `app.operator_read` (see
     * OPERATOR_READ), the only way past row-level security to other tenants' organizations.
     * `search` matches part of the name or slug, case-insensitively.
     */
    listAll(
      options: { search?: string | undefined; after?: string | undefined; limit: number },
      executor: Executor,
    ) {
      let query = executor
        .selectFrom('tenancy.organizations as o')
        .select([
          'o.id',
          'o.name',
          'o.slug',
          'o.created_at',
          (eb) =>
            eb
              .selectFrom('tenancy.memberships as m')
              .select((count) => count.fn.countAll<string>().as('members'))
              .whereRef('m.tenant_id', '=', 'o.id')
              .as('members'),
        ])
        .orderBy('o.slug')
        .limit(options.limit);
      const search = options.search?.trim();
      if (search) {
        const pattern = `%${search.replace(/[\\%_]/g, (character) => `\\${character}`)}%`;
        query = query.where((eb) => eb.or([eb('o.name', 'ilike', pattern), eb('o.slug', 'ilike', pattern)]));
      }
      // Keyset pagination on the (unique) slug: stable while organizations are added or deleted.
      if (options.after !== undefined) query = query.where('o.slug', '>', options.after);
      return query.execute();
    },

    findOrganization(id: string, trx: Executor) {
      return trx.selectFrom('tenancy.organizations').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async renameOrganization(id: string, name: string, trx: Executor): Promise<void> {
      await trx.updateTable('tenancy.organizations').set({ name }).where('id', '=', id).execute();
    },

    /** The acting organization's memberships, oldest first. */
    listMembers(trx: Executor) {
      return trx
        .selectFrom('tenancy.memberships')
        .select(['user_id', 'role', 'created_at'])
        .where('tenant_id', '=', actingTenant)
        .orderBy('created_at')
        .execute();
    },

    /**
     * Serializes the membership changes of the acting organization until the transaction ends
     * (read the fresh memberships after it). Two changes that each check
     * then write (the last owner stays; only the owner transfers) would otherwise both pass their
     * checks on the same rows. A transaction-scoped advisory lock on the organization id, not row
     * locks: those would need the update policy, which a member leaving does not pass.
     */
    async lockMemberships(trx: Trx): Promise<void> {
      await lockUntilTransactionEnds(trx, `tenancy.memberships:${actingTenant}`);
    },

    findMembership(userId: string, trx: Executor) {
      return trx
        .selectFrom('tenancy.memberships')
        .selectAll()
        .where('tenant_id', '=', actingTenant)
        .where('user_id', '=', userId)
        .executeTakeFirst();
    },

    async setRole(userId: string, role: OrgRole, trx: Trx): Promise<void> {
      await trx.updateTable('tenancy.memberships').set({ role }).where('user_id', '=', userId).execute();
    },

    async deleteMembership(userId: string, trx: Trx): Promise<boolean> {
      const result = await trx
        .deleteFrom('tenancy.memberships')
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return result.numDeletedRows === 1n;
    },

    async countOwners(trx: Trx): Promise<number> {
      const row = await trx
        .selectFrom('tenancy.memberships')
        .select((eb) => eb.fn.countAll<string>().as('owners'))
        .where('tenant_id', '=', actingTenant)
        .where('role', '=', 'owner')
        .executeTakeFirst();
      return Number(row?.owners ?? 0);
    },

    async insertInvitation(
      invitation: {
        id: string;
        tenantId: string;
        email: string;
        role: Exclude<OrgRole, 'owner'>;
        tokenHash: string;
        /** Null: the operator invited (it has no account). */
        invitedBy: string | null;
        expiresAt: Date;
      },
      trx: Trx,
    ): Promise<void> {
      await trx
        .insertInto('tenancy.invitations')
        .values({
          id: invitation.id,
          tenant_id: invitation.tenantId,
          email: invitation.email,
          role: invitation.role,
          token_hash: invitation.tokenHash,
          invited_by: invitation.invitedBy,
          expires_at: invitation.expiresAt,
          accepted_at: null,
          accepted_by: null,
          revoked_at: null,
        })
        .execute();
    },

    listPendingInvitations(now: Date, trx: Executor) {
      return trx
        .selectFrom('tenancy.invitations')
        .select(['id', 'email', 'role', 'expires_at', 'created_at'])
        .where('accepted_at', 'is', null)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .orderBy('created_at')
        .execute();
    },

    async revokeInvitation(id: string, at: Date, trx: Executor): Promise<boolean> {
      const result = await trx
        .updateTable('tenancy.invitations')
        .set({ revoked_at: at })
        .where('id', '=', id)
        .where('accepted_at', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },

    /** The invitation of a token; the transaction must present `app.invitation_token_hash`. */
    invitationByToken(tokenHash: string, trx: Trx) {
      return trx
        .selectFrom('tenancy.invitations')
        .selectAll()
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst();
    },

    /** Marks an invitation accepted unless it already was (two accepts racing): true if this one won. */
    async markInvitationAccepted(id: string, userId: string, at: Date, trx: Trx): Promise<boolean> {
      const result = await trx
        .updateTable('tenancy.invitations')
        .set({ accepted_at: at, accepted_by: userId })
        .where('id', '=', id)
        .where('accepted_at', 'is', null)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows === 1n;
    },

    /** Acts in another organization for the rest of the transaction (after proving the right to). */
    async actIn(tenantId: string, trx: Trx): Promise<void> {
      await sql`select set_config(${TENANT_ID_SETTING}, ${tenantId}, true)`.execute(trx);
    },
  };
}

export type OrganizationsStore = ReturnType<typeof createOrganizationsStore>;
