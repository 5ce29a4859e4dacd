import { type Database, withOwnerTransaction } from '../../kernel/index.js';

/**
 * SQL of a person's actions across every organization, for export and erasure (the privacy
 * hooks), as the owner role: beneath row-level security, and the only role that may change events.
 */
export function createPersonalDataStore(db: Pick<Database, 'withConnection' | 'holdsTenant'>) {
  return {
    /** The actions the person took, oldest first. */
    actionsOf: (userId: string) =>
      withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query(
          `select occurred_at as "occurredAt", tenant_id as "orgId", action, status, ip, user_agent as "userAgent"
             from audit.events where actor_user_id = $1 order by occurred_at`,
          [userId],
        );
        return rows;
      }),

    /**
     * In one transaction: logs `action` in each of `tenantIds`, naming the account by its id only
     * (the target as the capture of a request writes path parameters: compact JSON), without an
     * actor; then removes the person's id, IP and user agent from the events they acted in.
     */
    async pseudonymizeActor(userId: string, action: string, tenantIds: readonly string[]): Promise<void> {
      // With SHARDS this runs on every database: each organization's event goes only where it lives.
      const here: string[] = [];
      for (const tenantId of tenantIds) if (await db.holdsTenant(tenantId)) here.push(tenantId);
      await withOwnerTransaction(db, async (connection) => {
        await connection.query(
          `insert into audit.events (id, tenant_id, action, target, status)
           select gen_random_uuid(), t.tenant_id::uuid, $1, $2, 200 from jsonb_array_elements_text($3::jsonb) as t(tenant_id)`,
          [action, JSON.stringify({ userId }), JSON.stringify(here)],
        );
        await connection.query(
          'update audit.events set actor_user_id = null, ip = null, user_agent = null where actor_user_id = $1',
          [userId],
        );
      });
    },
  };
}

export type PersonalDataStore = ReturnType<typeof createPersonalDataStore>;
