import type { Database } from '../../kernel/index.js';
import { type PrivacyHooks, withOwnerTransaction } from '../../kernel/index.js';

/** The action of the event an organization logs when erasure removes one of its members. */
export const MEMBER_ERASED_ACTION = 'member.erased';

/**
 * Actions the person took. The audit trail itself stays (organizations keep it under their
 * legitimate interest); erasure pseudonymizes it: the actor, IP and user agent are removed.
 * Only the owner role may change audit events, which is the role this runs as.
 */
export function createAuditPrivacy(
  db: Pick<Database, 'withConnection'>,
  flushPending: () => Promise<void>,
): PrivacyHooks {
  return {
    exportSubject: async (subject) => {
      await flushPending();
      return withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query(
          `select occurred_at as "occurredAt", tenant_id as "orgId", action, status, ip, user_agent as "userAgent"
             from audit.events where actor_user_id = $1 order by occurred_at`,
          [subject.userId],
        );
        return { actions: rows };
      });
    },
    eraseSubject: async (subject) => {
      await flushPending();
      await withOwnerTransaction(db, async (connection) => {
        // Each organization the person leaves by erasure logs it (its admins see who left), before
        // the tenancy module, which erases after this one (it is a dependency), removes the
        // memberships. The event names the account by its id only (the target as the capture of a
        // request writes path parameters: compact JSON); it has no actor.
        await connection.query(
          `insert into audit.events (id, tenant_id, action, target, status)
           select gen_random_uuid(), m.tenant_id, '${MEMBER_ERASED_ACTION}', '{"userId":"' || m.user_id || '"}', 200
             from tenancy.memberships m
            where m.user_id = $1`,
          [subject.userId],
        );
        await connection.query(
          'update audit.events set actor_user_id = null, ip = null, user_agent = null where actor_user_id = $1',
          [subject.userId],
        );
      });
    },
  };
}
