import { AsyncLocalStorage } from 'node:async_hooks';
import type { Clock } from '../clock/index.js';
import { SocleError } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import {
  type DatabaseBackend,
  type LeasedConnection,
  type Privilege,
  type SettingEntries,
  type SqlResult,
  withBackendSession,
} from './backend.js';
import { isDatabaseUnavailable } from './database-errors.js';

/** The name of `DATABASE_URL` among the databases a client's positions are kept for (as in the shard directory). */
export const PRIMARY_DATABASE = 'primary';
/** A position entry that holds for every database: what an unreadable cookie asks (never stale). */
export const EVERY_DATABASE = '*';

/**
 * What the reads of one request must see. A request that carries the positions of its client's
 * last writes (`minimumLsn`, per database: the primary and each shard, from the `socle-lsn`
 * cookie or header) reads from a replica of a database only once that replica has replayed past
 * its position there; a request that wrote itself (`wroteOn`) reads from the primaries for the rest
 * of its life, and its response carries the new position of each database it wrote on.
 */
export interface ReadConsistency {
  minimumLsn: ReadonlyMap<string, bigint>;
  /** `primary` and the names of the shards this request wrote on. */
  readonly wroteOn: Set<string>;
}

const consistencyStorage = new AsyncLocalStorage<ReadConsistency>();

/**
 * Runs `work` with `consistency` as the reads' requirement (the HTTP layer opens one per request).
 * Outside of one (jobs, CLI commands), reads that may be stale still go to the primary: a job may
 * read what the transaction that enqueued it wrote, and nothing says where that is.
 */
export function withReadConsistency<T>(consistency: ReadConsistency, work: () => T): T {
  return consistencyStorage.run(consistency, work);
}

/**
 * Notes that the current request wrote (a committed transaction, a statement) on the primary, or
 * on `shard`.
 */
