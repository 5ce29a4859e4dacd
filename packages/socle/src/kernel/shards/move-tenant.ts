import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Config } from '../config/index.js';
import { PRIMARY_SHARD, shardErrors } from '../db/index.js';
import { quoteIdentifier, quoteLiteral } from '../db/quote-literal.js';
import { SocleError } from '../errors/index.js';
import { isUuid } from '../ids/index.js';
import type { Logger } from '../log/index.js';
import type { ModuleDefinition } from '../modules/index.js';
import { primarySchemas } from './install-shards.js';

export interface MoveTenantOptions {
  readonly config: Config;
  readonly log: Logger;
  /** The modules of the installation: their `placement` says which schemas stay on the primary. */
  readonly modules: readonly Pick<ModuleDefinition, 'name' | 'placement'>[];
  readonly tenantId: string;
  /** A shard of `SHARDS`, or `primary`. */
  readonly to: string;
  /** Longest the initial copy may take (default 10 minutes). */
  readonly copyTimeoutMs?: number;
  /** Longest the freeze may wait for the tenant's transactions in flight and the last changes (default 30 s). */
  readonly freezeTimeoutMs?: number;
}

/** What a move did, for the command's output and the logs. */
export interface MoveReport {
  readonly tenantId: string;
  readonly from: string;
  readonly to: string;
  /** Rows of the tenant copied per table (`schema.table`), checked equal on both sides during the freeze. */
  readonly tables: Readonly<Record<string, number>>;
  /** Initial copy and catching up, writes allowed. */
  readonly copyMs: number;
  /** From the freeze to the directory's switch: how long the tenant's writes were refused (503, retried). */
  readonly freezeMs: number;
  /**
   * Where the freeze went: waiting for the transactions begun before it, for the last changes to
   * arrive, comparing the tables, and writing the directory.
   */
  readonly freezeSteps: {
    readonly drainMs: number;
    readonly catchUpMs: number;
    readonly verifyMs: number;
    readonly switchMs: number;
  };
  readonly totalMs: number;
}

export const moveErrors = {
  alreadyThere: (tenantId: string, shard: string) =>
    new SocleError('shards.already_there', `Organization ${tenantId} is already on shard ${shard}`, {
      status: 409,
      details: { tenantId, shard },
    }),
  invalidTenant: (value: string) =>
    new SocleError('shards.invalid_tenant', `"${value}" is not an organization id (a UUID)`, {
      status: 400,
      details: { tenantId: value },
    }),
  moveInProgress: (tenantId: string) =>
    new SocleError('shards.move_in_progress', `Organization ${tenantId} is being moved already`, {
      status: 409,
      details: { tenantId },
    }),
  targetNotEmpty: (tenantId: string, shard: string, table: string) =>
    new SocleError(
      'shards.target_not_empty',
      `Shard ${shard} already holds rows of organization ${tenantId} in ${table}; nothing was moved`,
      { status: 409, details: { tenantId, shard, table } },
    ),
  verificationFailed: (tenantId: string, table: string) =>
    new SocleError(
      'shards.verification_failed',
      `The copy of organization ${tenantId} differs from its source in ${table}; the move was undone`,
      { status: 500, details: { tenantId, table } },
    ),
  timedOut: (step: string) =>
    new SocleError('shards.move_timed_out', `The move timed out while ${step}; it was undone`, {
      status: 504,
      details: { step },
    }),
};

/** A tenant table of the source: has `tenant_id`, belongs to a module whose data follows its tenant. */
interface TenantTable {
  readonly name: string;
  /** Set to FULL for the move (row filters on updates and deletes need tenant_id in the identity). */
  readonly identityChanged: boolean;
}

/** Longest pause between two polls while the tenant is frozen. */
const FROZEN_POLL_MS = 2;

/** Lock key of moves on the primary ("smov"), with the tenant as second key. */
const MOVE_LOCK_KEY = 0x736d6f76;

/**
 * Polls `check` until it is true, or throws `timedOut(step)`: every millisecond or two at first,
 * backing off to `maxPauseMs` (short while the tenant is frozen: each pause is part of the freeze).
 */
