import { setTimeout as delay } from 'node:timers/promises';
import { type Compilable, type IsolationLevel, Kysely, sql, type Transaction } from 'kysely';
import { TENANT_ID_SETTING } from '../context/index.js';
import {
  type DatabaseBackend,
  type Dialect,
  type PoolStatistics,
  type Privilege,
  type SettingEntries,
  type SqlConnection,
  withBackendSession,
} from './backend.js';
import { isTransactionConflict } from './database-errors.js';
import {
  createKyselyDialect,
  createStatementRunner,
  pendingTransactionSettings,
  type ScopeSettingsSource,
  type SettingsHandoff,
  withSettingsHandoff,
} from './kysely-dialect.js';
import { type PreparedQuery, prepareQuery } from './prepared-query.js';
import { formatLsn, noteWrite, type ReadRouter, type ReplicaStatus } from './read-routing.js';
import { PRIMARY_SHARD, type ShardRouter } from './shard-routing.js';
import { markTenantDeleted, purgeDeletedTenants } from './tenant-deletion.js';

/** Transaction-local settings (`set_config(name, value, true)`), e.g. `app.tenant_id`. */
export type TransactionSettings = Readonly<Record<string, string>>;

export interface TransactionOptions {
  readonly isolation?: IsolationLevel;
  /**
   * Set with `set_config(name, value, true)` in the same round trip as BEGIN: visible to RLS
   * policies, gone at COMMIT. Values are strings without NUL characters.
   */
  readonly settings?: TransactionSettings;
  /**
   * How many times the whole transaction runs again when Postgres rolls it back because of a
   * concurrent one (a deadlock, 40P01, or a serialization failure, 40001): nothing of it was
   * written, so `work` starts over on a new transaction after a short random pause. `work` must
   * therefore have no effect outside the transaction (tell the world with `afterCommit`, which only
   * runs for the attempt that committed). Default 2; 0 lets the first conflict surface (the HTTP
   * layer answers 409 `db.conflict` with `Retry-After`), as does the last one when every retry loses.
   */
  readonly conflictRetries?: number;
}

/** Retries of a transaction that lost to a concurrent one (see TransactionOptions.conflictRetries). */
const DEFAULT_CONFLICT_RETRIES = 2;
/** Upper bound of the first retry's random pause; it doubles with each further attempt. */
const CONFLICT_BACKOFF_MS = 10;

/**
 * Supplies settings for every transaction opened in the current async context, and for every
 * statement run there outside a transaction (in its own implicit transaction). The tenancy
 * module installs one that returns `app.tenant_id` / `app.user_id` of the current request.
 */
export type TransactionContextProvider = () => TransactionSettings | undefined;

/**
 * The database as modules see it: a typed Kysely instance and transactions that carry the
 * tenant context. The same object runs on PGlite and on Postgres.
 *
 * @example
 * const db = ctx.db; // Database<{ 'quiz.rooms': RoomTable }>
 * await db.transaction(async (trx) => {
 *   await trx.insertInto('quiz.rooms').values({ id, name }).execute();
 * }, { settings: { 'app.tenant_id': tenantId } });
 */
