import type { Clock } from '../clock/index.js';
import { SocleError } from '../errors/index.js';
import {
  type DatabaseBackend,
  type LeasedConnection,
  type Privilege,
  type SettingEntries,
  type SqlResult,
  withBackendSession,
} from './backend.js';
import { PRIMARY_DATABASE, type ReadRouter } from './read-routing.js';

/** The directory's name for `DATABASE_URL`: a tenant without a directory row lives there. */
export const PRIMARY_SHARD = PRIMARY_DATABASE;

/**
 * SQLSTATE raised by the trigger a tenant move installs on the tenant's old shard, for a write of a
 * tenant that is frozen (being switched) or has moved away. Custom (class `SH`, no Postgres class).
 */
export const TENANT_FROZEN_SQLSTATE = 'SH001';

/** Seconds a client is told to wait while its organization is being switched to another shard. */
export const TENANT_MOVING_RETRY_AFTER_SECONDS = 1;

export const shardErrors = {
  /**
   * 503: the organization is being moved to another shard (a freeze of milliseconds) or this node
   * still had its old shard cached; nothing was written, the same request sent again succeeds.
   */
  tenantMoving: (cause: unknown) =>
    new SocleError(
      'shards.tenant_moving',
      'The organization is being moved to another database; nothing was written, retry the request',
      { status: 503, headers: { 'retry-after': String(TENANT_MOVING_RETRY_AFTER_SECONDS) }, cause },
    ),
  unknownShard: (name: string, known: readonly string[]) =>
    new SocleError(
      'shards.unknown_shard',
      `No shard is named "${name}"; SHARDS names ${[PRIMARY_SHARD, ...known].join(', ')}`,
      { status: 400, details: { shard: name } },
    ),
};

/** Whether `error` is the refusal of a frozen (moving or moved) tenant's write. */
export function isTenantFrozen(error: unknown): boolean {
  return (
    error !== null &&
    typeof error === 'object' &&
    (error as { code?: unknown }).code === TENANT_FROZEN_SQLSTATE
  );
}

export interface ShardRouterOptions {
  /** `DATABASE_URL`: the directory and every tenant without a directory row. */
  readonly primary: DatabaseBackend;
  /** The pools of `SHARDS`, by name. */
  readonly shards: ReadonlyMap<string, DatabaseBackend>;
  /** The read routers of the shards that have replicas (the request pool's only), by name. */
  readonly readRouters?: ReadonlyMap<string, ReadRouter>;
  /** The replicas' pools, closed with the shards. */
  readonly replicaBackends?: readonly DatabaseBackend[];
  readonly cacheMs: number;
  readonly clock: Clock;
  /**
   * Called for each failure on a shard: a session it could not open, a statement it failed (a
   * frozen tenant's refused write is not one). What `socle_db_shard_errors_total` counts.
   */
  readonly onError?: (shard: string) => void;
}

/**
 * Picks, per lease, the database of the tenant a statement acts for: the shard the directory
 * (`socle.tenant_shards` on the primary) names, or the primary. Entries are cached `cacheMs`; a
 * write refused because the tenant moved drops its entry, so the retry reads the directory again.
 */
export interface ShardRouter {
  /**
   * A backend whose sessions are those of the shard of `tenantOf()` at lease time (the primary for
   * no tenant, or a tenant the directory does not list). `base` serves the primary's leases
   * (the primary itself, or its read router). With `reads`, the leases are for reads that may be
   * stale (`db.replica`): a shard with replicas serves them through its read router.
   */
  route(tenantOf: () => string | undefined, base?: DatabaseBackend, reads?: boolean): DatabaseBackend;
  /** The shard of a tenant (`primary` when none is listed), from the cache or the directory. */
  shardOf(tenantId: string): Promise<string>;
  /** Drops a tenant's cached entry (a move switched it, as far as this process knows). */
  forget(tenantId: string): void;
  readonly shards: ReadonlyMap<string, DatabaseBackend>;
  /** The read routers of the shards that have replicas, by name. */
  readonly readRouters: ReadonlyMap<string, ReadRouter>;
  /** Their replicas' pools. */
  readonly replicaBackends: readonly DatabaseBackend[];
  close(): Promise<void>;
}

const CACHE_LIMIT = 100_000;