export function noteWrite(shard?: string): void {
  consistencyStorage.getStore()?.wroteOn.add(shard ?? PRIMARY_DATABASE);
}

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** `16/B374D848` (Postgres's `pg_lsn` text) as a number; undefined if it is not one. */
export function parseLsn(text: string): bigint | undefined {
  const match = LSN.exec(text.trim());
  if (match === null) return undefined;
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** The `pg_lsn` text of a position. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export interface ReplicaStatus {
  /** Host, port and database of the replica (no credentials). */
  readonly name: string;
  /** Whose replica it is: `primary`, or a shard's name. */
  readonly database: string;
  /** Serving reads: answered its last check, still replaying, within the lag threshold. */
  readonly inRotation: boolean;
  /** How long ago the primary had WAL this replica has not replayed yet, at the last check. */
  readonly lagSeconds: number;
  readonly replayLsn: string | undefined;
  /** Why it is out of rotation, when it is. */
  readonly problem: string | undefined;
}

export interface Replica {
  readonly name: string;
  readonly backend: DatabaseBackend;
}

/**
 * The part of the kernel's metrics the router reports to (the metrics module itself imports the
 * database layer's types, so this is spelled here rather than imported).
 */
export interface ReadRoutingMetrics {
  counter(options: { name: string; help: string; labelNames: readonly string[] }): {
    inc(labels: Readonly<Record<string, string>>): void;
  };
  gauge(options: {
    name: string;
    help: string;
    labelNames: readonly string[];
    collect(set: (labels: Readonly<Record<string, string>>, value: number) => void): void;
  }): void;
}

export interface ReadRouterOptions {
  /** Which database this router's primary is: `primary` (default) or a shard's name (read-your-writes keeps a position per database). */
  readonly database?: string;
  readonly primary: DatabaseBackend;
  readonly replicas: readonly Replica[];
  readonly maxLagMs: number;
  readonly checkIntervalMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  /** Where it reports (see {@link createReplicaInstruments}): one set for every router of a process. */
  readonly instruments?: ReplicaInstruments;
}

/**
 * Sends the reads modules mark as allowed to be stale (`db.replica`) to a streaming replica when
 * one may serve them, and everything else to the primary. Streaming replication and the replicas
 * themselves are Postgres's; this only decides, per statement, which pool to lease from.
 */
export interface ReadRouter {
  /** A backend whose sessions are a replica's when one may serve the current read, else the primary's. */
  readonly reads: DatabaseBackend;
  /** The primary's current WAL position: what a client that just wrote must see from now on. */
  primaryLsn(): Promise<bigint>;
  /** Reads every replica's position now (the router also does it every `checkIntervalMs`). */
  check(): Promise<void>;
  status(): readonly ReplicaStatus[];
  close(): Promise<void>;
}

interface ReplicaState {
  readonly replica: Replica;
  inRotation: boolean;
  replayLsn: bigint | undefined;
  lagSeconds: number;
  problem: string | undefined;
}

/** SQLSTATE 40001 with this message: a hot standby cancelled a read that conflicted with replay. */
const RECOVERY_CONFLICT = /conflict with recovery/;

/** A read a replica failed for reasons of its own (gone, or cancelled by replay): the primary can serve it. */
function replicaCannotServe(error: unknown): boolean {
  if (error instanceof SocleError && error.code === 'db.unavailable') return true;
  if (isDatabaseUnavailable(error)) return true;
  return error instanceof Error && RECOVERY_CONFLICT.test(error.message);
}

/** Reports of every read router of a process: the routers of the primary and of each shard share them. */
export interface ReplicaInstruments {
  readonly readsByTarget: { inc(labels: Readonly<Record<string, string>>): void };
  /** Adds a router's replicas to the lag and rotation gauges. */
  track(states: () => readonly ReplicaGaugeState[]): void;
}

interface ReplicaGaugeState {
  readonly replica: { readonly name: string };
  readonly inRotation: boolean;
  readonly lagSeconds: number;
}

/**
 * Registers the replica metrics once per process: `socle_db_reads_total{target}`,
 * `socle_db_replica_lag_seconds{replica}` and `socle_db_replica_in_rotation{replica}`, the gauges
 * reading every router tracked (a replica is named by its `host:port/db`, unique across shards).
 */
export function createReplicaInstruments(metrics: ReadRoutingMetrics): ReplicaInstruments {
  const tracked: (() => readonly ReplicaGaugeState[])[] = [];
  const every = () => tracked.flatMap((states) => states());
  metrics.gauge({
    name: 'socle_db_replica_lag_seconds',
    help: 'How long ago the primary had WAL this replica had not replayed, at its last check',
    labelNames: ['replica'],
    collect: (set) => {
      for (const state of every()) set({ replica: state.replica.name }, state.lagSeconds);
    },
  });
  metrics.gauge({
    name: 'socle_db_replica_in_rotation',
    help: '1 while the replica serves reads; 0 while it is down, not replaying or past the lag threshold',
    labelNames: ['replica'],
    collect: (set) => {
      for (const state of every()) set({ replica: state.replica.name }, state.inRotation ? 1 : 0);
    },
  });
  return {
    readsByTarget: metrics.counter({
      name: 'socle_db_reads_total',
      help: 'Reads that were allowed to be stale (db.replica), by the database that served them (primary or a replica)',
      labelNames: ['target'],
    }),
    track: (states) => {
      tracked.push(states);
    },
  };
}

/** Primary positions kept to date a replica's lag: enough to span the threshold at one check per interval. */
const MAX_SAMPLES = 10_000;

export function createReadRouter(options: ReadRouterOptions): ReadRouter {
  const { primary, clock, log } = options;
  const database = options.database ?? PRIMARY_DATABASE;
  const states: ReplicaState[] = options.replicas.map((replica) => ({
    replica,
    // Out until its first check says where it is.
    inRotation: false,
    replayLsn: undefined,
    lagSeconds: 0,
    problem: 'not checked yet',
  }));
  /** The primary's position at each check, oldest first: a replica's lag is how long ago the first one past its replay position was seen. */
  const samples: { lsn: bigint; at: number }[] = [];
  let next = 0;
  const readsByTarget = options.instruments?.readsByTarget;
  options.instruments?.track(() => states);
  const takeOut = (state: ReplicaState, problem: string) => {
    if (state.inRotation)
      log.warn(
        { replica: state.replica.name, problem },
        'Read replica out of rotation; its reads go to the primary',
      );
    state.inRotation = false;
    state.problem = problem;
  };

  async function queryOne<Row>(backend: DatabaseBackend, text: string): Promise<Row> {
    const { rows } = await withBackendSession(backend, 'owner', (connection) => connection.query<Row>(text));
    return rows[0] as Row;
  }

  async function primaryLsn(): Promise<bigint> {
    const row = await queryOne<{ lsn: string }>(primary, 'select pg_current_wal_lsn()::text as lsn');
    return parseLsn(row.lsn) as bigint;
  }

  async function checkReplica(state: ReplicaState, latest: { lsn: bigint; at: number } | undefined) {
    let row: { lsn: string | null; recovering: boolean };
    try {
      row = await queryOne(
        state.replica.backend,
        'select pg_last_wal_replay_lsn()::text as lsn, pg_is_in_recovery() as recovering',
      );
    } catch (error) {
      takeOut(state, `does not answer: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (!row.recovering || row.lsn === null) {
      // Promoted (or not a standby at all): its data no longer follows the primary's.
      takeOut(state, 'is not a streaming replica in recovery');
      return;
    }
    const replayed = parseLsn(row.lsn) as bigint;
    state.replayLsn = replayed;
    const now = clock.now().getTime();
    const firstMissed = samples.find((sample) => sample.lsn > replayed);
    state.lagSeconds = latest === undefined || firstMissed === undefined ? 0 : (now - firstMissed.at) / 1000;
    if (state.lagSeconds * 1000 > options.maxLagMs) {
      takeOut(state, `lags ${state.lagSeconds.toFixed(1)} s behind the primary`);
      return;
    }
    if (!state.inRotation)
      log.info({ replica: state.replica.name, lagSeconds: state.lagSeconds }, 'Read replica in rotation');
    state.inRotation = true;
    state.problem = undefined;
  }

  let checking: Promise<void> | undefined;
  async function check(): Promise<void> {
    checking ??= (async () => {
      let latest: { lsn: bigint; at: number } | undefined;
      try {
        latest = { lsn: await primaryLsn(), at: clock.now().getTime() };
        const last = samples.at(-1);
        if (last === undefined || latest.lsn > last.lsn) samples.push(latest);
        // Positions older than the threshold (and one more, to date a lag past it) are not needed.
        const horizon = latest.at - Math.max(options.maxLagMs, options.checkIntervalMs) * 2;
        while (
          samples.length > 1 &&
          ((samples[1] as { at: number }).at < horizon || samples.length > MAX_SAMPLES)
        )
          samples.shift();
      } catch {
        // The primary is down: its own outage log says so; replicas keep their last verdict on lag.
      }
      await Promise.all(states.map((state) => checkReplica(state, latest)));
    })().finally(() => {
      checking = undefined;
    });
    return checking;
  }

  const timer =
    states.length === 0
      ? undefined
      : setInterval(() => {
          check().catch((error: unknown) => log.warn({ err: error }, 'Read replica check failed'));
        }, options.checkIntervalMs);
  timer?.unref();

  /** The replica that may serve the current read, if any (round robin among those that qualify). */
  function chooseReplica(): ReplicaState | undefined {
    const consistency = consistencyStorage.getStore();
    if (consistency === undefined || consistency.wroteOn.size > 0 || states.length === 0) return undefined;
    const minimum = consistency.minimumLsn.get(database) ?? consistency.minimumLsn.get(EVERY_DATABASE) ?? 0n;
    for (let tried = 0; tried < states.length; tried++) {
      const state = states[(next + tried) % states.length] as ReplicaState;
      if (state.inRotation && state.replayLsn !== undefined && state.replayLsn >= minimum) {
        next = (next + tried + 1) % states.length;
        return state;
      }
    }
    return undefined;
  }

  async function leasePrimary(privilege: Privilege | undefined): Promise<LeasedConnection> {
    const leased = await primary.acquire(privilege);
    readsByTarget?.inc({ target: database });
    return leased;
  }

  const reads: DatabaseBackend = {
    dialect: primary.dialect,
    location: primary.location,
    async acquire(privilege) {
      const state = chooseReplica();
      if (state === undefined) return leasePrimary(privilege);
      let leased: LeasedConnection;
      try {
        leased = await state.replica.backend.acquire(privilege);
      } catch (error) {
        if (!replicaCannotServe(error)) throw error;
        takeOut(state, `does not answer: ${error instanceof Error ? error.message : String(error)}`);
        return leasePrimary(privilege);
      }
      readsByTarget?.inc({ target: state.replica.name });
      return new ReplicaSession(
        leased,
        () => leasePrimary(privilege),
        (error) => takeOut(state, `failed a read: ${error instanceof Error ? error.message : String(error)}`),
      );
    },
    setAppRole() {
      // Each pool's role is set on the pool itself (Database.enableAppRole).
    },
    statistics: () => primary.statistics(),
    async close() {
      // The pools are closed by their owners.
    },
  };

  return {
    reads,
    primaryLsn,
    check,
    status: () =>
      states.map((state) => ({
        name: state.replica.name,
        database,
        inRotation: state.inRotation,
        lagSeconds: state.lagSeconds,
        replayLsn: state.replayLsn === undefined ? undefined : formatLsn(state.replayLsn),
        problem: state.problem,
      })),
    async close() {
      clearInterval(timer);
      await checking?.catch(() => undefined);
    },
  };
}

/**
 * A replica session that hands a read it cannot serve (the replica went away, or replay cancelled
 * it) to the primary: these are reads, so running one again elsewhere changes nothing.
 */
class ReplicaSession implements LeasedConnection {
  #current: LeasedConnection;
  #onReplica = true;

  constructor(
    leased: LeasedConnection,
    private readonly leasePrimary: () => Promise<LeasedConnection>,
    private readonly onFailure: (error: unknown) => void,
  ) {
    this.#current = leased;
  }

  async #run<T>(statement: (connection: LeasedConnection) => Promise<T>): Promise<T> {
    try {
      return await statement(this.#current);
    } catch (error) {
      if (!this.#onReplica || !replicaCannotServe(error)) throw error;
      this.onFailure(error);
      this.#current.release(true);
      this.#onReplica = false;
      this.#current = await this.leasePrimary();
      return statement(this.#current);
    }
  }

  query<Row>(text: string, parameters?: readonly unknown[]): Promise<SqlResult<Row>> {
    return this.#run((connection) => connection.query<Row>(text, parameters));
  }

  queryInScope<Row>(
    settings: SettingEntries,
    text: string,
    parameters?: readonly unknown[],
  ): Promise<SqlResult<Row>> {
    return this.#run((connection) => connection.queryInScope<Row>(settings, text, parameters));
  }

  execute(script: string): Promise<void> {
    return this.#run((connection) => connection.execute(script));
  }

  executeWithRows<Row>(script: string): Promise<Row[]> {
    return this.#run((connection) => connection.executeWithRows<Row>(script));
  }

  setInTransaction(inTransaction: boolean): void {
    this.#current.setInTransaction(inTransaction);
  }

  release(discard?: boolean): void {
    this.#current.release(discard);
  }
}
