import type { Database, SqlConnection } from '../db/index.js';

/** The person an export or an erasure is about. */
export interface PrivacySubject {
  readonly userId: string;
  /** The email at the time the request started (erasure pseudonymizes it last). */
  readonly email: string;
}

/**
 * What a module implements so Socle can answer GDPR requests (art. 15 and 20: export; art. 17:
 * erasure) for everything it stores. Every module holding personal data implements both.
 */
export interface PrivacyHooks {
  /** Everything this module holds about the subject, as JSON. */
  exportSubject(subject: PrivacySubject): Promise<unknown>;
  /**
   * Deletes or pseudonymizes it. Must be idempotent: an erasure interrupted by a crash runs it
   * again, and a second erasure of the same person must succeed.
   */
  eraseSubject(subject: PrivacySubject): Promise<void>;
  /**
   * Stops every credential the person holds in this module (tokens, keys), before any module
   * erases anything: an erasure first fences the person out, so nothing new is written in their
   * name while their data is being erased. Runs for every module with the hook, at the start of
   * each run (a resumed one too), so it must be idempotent.
   */
  revokeAccess?(subject: PrivacySubject): Promise<void>;
}

/**
 * Runs `work` in one transaction as the owner role: privacy operations span every tenant (a
 * person belongs to several organizations), so they work beneath row-level security. Only the
 * privacy hooks use it.
 */
export async function withOwnerTransaction<T>(
  db: Pick<Database, 'withConnection'>,
  work: (connection: SqlConnection) => Promise<T>,
): Promise<T> {
  return db.withConnection(async (connection) => {
    await connection.execute('begin');
    try {
      const result = await work(connection);
      await connection.execute('commit');
      return result;
    } catch (error) {
      await connection.execute('rollback').catch(() => undefined);
      throw error;
    }
  }, 'owner');
}