async function waitFor(
  step: string,
  timeoutMs: number,
  check: () => Promise<boolean>,
  maxPauseMs = 50,
): Promise<void> {
  const until = performance.now() + timeoutMs;
  let pause = 1;
  for (;;) {
    if (await check()) return;
    if (performance.now() > until) throw moveErrors.timedOut(step);
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, maxPauseMs);
  }
}

/** Runs `text` in a transaction acting for `tenantId` (row-level security is forced, for the owner too). */
async function inTenant<Row extends pg.QueryResultRow>(
  client: pg.Client,
  tenantId: string,
  text: string,
  extra = '',
): Promise<Row[]> {
  await client.query('begin');
  try {
    await client.query(`select set_config('app.tenant_id', $1, true)${extra}`, [tenantId]);
    const { rows } = await client.query<Row>(text, [tenantId]);
    await client.query('commit');
    return rows;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
}

/**
 * Moves one organization's rows to another shard while it keeps working: Postgres logical
 * replication (a publication with a row filter on `tenant_id` on the source, a subscription on
 * the target) copies them and streams every later change; once caught up, the tenant's writes
 * are refused on the source (503 `shards.tenant_moving`, which clients retry) for as long as it
 * takes to drain its transactions in flight, see a marker row arrive through the same stream,
 * compare every table's rows on both sides, and switch the directory: that freeze is measured.
 * Then the replication is dropped and, after twice the directory cache time (no node still sends
 * the tenant to the source), its rows are deleted from the source.
 *
 * Needs `wal_level = logical` on the source and a superuser login on the target (CREATE
 * SUBSCRIPTION, Postgres 15). On failure before the switch everything is undone: the tenant stays
 * where it was, with all its rows.
 */
export async function moveTenant(options: MoveTenantOptions): Promise<MoveReport> {
  const { config, log, tenantId, to } = options;
  if (!isUuid(tenantId)) throw moveErrors.invalidTenant(tenantId);
  const tenant = tenantId.toLowerCase();
  const urls = new Map<string, string>([[PRIMARY_SHARD, config.databaseUrl as string]]);
  for (const shard of config.shards) urls.set(shard.name, shard.url);
  if (config.databaseUrl === undefined || !urls.has(to))
    throw shardErrors.unknownShard(
      to,
      config.shards.map((shard) => shard.name),
    );
  const started = performance.now();
  const primary = new pg.Client({ connectionString: config.databaseUrl, application_name: 'socle-move' });
  await primary.connect();
  let source: pg.Client | undefined;
  let target: pg.Client | undefined;
  try {
    const { rows: locked } = await primary.query<{ locked: boolean }>(
      'select pg_try_advisory_lock($1, hashtext($2)) as locked',
      [MOVE_LOCK_KEY, tenant],
    );
    if (!locked[0]?.locked) throw moveErrors.moveInProgress(tenant);
    const { rows: placed } = await primary.query<{ shard: string }>(
      'select shard from socle.tenant_shards where tenant_id = $1',
      [tenant],
    );
    const from = placed[0]?.shard ?? PRIMARY_SHARD;
    if (from === to) throw moveErrors.alreadyThere(tenant, to);
    const sourceUrl = urls.get(from);
    if (sourceUrl === undefined)
      throw new Error(`The directory places ${tenant} on shard "${from}", which SHARDS does not name`);
    source = new pg.Client({ connectionString: sourceUrl, application_name: 'socle-move' });
    target = new pg.Client({ connectionString: urls.get(to), application_name: 'socle-move' });
    await source.connect();
    await target.connect();
    const report = await copyAndSwitch({
      ...options,
      tenantId: tenant,
      from,
      sourceUrl,
      primary,
      source,
      target,
    });
    log.info({ ...report }, 'Organization moved to another shard');
    return { ...report, totalMs: Math.round(performance.now() - started) };
  } finally {
    await source?.end().catch(() => undefined);
    await target?.end().catch(() => undefined);
    await primary.end().catch(() => undefined);
  }
}

interface MoveContext extends MoveTenantOptions {
  readonly from: string;
  readonly sourceUrl: string;
  readonly primary: pg.Client;
  readonly source: pg.Client;
  readonly target: pg.Client;
}

async function copyAndSwitch(context: MoveContext): Promise<Omit<MoveReport, 'totalMs'>> {
  const { tenantId, from, to, primary, source, target } = context;
  const moveId = `socle_move_${randomBytes(6).toString('hex')}`;
  const skipped = ['socle', 'pg_catalog', 'information_schema', ...primarySchemas(context.modules)];
  const { rows: found } = await source.query<{ name: string; identity: string; keyed: boolean }>(
    `select format('%I.%I', n.nspname, c.relname) as name, c.relreplident as identity,
            exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary and a.attnum = any(i.indkey)) as keyed
       from pg_attribute a
       join pg_class c on c.oid = a.attrelid
       join pg_namespace n on n.oid = c.relnamespace
      where a.attname = 'tenant_id' and not a.attisdropped and c.relkind = 'r' and not c.relispartition
        and not (n.nspname = any($1::text[]))
      order by 1`,
    [skipped],
  );
  // Row filters on UPDATE and DELETE need tenant_id in the replica identity: the primary key when
  // it includes it, otherwise the whole row for the time of the move.
  const tables: TenantTable[] = found.map((row) => ({
    name: row.name,
    identityChanged: row.identity === 'd' && !row.keyed,
  }));
  for (const table of tables) {
    const [{ count }] = (await inTenant<{ count: string }>(
      target,
      tenantId,
      `select count(*) as count from ${table.name} where tenant_id = $1`,
    )) as [{ count: string }];
    if (count !== '0') throw moveErrors.targetNotEmpty(tenantId, to, table.name);
  }
  const tenantLiteral = quoteLiteral(tenantId);
  const undo: (() => Promise<unknown>)[] = [];
  const runUndo = async () => {
    for (const step of undo.reverse())
      await step().catch((error: unknown) => context.log.warn({ err: error }, 'Undoing a move step failed'));
  };
  let switched = false;
  const copyStarted = performance.now();
  let freezeStarted = 0;
  let freezeMs = 0;
  const counts: Record<string, number> = {};
  try {
    // A tenant that once moved away from the target and now comes back.
    await target.query('delete from socle.frozen_tenants where tenant_id = $1', [tenantId]);
    for (const table of tables) {
      if (table.identityChanged) {
        await source.query(`alter table ${table.name} replica identity full`);
        undo.push(() => source.query(`alter table ${table.name} replica identity default`));
      }
      await source.query(
        `drop trigger if exists socle_tenant_frozen on ${table.name};
         create trigger socle_tenant_frozen before insert or update or delete on ${table.name}
           for each row execute function socle.refuse_frozen_tenant()`,
      );
      undo.push(() => source.query(`drop trigger if exists socle_tenant_frozen on ${table.name}`));
    }
    const published = [
      ...tables.map((table) => `${table.name} where (tenant_id = ${tenantLiteral}::uuid)`),
      `socle.move_markers where (move_id = ${quoteLiteral(moveId)})`,
    ];
    await source.query(`create publication ${quoteIdentifier(moveId)} for table ${published.join(', ')}`);
    undo.push(() => source.query(`drop publication if exists ${quoteIdentifier(moveId)}`));
    // The slot is made on the source first: a subscription asked to make it would wait forever
    // when the source is another database of the target's own cluster.
    await source.query(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [moveId]);
    undo.push(() => dropSlot(source, moveId));
    await target.query(
      `create subscription ${quoteIdentifier(moveId)} connection ${quoteLiteral(context.sourceUrl)}
         publication ${quoteIdentifier(moveId)} with (create_slot = false, slot_name = ${quoteLiteral(moveId)}, copy_data = true)`,
    );
    undo.push(() => dropSubscription(target, moveId));
    undo.push(() =>
      Promise.all(
        tables.map((table) =>
          inTenant(
            target,
            tenantId,
            `delete from ${table.name} where tenant_id = $1`,
            ", set_config('session_replication_role', 'replica', true)",
          ),
        ),
      ),
    );
    // Copy: every table's initial copy done and the stream applying.
    await waitFor('copying', context.copyTimeoutMs ?? 600_000, async () => {
      const { rows } = await target.query<{ pending: string }>(
        `select count(*) as pending from pg_subscription_rel r join pg_subscription s on s.oid = r.srsubid
          where s.subname = $1 and r.srsubstate <> 'r'`,
        [moveId],
      );
      return rows[0]?.pending === '0';
    });
    // Catch up with writes allowed, so that the freeze only waits for the last few.
    await sendMarker(context, moveId, 'caught-up', 60_000);
    const copyMs = Math.round(performance.now() - copyStarted);

    // Freeze: from here the tenant's writes on the source are refused.
    freezeStarted = performance.now();
    await source.query('insert into socle.frozen_tenants (tenant_id) values ($1) on conflict do nothing', [
      tenantId,
    ]);
    undo.push(() => source.query('delete from socle.frozen_tenants where tenant_id = $1', [tenantId]));
    const { rows: frozenAt } = await source.query<{ at: Date }>('select clock_timestamp() as at');
    const freezeTimeout = context.freezeTimeoutMs ?? 30_000;
    // Transactions that began before the freeze may have written already: they commit (or not)
    // first, and their changes travel before the marker.
    await waitFor(
      'waiting for transactions begun before the freeze',
      freezeTimeout,
      async () => {
        const { rows } = await source.query<{ running: string }>(
          `select count(*) as running from pg_stat_activity
          where datname = current_database() and backend_type = 'client backend'
            and pid <> pg_backend_pid() and xact_start < $1`,
          [frozenAt[0]?.at],
        );
        return rows[0]?.running === '0';
      },
      FROZEN_POLL_MS,
    );
    const drained = performance.now();
    await sendMarker(context, moveId, 'frozen', freezeTimeout, FROZEN_POLL_MS);
    const caughtUp = performance.now();
    // Every table's row count and md5 of its rows, in one statement per side, both sides at once:
    // the verification is part of the freeze.
    const digests = tables
      .map(
        (table) =>
          `select ${quoteLiteral(table.name)} as name, count(*) as count,
                  md5(coalesce(string_agg(t::text, ',' order by t::text), '')) as digest
             from ${table.name} t where tenant_id = $1`,
      )
      .join(' union all ');
    type Digest = { name: string; count: string; digest: string };
    const [sourceDigests, targetDigests] =
      tables.length === 0
        ? [[], []]
        : await Promise.all([
            inTenant<Digest>(source, tenantId, digests),
            inTenant<Digest>(target, tenantId, digests),
          ]);
    for (const table of tables) {
      const sourceRows = sourceDigests.find((row) => row.name === table.name);
      const targetRows = targetDigests.find((row) => row.name === table.name);
      if (sourceRows?.count !== targetRows?.count || sourceRows?.digest !== targetRows?.digest)
        throw moveErrors.verificationFailed(tenantId, table.name);
      counts[table.name] = Number(sourceRows?.count ?? 0);
    }
    const verified = performance.now();
    // Switch: from this commit on, every node that reads the directory sends the tenant to `to`.
    if (to === PRIMARY_SHARD)
      await primary.query('delete from socle.tenant_shards where tenant_id = $1', [tenantId]);
    else
      await primary.query(
        `insert into socle.tenant_shards (tenant_id, shard) values ($1, $2)
           on conflict (tenant_id) do update set shard = excluded.shard, placed_at = now()`,
        [tenantId, to],
      );
    switched = true;
    const switchedAt = performance.now();
    freezeMs = Math.round(switchedAt - freezeStarted);
    const freezeSteps = {
      drainMs: Math.round(drained - freezeStarted),
      catchUpMs: Math.round(caughtUp - drained),
      verifyMs: Math.round(verified - caughtUp),
      switchMs: Math.round(switchedAt - verified),
    };
    await dropSubscription(target, moveId);
    await dropSlot(source, moveId);
    await source.query(`drop publication if exists ${quoteIdentifier(moveId)}`);
    await cleanSource(context, tables, moveId);
    return { tenantId, from, to, tables: counts, copyMs, freezeMs, freezeSteps };
  } catch (error) {
    if (!switched) await runUndo();
    throw error;
  }
}

/** Inserts a marker row on the source and waits until it has come through the subscription. */
async function sendMarker(
  context: MoveContext,
  moveId: string,
  step: string,
  timeoutMs: number,
  maxPauseMs?: number,
): Promise<void> {
  const markerId = moveId;
  await context.source.query(
    `insert into socle.move_markers (move_id, tenant_id) values ($1, $2)
       on conflict (move_id) do update set at = clock_timestamp()`,
    [markerId, context.tenantId],
  );
  const { rows } = await context.source.query<{ at: Date }>(
    'select at from socle.move_markers where move_id = $1',
    [markerId],
  );
  const sentAt = rows[0]?.at.getTime() ?? 0;
  await waitFor(
    `catching up (${step})`,
    timeoutMs,
    async () => {
      const { rows: arrived } = await context.target.query<{ at: Date }>(
        'select at from socle.move_markers where move_id = $1',
        [markerId],
      );
      return arrived[0] !== undefined && arrived[0].at.getTime() >= sentAt;
    },
    maxPauseMs,
  );
}

/** Drops the move's slot on the source once the subscription's sender has let go of it (bounded). */
async function dropSlot(source: pg.Client, moveId: string): Promise<void> {
  await waitFor('releasing the replication slot', 30_000, async () => {
    const { rows } = await source.query<{ active: boolean }>(
      'select active from pg_replication_slots where slot_name = $1',
      [moveId],
    );
    return rows[0] === undefined || !rows[0].active;
  });
  await source.query(
    'select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1',
    [moveId],
  );
}

async function dropSubscription(target: pg.Client, moveId: string): Promise<void> {
  const { rows } = await target.query('select 1 from pg_subscription where subname = $1', [moveId]);
  if (rows.length === 0) return;
  const name = quoteIdentifier(moveId);
  // Detached from its slot first, so dropping it never needs the source (the move drops the slot).
  await target.query(`alter subscription ${name} disable`);
  await target.query(`alter subscription ${name} set (slot_name = none)`);
  await target.query(`drop subscription ${name}`);
  await target.query('delete from socle.move_markers where move_id = $1', [moveId]);
}

/**
 * After the switch: waits until no node can still have the old shard cached (twice the cache
 * time), deletes the tenant's rows from the source (its frozen-tenant refusal lets this one
 * transaction through), then lifts the freeze and the triggers.
 */
async function cleanSource(
  context: MoveContext,
  tables: readonly TenantTable[],
  moveId: string,
): Promise<void> {
  const { source, tenantId } = context;
  await new Promise((resolve) => setTimeout(resolve, 2 * context.config.shardsDirectoryCacheMs));
  await source.query('delete from socle.move_markers where move_id = $1', [moveId]);
  // Tables referencing others go first; a pass that hits a foreign key leaves the table for the next.
  let remaining = [...tables];
  for (let pass = 0; remaining.length > 0 && pass <= tables.length; pass++) {
    const left: TenantTable[] = [];
    for (const table of remaining) {
      try {
        await inTenant(
          source,
          tenantId,
          `delete from ${table.name} where tenant_id = $1`,
          ", set_config('socle.cleaning_tenant', $1, true)",
        );
      } catch (error) {
        if ((error as { code?: string }).code !== '23503') throw error;
        left.push(table);
      }
    }
    remaining = left;
  }
  if (remaining.length > 0)
    context.log.warn(
      { tables: remaining.map((table) => table.name) },
      'Rows of the moved organization remain on its old shard',
    );
  await source.query('delete from socle.frozen_tenants where tenant_id = $1', [tenantId]);
  const { rows } = await source.query<{ frozen: string }>(
    'select count(*) as frozen from socle.frozen_tenants',
  );
  for (const table of tables) {
    // Another move from this source in progress still needs the triggers.
    if (rows[0]?.frozen === '0')
      await source.query(`drop trigger if exists socle_tenant_frozen on ${table.name}`);
    if (table.identityChanged) await source.query(`alter table ${table.name} replica identity default`);
  }
}
