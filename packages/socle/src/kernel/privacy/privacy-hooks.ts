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
  /**
   * An organization was deleted (today: the erasure of its only member), after the transaction
   * that deleted it committed: removes what this module keeps of it that no foreign key cascades
   * to (bytes in the blob store, rows of tables without a reference to the organization).
   * Idempotent.
   */
  organizationDeleted?(tenantId: string): Promise<void>;
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

/**
 * With `SHARDS`, a tenant module's rows about a person are on every database where one of their
 * organizations lives, and its hooks (written for one database, as the owner) see only the one
 * they were built with. The kernel builds them once per database (`everyDatabase()`: the primary,
 * then each shard) and joins them here: revocation and erasure run on each in turn (each is
 * idempotent, so a retry after a failure on one shard redoes the others harmlessly), and the
 * exports are merged (see {@link mergeExports}).
 */
export function combinePrivacyHooks(perDatabase: readonly PrivacyHooks[]): PrivacyHooks {
  if (perDatabase.length === 1) return perDatabase[0] as PrivacyHooks;
  const revoking = perDatabase.filter((hooks) => hooks.revokeAccess !== undefined);
  const cleaning = perDatabase.filter((hooks) => hooks.organizationDeleted !== undefined);
  return {
    async exportSubject(subject) {
      const parts: unknown[] = [];
      for (const hooks of perDatabase) parts.push(await hooks.exportSubject(subject));
      return mergeExports(parts);
    },
    async eraseSubject(subject) {
      for (const hooks of perDatabase) await hooks.eraseSubject(subject);
    },
    ...(cleaning.length === 0
      ? {}
      : {
          async organizationDeleted(tenantId) {
            for (const hooks of cleaning) await hooks.organizationDeleted?.(tenantId);
          },
        }),
    ...(revoking.length === 0
      ? {}
      : {
          async revokeAccess(subject) {
            for (const hooks of revoking) await hooks.revokeAccess?.(subject);
          },
        }),
  };
}

/**
 * One export from the exports of the same module on several databases: lists are concatenated
 * (the primary's rows first, then each shard's), objects merged key by key the same way, and any
 * other value is the first database's (a module's export is its rows, grouped by kind).
 */
export function mergeExports(parts: readonly unknown[]): unknown {
  const [first] = parts;
  if (parts.every(Array.isArray)) return (parts as unknown[][]).flat();
  if (parts.every(isPlainObject)) {
    const merged: Record<string, unknown> = {};
    for (const key of new Set(parts.flatMap((part) => Object.keys(part as object))))
      merged[key] = mergeExports(
        parts.map((part) => (part as Record<string, unknown>)[key]).filter((value) => value !== undefined),
      );
    return merged;
  }
  return first;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