export function createShardRouter(options: ShardRouterOptions): ShardRouter {
  const { primary, shards, clock, onError } = options;
  const readRouters = options.readRouters ?? new Map<string, ReadRouter>();
  const cache = new Map<string, { shard: string; until: number }>();

  async function readDirectory(tenantId: string): Promise<string> {
    const { rows } = await withBackendSession(primary, 'app', (connection) =>
      connection.query<{ shard: string }>('select shard from socle.tenant_shards where tenant_id = $1', [
        tenantId,
      ]),
    );
    return rows[0]?.shard ?? PRIMARY_SHARD;
  }

  async function shardOf(tenantId: string): Promise<string> {
    const now = clock.now().getTime();
    const cached = cache.get(tenantId);
    if (cached !== undefined && cached.until > now) return cached.shard;
    const shard = await readDirectory(tenantId);
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(tenantId, { shard, until: now + options.cacheMs });
    return shard;
  }

  const forget = (tenantId: string) => {
    cache.delete(tenantId);
  };

  return {
    shards,
    readRouters,
    replicaBackends: options.replicaBackends ?? [],
    shardOf,
    forget,
    route(tenantOf, base = primary, reads = false) {
      return {
        dialect: primary.dialect,
        location: primary.location,
        async acquire(privilege?: Privilege) {
          const tenantId = tenantOf();
          // Migrations and kernel work (owner sessions) and tenant-less statements: the primary.
          if (tenantId === undefined || tenantId === '' || privilege === 'owner')
            return base.acquire(privilege);
          const name = await shardOf(tenantId);
          const backend =
            name === PRIMARY_SHARD
              ? base
              : ((reads ? readRouters.get(name)?.reads : undefined) ?? shards.get(name));
          if (backend === undefined)
            throw new Error(
              `The directory places tenant ${tenantId} on shard "${name}", which SHARDS does not name`,
            );
          if (name === PRIMARY_SHARD)
            return new ShardSession(await backend.acquire(privilege), () => forget(tenantId));
          let leased: LeasedConnection;
          try {
            leased = await backend.acquire(privilege);
          } catch (error) {
            onError?.(name);
            throw error;
          }
          return new ShardSession(
            leased,
            () => forget(tenantId),
            () => onError?.(name),
            name,
          );
        },
        setAppRole() {
          // Each pool's role is set on the pool itself (Database.enableAppRole).
        },
        statistics: () => primary.statistics(),
        async close() {
          // The pools are closed by their owner (the Database).
        },
      };
    },
    async close() {
      await Promise.all([...readRouters.values()].map((router) => router.close()));
      await Promise.all(
        [...shards.values(), ...(options.replicaBackends ?? [])].map((backend) => backend.close()),
      );
    },
  };
}

/**
 * A session of a tenant's shard that turns the refusal of a frozen tenant's write into 503
 * `shards.tenant_moving` and forgets the tenant's cached shard, so the retry reads the directory.
 */
class ShardSession implements LeasedConnection {
  constructor(
    private readonly leased: LeasedConnection,
    private readonly onMoved: () => void,
    private readonly onError?: () => void,
    /** The shard's name; undefined for the primary's sessions. */
    readonly shard?: string,
  ) {}

  async #run<T>(statement: Promise<T>): Promise<T> {
    try {
      return await statement;
    } catch (error) {
      if (!isTenantFrozen(error)) {
        this.onError?.();
        throw error;
      }
      this.onMoved();
      throw shardErrors.tenantMoving(error);
    }
  }

  query<Row>(text: string, parameters?: readonly unknown[]): Promise<SqlResult<Row>> {
    return this.#run(this.leased.query<Row>(text, parameters));
  }

  queryInScope<Row>(
    settings: SettingEntries,
    text: string,
    parameters?: readonly unknown[],
  ): Promise<SqlResult<Row>> {
    return this.#run(this.leased.queryInScope<Row>(settings, text, parameters));
  }

  execute(script: string): Promise<void> {
    return this.#run(this.leased.execute(script));
  }

  executeWithRows<Row>(script: string): Promise<Row[]> {
    return this.#run(this.leased.executeWithRows<Row>(script));
  }

  setInTransaction(inTransaction: boolean): void {
    this.leased.setInTransaction(inTransaction);
  }

  release(discard?: boolean): void {
    this.leased.release(discard);
  }
}
