import type { Database } from '../../kernel/db/index.js';
import { type PrivacyHooks, withOwnerTransaction } from '../../kernel/privacy/index.js';

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
        await connection.query(
          'update audit.events set actor_user_id = null, ip = null, user_agent = null where actor_user_id = $1',
          [subject.userId],
        );
      });
    },
  };
}
