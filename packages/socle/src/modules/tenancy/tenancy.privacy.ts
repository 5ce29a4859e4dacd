import type { Database } from '../../kernel/index.js';
import { type PrivacyHooks, withOwnerTransaction } from '../../kernel/index.js';

/**
 * Memberships and invitations. Erasure removes the person from every organization: one they
 * were the only member of is deleted (with its data); one they were the last owner of gets its
 * longest-standing remaining member as owner, so no organization is left without one.
 */
export function createTenancyPrivacy(db: Pick<Database, 'withConnection'>): PrivacyHooks {
  return {
    exportSubject: (subject) =>
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
    // API keys belong to the organization, but the person who minted one has seen it: the keys
    // they created are revoked with the rest of their credentials (they leave the organization's
    // list of keys; an admin mints a new one if an integration needs it). Other nodes stop
    // accepting a key they verified in the last 5 seconds within 5 seconds, as for any revocation.
    revokeAccess: (subject) =>
      withOwnerTransaction(db, async (connection) => {
        await connection.query(
          'update tenancy.api_keys set revoked_at = now() where created_by = $1 and revoked_at is null',
          [subject.userId],
        );
      }),
    eraseSubject: (subject) =>
      withOwnerTransaction(db, async (connection) => {
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
            await connection.query('delete from tenancy.organizations where id = $1', [row.tenant_id]);
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
      }),
  };
}