export interface Database<Tables = unknown> {
  readonly dialect: Dialect;
  readonly location: string;
  /**
   * Queries outside a transaction: each statement commits on its own and carries the current
   * scope's settings (`app.tenant_id`, `app.user_id`) in its own implicit transaction, so
   * row-level security confines it to the request's tenant; on Postgres in the statement's one
   * round trip. Work of several statements that must agree belongs in `transaction`.
   */
  readonly kysely: Kysely<Tables>;
  /**
   * A Kysely for reads that may be stale: lists, searches, dashboards, history, anything a user
   * would not miss for a second after someone else's write. With `DATABASE_REPLICA_URLS` (or the
   * replicas of the tenant's shard in `SHARDS`), each statement goes to a streaming replica that
   * has replayed this client's last write there (read your writes) and is within the lag
   * threshold, else to the primary (of the shard); without replicas, and outside
   * a request (jobs, CLI), to the primary. Its statements run read-only everywhere (a write on it
   * fails, on the primary too) and carry the scope's settings like `kysely`'s; a transaction on it
   * is refused. A prepared query runs on it with `query.execute(params, db.replica)`.
   *
   * @example
   * const recent = await db.replica.selectFrom('notes.notes').selectAll().orderBy('created_at', 'desc').limit(50).execute();
   */
  readonly replica: Kysely<Tables>;
  /** Each configured replica (the primary's, then each shard's): in rotation or not, and why; its lag. Empty without replicas. */
  replicaStatus(): readonly ReplicaStatus[];
  /**
   * The primary's current WAL position, as `pg_lsn` text: what a client that has just written must
   * see from now on (the HTTP layer sends it back in the `socle-lsn` cookie). Undefined without replicas.
   */
  primaryPosition(): Promise<string | undefined>;
  /**
   * The current WAL position of `database` (`primary`, or a shard's name) when it has replicas,
   * else undefined: what read-your-writes hands a client that wrote there.
   */
  positionOf(database: string): Promise<string | undefined>;
  /** Whether any database (the primary or a shard) has replicas: read-your-writes is needed. */
  readonly hasReplicas: boolean;
  /** Reads every replica's position now instead of at the next check (tests, `socle` commands). */
  checkReplicas(): Promise<void>;
  transaction<T>(work: (trx: Transaction<Tables>) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Runs `work` once the transaction `executor` belongs to has committed, and never if it rolls
   * back: what tells the outside world about a write (a realtime message) without telling it about
   * one that did not happen. Queued work runs in order after COMMIT, before `transaction` resolves;
   * it handles its own failures (the data is committed: a rejection is ignored). On an executor
   * that is no transaction (`db.kysely`: each statement committed on its own) it runs now. Only
   * transactions opened by `transaction` are known: another one is refused with a TypeError.
   *
   * @example
   * await db.transaction(async (trx) => {
   *   await store.insertMessage(trx, message);
   *   await db.afterCommit(trx, () => realtime.publish({ channel, event: 'posted', data: message }));
   * });
   */
  afterCommit(executor: object, work: () => Promise<void>): Promise<void>;
  /**
   * Compiles a query once for a hot path; pass a transaction as `executor` to run it inside one.
   * Without one it runs as a single statement carrying the scope's settings (see `kysely`).
   *
   * @example
   * const findItem = db.prepare((db, p: { id: number }) =>
   *   db.selectFrom('shop.items').selectAll().where('id', '=', p.id));
   * const item = await findItem.executeTakeFirst({ id: 42 });
   */
  prepare<Params extends Record<string, unknown>, Row>(
    build: (db: Kysely<Tables>, params: Params) => Compilable<Row>,
  ): PreparedQuery<Params, Row>;
  /**
   * A Kysely instance whose statements each carry `settings` (over the scope's, as `transaction`
   * merges them) in their own implicit transaction: one round trip on Postgres, no BEGIN/COMMIT.
   * For a single statement that must act in a given tenant or as a given user whatever the
   * ambient scope says; work of several statements that must agree still belongs in
   * `transaction(work, { settings })`, and opening a transaction on this instance is refused.
   *
   * @example
   * const members = await store.listMembers(db.withSettings({ 'app.tenant_id': orgId, 'app.user_id': userId }));
   */
  withSettings(settings: TransactionSettings, options?: WithSettingsOptions): Kysely<Tables>;
  /** The same database, typed with a module's own tables. */
  withTables<Other>(): Database<Other>;
  /**
   * With `SHARDS`, statements acting for a tenant run on that tenant's shard. This is the same
   * database with every statement on the primary (`DATABASE_URL`, the directory) whatever tenant
   * it acts for: what modules whose tables are global (accounts, organizations) get as
   * `context.db`. Without shards, this database itself.
   */
  onPrimary(): Database<Tables>;
  /**
   * The shard a tenant's statements run on (`primary` when the directory places it on none), as
   * this process sees it now (cached `SHARDS_DIRECTORY_CACHE_MS`); undefined without `SHARDS`.
   * The same answer on `onPrimary()`.
   */
  shardOf(tenantId: string): Promise<string | undefined>;
  /**
   * The primary, then each shard of `SHARDS`, as databases that run every statement there whatever
   * organization it acts for; without `SHARDS`, this database alone. For a lookup by a key that
   * names no organization (a provider's webhook, a realtime app key): ask each in turn until one
   * has the row (what a tenant on a shard wrote is there). Rare lookups only: it costs a statement
   * per database for a key that is nowhere.
   *
   * @example
   * for (const database of db.everyDatabase()) {
   *   const app = await findApp.executeTakeFirst({ key }, database.kysely);
   *   if (app !== undefined) return app;
   * }
   */
  everyDatabase(): readonly Database<Tables>[];
  /**
   * Whether this database holds the rows of `tenantId`: on one of `everyDatabase()`, whether the
   * directory places the organization there (as this process sees it now); on the database that
   * routes by tenant (and without `SHARDS`), always true. For work that runs once per database
   * (privacy hooks with `SHARDS`) and must write a tenant's row only where the tenant lives.
   */
  holdsTenant(tenantId: string): Promise<boolean>;
  /**
   * With `SHARDS`, in the transaction (on the primary, as the owner) that deletes an organization:
   * marks its directory entry deleted, so that `purgeDeletedTenants` deletes its rows on its
   * shard (no foreign key reaches there) even after a crash. Does nothing without `SHARDS`.
   *
   * @example
   * await withOwnerTransaction(db, async (connection) => {
   *   await db.markTenantDeleted(connection, orgId);
   *   await connection.query('delete from tenancy.organizations where id = $1', [orgId]);
   * });
   * await db.purgeDeletedTenants();
   */
  markTenantDeleted(connection: SqlConnection, tenantId: string): Promise<void>;
  /**
   * With `SHARDS`: for every organization marked deleted, deletes its rows on its shard (every
   * table with `tenant_id`, and its jobs) and then its directory entry. Idempotent; run after the
   * deleting transaction commits, and at start (what a crash in between left). Returns the
   * organizations finished; none without `SHARDS`.
   */
  purgeDeletedTenants(): Promise<readonly string[]>;
  /** Installs the provider of per-transaction settings (one per process; the tenancy module's). */
  setTransactionContextProvider(provider: TransactionContextProvider | undefined): void;
  /**
   * Runs `work` on one session held for its duration (advisory locks, scripts). Kernel use;
   * `owner` is for migrations only.
   */
  withConnection<T>(work: (connection: SqlConnection) => Promise<T>, privilege?: Privilege): Promise<T>;
  /**
   * From now on, application sessions act as `role`, which owns no table: row-level security
   * policies apply to everything modules and apps do (the kernel enables it after migrations).
   */
  enableAppRole(role: string): void;
  /**
   * Embedded only (undefined on Postgres): subscribes to a NOTIFY channel of the in-process
   * database. Kernel use (the job engine's idle pickup).
   */
  readonly listen?: (
    channel: string,
    onNotification: (payload: string) => void,
  ) => Promise<() => Promise<void>>;
  /**
   * Embedded only (undefined on Postgres): the data directory as a gzipped tar, consistent while
   * the server runs (`socle backup`). On Postgres, `pg_dump` or a base backup does this.
   */
  readonly snapshot?: () => Promise<Uint8Array>;
  ping(): Promise<void>;
  statistics(): PoolStatistics;
  /** With `SHARDS`: each shard's pool usage, by shard name. Empty without. */
  shardStatistics(): readonly { readonly shard: string; readonly statistics: PoolStatistics }[];
  close(): Promise<void>;
}

const SETTING_NAME = /^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/;

/** Names that passed SETTING_NAME: a handful (`app.tenant_id`, `app.user_id`), checked on every statement. */
const validSettingNames = new Set<string>();

/** The settings as validated `[name, value]` pairs: a bad name or value is a programming error. */
function settingEntries(settings: TransactionSettings): SettingEntries {
  const entries = Object.entries(settings);
  for (const [name, value] of entries) {
    if (!validSettingNames.has(name)) {
      if (!SETTING_NAME.test(name))
        throw new TypeError(`Transaction setting "${name}" must look like "app.tenant_id"`);
      if (validSettingNames.size < 100) validSettingNames.add(name);
    }
    if (typeof value !== 'string' || value.includes('\0'))
      throw new TypeError(`Transaction setting "${name}" must be a string without NUL characters`);
  }
  return entries;
}

/**
 * The settings each open transaction (and each `withSettings` instance) carries, by executor: what
 * the job engine reads so a job enqueued in a transaction acts for that transaction's tenant and
 * user, not for whatever request happens to be current.
 */
const executorSettings = new WeakMap<object, () => Readonly<Record<string, string>>>();

/** Work queued by `afterCommit` for each open transaction of `db.transaction`. */
const commitQueues = new WeakMap<object, (() => Promise<void>)[]>();

/** Runs what was queued for after a commit, in order; a failure does not stop the rest. */
async function runAfterCommit(queue: readonly (() => Promise<void>)[]): Promise<void> {
  for (const work of queue) {
    try {
      await work();
    } catch {
      // Committed already: the work reports its own failures (see Database.afterCommit).
    }
  }
}

/**
 * The settings (`app.tenant_id`, `app.user_id`…) statements run on `executor` carry: a transaction
 * opened by `db.transaction` or an instance made by `db.withSettings`; undefined for anything else.
 */
export function settingsOfExecutor(executor: object): Readonly<Record<string, string>> | undefined {
  return executorSettings.get(executor)?.();
}

/** Reads on `db.replica` run in a read-only transaction wherever they land, so a write fails the same way on the primary. */
const READ_ONLY: SettingEntries = [['transaction_read_only', 'on']];

export interface WithSettingsOptions {
  /**
   * The statements are reads that may be stale: routed and refused writes as on `db.replica`.
   *
   * @example
   * const notes = await db.withSettings(tenantSettings({ tenantId }), { replica: true }).selectFrom('notes.notes').selectAll().execute();
   */
  readonly replica?: boolean;
}

export interface CreateDatabaseOptions {
  /** Replicas to send `db.replica` reads to (Postgres with `DATABASE_REPLICA_URLS`). */
  readonly readRouter?: ReadRouter;
  /** Pools of the replicas, closed with this database. */
  readonly replicaBackends?: readonly DatabaseBackend[];
  /**
   * Tenant shards (`SHARDS`): each statement acting for a tenant (its settings' `app.tenant_id`,
   * explicit or the scope's) leases a session of that tenant's shard. Its pools close with this database.
   */
  readonly shardRouter?: ShardRouter;
  /** Called each time a transaction that lost to a concurrent one is run again (a metric counts them). */
  readonly onConflictRetry?: () => void;
}

/** The tenant of `[name, value]` settings, if they name one. */
function tenantOfEntries(entries: SettingEntries): string | undefined {
  for (const [name, value] of entries) if (name === TENANT_ID_SETTING) return value;
  return undefined;
}

export function createDatabase(backend: DatabaseBackend, options: CreateDatabaseOptions = {}): Database {
  const { readRouter, shardRouter, onConflictRetry } = options;
  let contextProvider: TransactionContextProvider | undefined;
  let closing: Promise<void> | undefined;
  // Statements outside a transaction carry the current scope's settings (see BackendConnection).
  const scopeSettings = () => {
    const settings = contextProvider?.();
    return settings === undefined ? undefined : settingEntries(settings);
  };
  // Writes are noted only when replicas exist (the primary's or a shard's): nothing else needs to know.
  const shardReadRouters = shardRouter?.readRouters ?? new Map<string, ReadRouter>();
  const hasReplicas = readRouter !== undefined || shardReadRouters.size > 0;
  const onWrite = hasReplicas ? noteWrite : undefined;
  // With shards, every lease asks which tenant it acts for; without, the backend is used as it is
  // (nothing looked up, no wrapper: the single-database path is unchanged).
  const scopeTenant = () => contextProvider?.()?.[TENANT_ID_SETTING];
  const routed = (
    tenantOf: () => string | undefined,
    base: DatabaseBackend = backend,
    reads = false,
  ): DatabaseBackend => (shardRouter === undefined ? base : shardRouter.route(tenantOf, base, reads));
  // A transaction's session is leased before its BEGIN: the tenant is that of the settings it is
  // about to carry (explicit ones over the scope's); any other lease acts for the scope's tenant.
  const statementBackend = routed(() => {
    const pending = pendingTransactionSettings();
    return pending === undefined ? scopeTenant() : tenantOfEntries(pending);
  });
  const kysely = new Kysely<unknown>({
    dialect: createKyselyDialect(statementBackend, scopeSettings, { onWrite }),
  });
  const runStatement = createStatementRunner(statementBackend, scopeSettings, onWrite);
  const replica = new Kysely<unknown>({
    dialect: createKyselyDialect(
      routed(scopeTenant, readRouter?.reads ?? backend, true),
      () => {
        const scope = scopeSettings();
        return scope === undefined ? READ_ONLY : [...scope, ...READ_ONLY];
      },
      { refuseTransactions: true },
    ),
  });

  // Embedded: a lease asked for from inside a transaction that holds the only session fails at
  // once instead of deadlocking (see DatabaseBackend.holdingLease); a pool needs nothing.
  const holdingLease = <T>(work: () => Promise<T>): Promise<T> =>
    backend.holdingLease === undefined ? work() : backend.holdingLease(work);
  // One attempt of `transaction`: BEGIN with the settings, `work`, COMMIT, then the afterCommit queue.
  async function runTransaction<T>(
    work: (trx: Transaction<unknown>) => Promise<T>,
    options: TransactionOptions,
  ): Promise<T> {
    const settings = { ...contextProvider?.(), ...options.settings };
    const entries = settingEntries(settings);
    let builder = kysely.transaction();
    if (options.isolation) builder = builder.setIsolationLevel(options.isolation);
    const carried = () => settings;
    const queue: (() => Promise<void>)[] = [];
    let open: object | undefined;
    const begin = (trx: object) => {
      open = trx;
      executorSettings.set(trx, carried);
      commitQueues.set(trx, queue);
    };
    let result: Awaited<ReturnType<typeof work>>;
    try {
      if (entries.length === 0)
        result = await holdingLease(() =>
          builder.execute((trx) => {
            begin(trx);
            return work(trx);
          }),
        );
      else {
        // The driver sends the settings with BEGIN, in one round trip (see SettingsHandoff).
        const handoff: SettingsHandoff = { entries, claimed: false };
        result = await holdingLease(() =>
          withSettingsHandoff(handoff, () =>
            builder.execute(async (trx) => {
              begin(trx);
              if (!handoff.claimed) {
                handoff.claimed = true;
                await sql`select ${sql.join(entries.map(([name, value]) => sql`set_config(${name}, ${value}, true)`))}`.execute(
                  trx,
                );
              }
              return work(trx);
            }),
          ),
        );
      }
    } finally {
      // Committed or rolled back: nothing more may be queued on it.
      if (open !== undefined) commitQueues.delete(open);
    }
    if (queue.length > 0) await runAfterCommit(queue);
    return result;
  }

  const database: Database = {
    dialect: backend.dialect,
    location: backend.location,
    kysely,
    replica,
    replicaStatus: () => [
      ...(readRouter?.status() ?? []),
      ...[...shardReadRouters.values()].flatMap((router) => router.status()),
    ],
    async primaryPosition() {
      if (readRouter === undefined) return undefined;
      return formatLsn(await readRouter.primaryLsn());
    },
    async positionOf(name) {
      const router = name === PRIMARY_SHARD ? readRouter : shardReadRouters.get(name);
      return router === undefined ? undefined : formatLsn(await router.primaryLsn());
    },
    hasReplicas,
    async checkReplicas() {
      await Promise.all([
        readRouter?.check(),
        ...[...shardReadRouters.values()].map((router) => router.check()),
      ]);
    },
    async transaction(work, options = {}) {
      const retries = options.conflictRetries ?? DEFAULT_CONFLICT_RETRIES;
      for (let attempt = 0; ; attempt++) {
        try {
          return await runTransaction(work, options);
        } catch (error) {
          if (attempt >= retries || !isTransactionConflict(error)) throw error;
          onConflictRetry?.();
          // The winner usually commits within milliseconds; a random pause keeps two losers from
          // colliding again in step (full jitter, doubling per attempt, as AWS advises for retries).
          await delay(Math.random() * CONFLICT_BACKOFF_MS * 2 ** attempt);
        }
      }
    },
    afterCommit(executor, work) {
      const queue = commitQueues.get(executor);
      if (queue !== undefined) {
        queue.push(work);
        return Promise.resolve();
      }
      if ((executor as { isTransaction?: unknown }).isTransaction === true)
        throw new TypeError(
          'afterCommit needs a transaction opened by db.transaction (this one is unknown or already ended)',
        );
      return work();
    },
    prepare(build) {
      return prepareQuery(kysely, build, runStatement);
    },
    withSettings(settings, withOptions = {}) {
      // Checked now, so a bad name fails where it is written rather than at the first statement.
      const explicit = settingEntries(settings);
      const statementSettings: ScopeSettingsSource = () => {
        const scope = contextProvider?.();
        return scope === undefined ? explicit : settingEntries({ ...scope, ...settings });
      };
      // A Kysely of its own (about 1 µs to build, measured): its driver hands these settings to
      // every statement, whatever path runs it (builder, raw sql, a prepared query's executor).
      const explicitTenant = settings[TENANT_ID_SETTING];
      const instanceTenant = () => explicitTenant ?? scopeTenant();
      if (withOptions.replica === true)
        return new Kysely<unknown>({
          dialect: createKyselyDialect(
            routed(instanceTenant, readRouter?.reads ?? backend, true),
            () => [...(statementSettings() ?? []), ...READ_ONLY],
            {
              refuseTransactions: true,
            },
          ),
        });
      const instance = new Kysely<unknown>({
        dialect: createKyselyDialect(routed(instanceTenant), statementSettings, {
          refuseTransactions: true,
          onWrite,
        }),
      });
      executorSettings.set(instance, () => ({ ...contextProvider?.(), ...settings }));
      return instance;
    },
    withTables<Other>() {
      return database as unknown as Database<Other>;
    },
    onPrimary: () => primaryView ?? database,
    async shardOf(tenantId) {
      return shardRouter?.shardOf(tenantId);
    },
    everyDatabase: () => (primaryView === undefined ? [database] : [primaryView, ...shardViews]),
    holdsTenant: async () => true,
    async markTenantDeleted(connection, tenantId) {
      if (shardRouter !== undefined) await markTenantDeleted(connection, tenantId);
    },
    async purgeDeletedTenants() {
      if (shardRouter === undefined) return [];
      const done = await purgeDeletedTenants(backend, shardRouter.shards);
      for (const tenantId of done) shardRouter.forget(tenantId);
      return done;
    },
    setTransactionContextProvider(provider) {
      contextProvider = provider;
      primaryView?.setTransactionContextProvider(provider);
      for (const view of shardViews) view.setTransactionContextProvider(provider);
    },
    enableAppRole(role) {
      backend.setAppRole(role);
      for (const replicaBackend of options.replicaBackends ?? []) replicaBackend.setAppRole(role);
      for (const shardBackend of shardRouter?.shards.values() ?? []) shardBackend.setAppRole(role);
      for (const replicaBackend of shardRouter?.replicaBackends ?? []) replicaBackend.setAppRole(role);
    },
    ...(backend.listen === undefined ? {} : { listen: backend.listen.bind(backend) }),
    ...(backend.snapshot === undefined ? {} : { snapshot: backend.snapshot.bind(backend) }),
    withConnection(work, privilege = 'app') {
      return holdingLease(() => withBackendSession(backend, privilege, work));
    },
    async ping() {
      await database.withConnection((connection) => connection.query('select 1'));
    },
    statistics: () => backend.statistics(),
    shardStatistics: () =>
      [...(shardRouter?.shards ?? new Map<string, DatabaseBackend>())].map(([shard, shardBackend]) => ({
        shard,
        statistics: shardBackend.statistics(),
      })),
    close() {
      closing ??= (async () => {
        await readRouter?.close();
        await Promise.all((options.replicaBackends ?? []).map((replicaBackend) => replicaBackend.close()));
        await shardRouter?.close();
        await backend.close();
      })();
      return closing;
    },
  };
  // The same pools without shard routing, for global modules; closed with this database.
  const primaryView: Database | undefined =
    shardRouter === undefined
      ? undefined
      : Object.assign(createDatabase(backend, readRouter === undefined ? {} : { readRouter }), {
          close: () => database.close(),
          // Where a tenant's statements go is the installation's answer, whichever view asks.
          shardOf: database.shardOf,
          markTenantDeleted: database.markTenantDeleted,
          everyDatabase: () => database.everyDatabase(),
          holdsTenant: async (tenantId: string) => (await shardRouter.shardOf(tenantId)) === PRIMARY_SHARD,
          purgeDeletedTenants: database.purgeDeletedTenants,
        });
  // Each shard on its own, for lookups outside any organization (everyDatabase); its pool is the
  // router's, closed with this database.
  const shardViews: Database[] = [...(shardRouter?.shards ?? [])].map(([name, shardBackend]) =>
    Object.assign(createDatabase(shardBackend), {
      close: async () => {},
      holdsTenant: async (tenantId: string) => (await shardRouter?.shardOf(tenantId)) === name,
    }),
  );
  return database;
}
