import type { PrivacySubject, SetupContext } from '../../kernel/index.js';
import type { IdentityServices } from '../identity/index.js';
import { privacyErrors } from './privacy.errors.js';
import { createErasureRunsStore } from './privacy.store.js';

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
  const runs = createErasureRunsStore(db);
  // Each module's hooks are built by the kernel from that module's own context and services.
  const hooksOf = () => context.privacyHooks().map(({ module, hooks }) => ({ name: module, hooks }));

  const service = {
    /** Finds a person by user id or email (CLI: `--user <id|email>`), through the identity module. */
    async findSubject(reference: string): Promise<PrivacySubject> {
      const subject = await context.servicesOf<IdentityServices>('identity').findPrivacySubject(reference);
      if (subject === undefined) throw privacyErrors.subjectNotFound(reference);
      return subject;
    },

    async export(subject: PrivacySubject): Promise<SubjectExport> {
      const modules: Record<string, unknown> = {};
      for (const { name, hooks } of hooksOf()) modules[name] = await hooks.exportSubject(subject);
      return { subject, exportedAt: clock.now().toISOString(), modules };
    },

    /**
     * An operator's erasure of `userId`, confirmed by the account's email typed again (trimmed,
     * any case). An interrupted erasure is confirmed by the email it started with (identity may
     * have pseudonymized the account's own already) and resumed; an account already erased has
     * nothing left to confirm against or to erase: the earlier run is the answer, nothing is run.
     */
    async eraseConfirmed(userId: string, confirmEmail: string): Promise<ErasureResult> {
      const subject = await service.findSubject(userId);
      const latest = await runs.latest(subject.userId);
      if (latest?.completed === true) return { runId: latest.id, userId: subject.userId, erasedNow: [] };
      // Emails are stored trimmed and lower-cased (identity's normalizeEmail).
      const typed = confirmEmail.trim().normalize('NFKC').toLowerCase();
      const expected = latest?.email ?? subject.email;
      if (typed !== expected) throw privacyErrors.confirmationMismatch();
      return service.erase(subject);
    },

    async erase(subject: PrivacySubject): Promise<ErasureResult> {
      const run = await runs.startOrResume(subject);
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
          await runs.recordError(
            run.id,
            `${name}: ${error instanceof Error ? error.message : String(error)}`,
          );
          throw privacyErrors.moduleFailed(name, error);
        }
        await runs.recordModuleErased(run.id, name);
        erasedNow.push(name);
      }
      await runs.finish(run.id);
      log.info({ userId: subject.userId, runId: run.id, erasedNow }, 'Personal data erased');
      return { runId: run.id, userId: subject.userId, erasedNow };
    },
  };
  return service;
}

export type PrivacyService = ReturnType<typeof createPrivacyService>;
