import {
  type Database,
  type PrivacySubject,
  type SqlConnection,
  withOwnerTransaction,
} from '../../kernel/index.js';

/**
 * SQL of what tenancy holds about one person across every organization (memberships,
 * invitations, the API keys they minted), for export and erasure, as the owner role: a person
 * belongs to several organizations, so this works beneath row-level security.
 */
export function createPersonalDataStore(
  db: Pick<Database, 'withConnection' | 'markTenantDeleted' | 'purgeDeletedTenants'>,
) {
  return {
    /** The ids of the organizations the person is a member of. */
    organizationIdsOf: (userId: string): Promise<string[]> =>
      withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query<{ tenant_id: string }>(
          'select tenant_id from tenancy.memberships where user_id = $1 order by created_at',
          [userId],
        );
        return rows.map((row) => row.tenant_id);
      }),

    /** Memberships and invitations received, as the export shows them. */
    exportMemberships: (subject: PrivacySubject) =>
      withOwnerTransaction(db, async (connection) => {
        const { rows: memberships } = await connection.query(
          `select o.id as "orgId", o.name, m.role, m.created_at as "joinedAt"
             from tenancy.memberships m join tenancy.organizations o on o.id = m.tenant_id
            where m.user_id = $1 order by m.created_at`,
          [subject.userId],
        );
        const { rows: invitations } = await connection.query(
          `select i.tenant_id as "orgId", i.role, i.created_at as "createdAt", i.accepted_at as "acceptedAt"
             from tenancy.invitations i where i.email = $1 order by i.created_at`,
          [subject.email],
        );
        return { memberships, invitationsReceived: invitations };
      }),

    /** Revokes every API key the person created, in every organization. */
    async revokeApiKeysCreatedBy(userId: string): Promise<void> {
      await withOwnerTransaction(db, async (connection) => {
        await connection.query(
          'update tenancy.api_keys set revoked_at = now() where created_by = $1 and revoked_at is null',
          [userId],
        );
      });
    },

    /**
     * Removes the person from every organization: one they were the only member of is deleted
     * (with its data: returned, for what lies outside the database); one they were the last owner of gets its longest-standing remaining member
     * (admins first) as owner. Deletes the invitations sent to their email. `whileDeleting` runs in
     * the deleting transaction for each organization deleted (what must commit with its deletion:
     * the job that removes what lies outside its rows).
     */
    async eraseMemberships(
      subject: PrivacySubject,
      whileDeleting: (connection: SqlConnection, tenantId: string) => Promise<void>,
    ): Promise<string[]> {
      const deleted: string[] = [];
      await withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query<{
          tenant_id: string;
          role: string;
          members: number;
          owners: number;
        }>(
          `select m.tenant_id, m.role,
                  (select count(*)::int from tenancy.memberships x where x.tenant_id = m.tenant_id) as members,
                  (select count(*)::int from tenancy.memberships x where x.tenant_id = m.tenant_id and x.role = 'owner') as owners
             from tenancy.memberships m where m.user_id = $1`,
          [subject.userId],
        );
        for (const row of rows) {
          if (row.members === 1) {
            // With SHARDS its rows on its shard (no foreign key reaches there) go after the commit.
            await db.markTenantDeleted(connection, row.tenant_id);
            await connection.query('delete from tenancy.organizations where id = $1', [row.tenant_id]);
            await whileDeleting(connection, row.tenant_id);
            deleted.push(row.tenant_id);
            continue;
          }
          if (row.role === 'owner' && row.owners === 1) {
            await connection.query(
              `update tenancy.memberships set role = 'owner'
                where (tenant_id, user_id) = (
                  select tenant_id, user_id from tenancy.memberships
                   where tenant_id = $1 and user_id <> $2
                   order by case role when 'admin' then 0 when 'member' then 1 else 2 end, created_at limit 1)`,
              [row.tenant_id, subject.userId],
            );
          }
          await connection.query('delete from tenancy.memberships where tenant_id = $1 and user_id = $2', [
            row.tenant_id,
            subject.userId,
          ]);
        }
        await connection.query('delete from tenancy.invitations where email = $1', [subject.email]);
      });
      // Also what an earlier run left (a shard unreachable then): an erasure resumed finishes it.
      await db.purgeDeletedTenants();
      return deleted;
    },
  };
}

export type PersonalDataStore = ReturnType<typeof createPersonalDataStore>;
