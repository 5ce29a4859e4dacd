import { randomUUID } from 'node:crypto';
import type { PrivacySubject, SetupContext } from '../../kernel/index.js';
import { isUuid, withOwnerTransaction } from '../../kernel/index.js';
import { privacyErrors } from './privacy.errors.js';

/** The archive of everything Socle holds about one person (GDPR art. 15 and 20). */
export interface SubjectExport {
  readonly subject: { readonly userId: string; readonly email: string };
  readonly exportedAt: string;
  /** Each module's part, by module name. */
  readonly modules: Readonly<Record<string, unknown>>;
}

export interface ErasureResult {
  readonly runId: string;
  readonly userId: string;
  /** Modules erased by this call (those done by an earlier, interrupted run are skipped). */
  readonly erasedNow: readonly string[];
}

/**
 * Export and erasure across every module that declares privacy hooks. Erasure walks modules in
 * reverse dependency order (apps first, identity last), records each finished module in
 * `privacy.erasure_runs`, and resumes an unfinished run instead of starting over.
 */
export function createPrivacyService(context: SetupContext) {
  const { db, clock, log } = context;
  // Each module's hooks are built by the kernel from that module's own context and services.
  const hooksOf = () => context.privacyHooks().map(({ module, hooks }) => ({ name: module, hooks }));

  return {
    /** Finds a person by user id or email (CLI: `--user <id|email>`). */
    async findSubject(reference: string): Promise<PrivacySubject> {
      const byId = isUuid(reference);
      const row = await withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query<{ id: string; email: string }>(
          `select id, email from identity.users where ${byId ? 'id = $1::uuid' : 'email = lower(trim($1))'}`,
          [reference],
        );
        return rows[0];
      });
      if (row === undefined) throw privacyErrors.subjectNotFound(reference);
      return { userId: row.id, email: row.email };
    },

    async export(subject: PrivacySubject): Promise<SubjectExport> {
      const modules: Record<string, unknown> = {};
      for (const { name, hooks } of hooksOf()) modules[name] = await hooks.exportSubject(subject);
      return { subject, exportedAt: clock.now().toISOString(), modules };
    },

    async erase(subject: PrivacySubject): Promise<ErasureResult> {
      const run = await withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query<{ id: string; email: string; completed_modules: string[] }>(
          `select id, email, completed_modules from privacy.erasure_runs
            where user_id = $1 and completed_at is null order by started_at limit 1 for update`,
          [subject.userId],
        );
        if (rows[0] !== undefined) return rows[0];
        const id = randomUUID();
        await connection.query('insert into privacy.erasure_runs (id, user_id, email) values ($1, $2, $3)', [
          id,
          subject.userId,
          subject.email,
        ]);
        return { id, email: subject.email, completed_modules: [] as string[] };
      });
      // The email recorded when the run started: a resumed run must not see the pseudonym.
      const original: PrivacySubject = { userId: subject.userId, email: run.email };
      // Fence first: once this loop is done no credential of the person works on any node, so no
      // request of theirs writes anything while (or after) the modules erase.
      for (const { name, hooks } of hooksOf()) {
        if (hooks.revokeAccess === undefined) continue;
        try {
          await hooks.revokeAccess(original);
        } catch (error) {
          throw privacyErrors.moduleFailed(name, error);
        }
      }
      const erasedNow: string[] = [];
      for (const { name, hooks } of hooksOf().reverse()) {
        if (run.completed_modules.includes(name)) continue;
        try {
          await hooks.eraseSubject(original);
        } catch (error) {
          await withOwnerTransaction(db, (connection) =>
            connection.query('update privacy.erasure_runs set last_error = $2 where id = $1', [
              run.id,
              `${name}: ${error instanceof Error ? error.message : String(error)}`,
            ]),
          );
          throw privacyErrors.moduleFailed(name, error);
        }
        await withOwnerTransaction(db, (connection) =>
          connection.query(
            'update privacy.erasure_runs set completed_modules = array_append(completed_modules, $2) where id = $1',
            [run.id, name],
          ),
        );
        erasedNow.push(name);
      }
      await withOwnerTransaction(db, (connection) =>
        connection.query(
          'update privacy.erasure_runs set completed_at = now(), last_error = null where id = $1',
          [run.id],
        ),
      );
      log.info({ userId: subject.userId, runId: run.id, erasedNow }, 'Personal data erased');
      return { runId: run.id, userId: subject.userId, erasedNow };
    },
  };
}

export type PrivacyService = ReturnType<typeof createPrivacyService>;
