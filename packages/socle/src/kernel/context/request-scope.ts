import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who is acting in the current request (or job): filled by the identity module once it has
 * authenticated the caller. Every database transaction opened while it is current, and every
 * statement run outside a transaction, carries `app.tenant_id` and `app.user_id`, which
 * row-level-security policies read.
 */
export interface RequestScope {
  /** The organization (tenant) the request acts in, if any. */
  tenantId?: string | undefined;
  /** The authenticated user, if any. */
  userId?: string | undefined;
}

/** Access to the scope of the current async context. */
export interface ScopeAccess {
  /** The current scope; undefined outside a request or `run`. */
  current(): RequestScope | undefined;
  /** Runs `work` with its own scope (jobs, CLI commands, tests); requests get one automatically. */
  run<T>(scope: RequestScope, work: () => T): T;
  /** Transaction settings of the current scope, for the database's context provider. */
  transactionSettings(): Readonly<Record<string, string>> | undefined;
}

/** The transaction setting row-level-security policies read as the acting tenant (`app.tenant_id()`). */
export const TENANT_ID_SETTING = 'app.tenant_id';
/** The transaction setting row-level-security policies read as the acting user (`app.user_id()`). */
export const USER_ID_SETTING = 'app.user_id';

/**
 * The transaction settings that make the database act for this tenant and user (row-level
 * security): the one place their names are spelled. An undefined field sets nothing; an empty
 * string acts in no tenant.
 *
 * @example
 * await db.transaction(work, { settings: tenantSettings({ tenantId: org.id, userId }) });
 */
export function tenantSettings(scope: RequestScope): Record<string, string> {
  const settings: Record<string, string> = {};
  if (scope.tenantId !== undefined) settings[TENANT_ID_SETTING] = scope.tenantId;
  if (scope.userId !== undefined) settings[USER_ID_SETTING] = scope.userId;
  return settings;
}

/**
 * The scope transaction settings act for (the inverse of {@link tenantSettings}): an empty string
 * acts in no tenant (or as no user).
 */
export function scopeOfSettings(settings: Readonly<Record<string, string>>): RequestScope {
  const tenantId = settings[TENANT_ID_SETTING];
  const userId = settings[USER_ID_SETTING];
  return {
    ...(tenantId ? { tenantId } : {}),
    ...(userId ? { userId } : {}),
  };
}

export function createScopeAccess(): ScopeAccess {
  const storage = new AsyncLocalStorage<RequestScope>();
  return {
    current: () => storage.getStore(),
    run: (scope, work) => storage.run(scope, work),
    transactionSettings() {
      const scope = storage.getStore();
      if (scope === undefined || (scope.tenantId === undefined && scope.userId === undefined))
        return undefined;
      return tenantSettings(scope);
    },
  };
}
