import { type DatabaseBackend, type SqlConnection, withBackendSession } from './backend.js';

/**
 * The job engine's table on each database (`JOBS_SCHEMA.job` of the queue): its rows name their
 * tenant in `data`, not in a `tenant_id` column. Written here rather than imported so the
 * database layer does not depend on the queue.
 */
const JOBS_TABLE = 'jobs.job';

/**
 * Marks, in the caller's transaction on the primary, that a tenant is being deleted: its directory
 * row stays (it says which shard still holds the tenant's rows) until those rows are gone.
 */
export async function markTenantDeleted(connection: SqlConnection, tenantId: string): Promise<void> {
  await connection.query('update socle.tenant_shards set deleted_at = now() where tenant_id = $1', [
    tenantId,
  ]);
}

/** Runs `work` on an owner session of `backend`, in a transaction acting for `tenantId` (forced RLS). */
async function inTenantAsOwner(
  backend: DatabaseBackend,
  tenantId: string,
  work: (connection: SqlConnection) => Promise<void>,
): Promise<void> {
  await withBackendSession(backend, 'owner', async (connection) => {
    await connection.execute('begin');
    try {
      await connection.query("select set_config('app.tenant_id', $1, true)", [tenantId]);
      await work(connection);
      await connection.execute('commit');
    } catch (error) {
      await connection.execute('rollback').catch(() => undefined);
      throw error;
    }
  });
}

/**
 * Finishes the deletion of every tenant marked deleted in the directory: on its shard, in one
 * transaction, deletes its rows from every table with a `tenant_id` (the tables of modules placed
 * on the primary are empty there) and its jobs; then removes its directory row. Idempotent: after
 * a failure (the shard unreachable, a crash) the next call does it all again, and a tenant whose
 * shard rows are gone already only loses its directory row. Returns the tenants finished.
 */
export async function purgeDeletedTenants(
  primary: DatabaseBackend,
  shards: ReadonlyMap<string, DatabaseBackend>,
): Promise<string[]> {
  const marked = await withBackendSession(primary, 'owner', (connection) =>
    connection.query<{ tenant_id: string; shard: string }>(
      'select tenant_id, shard from socle.tenant_shards where deleted_at is not null order by deleted_at',
    ),
  );
  const done: string[] = [];
  for (const { tenant_id: tenantId, shard } of marked.rows) {
    // A shard SHARDS does not name (any more) cannot be reached from here: its entry stays marked.
    const backend = shards.get(shard);
    if (backend === undefined) continue;
    await inTenantAsOwner(backend, tenantId, async (connection) => {
      const { rows: tables } = await connection.query<{ name: string }>(
        `select format('%I.%I', n.nspname, c.relname) as name
             from pg_attribute a
             join pg_class c on c.oid = a.attrelid
             join pg_namespace n on n.oid = c.relnamespace
            where a.attname = 'tenant_id' and not a.attisdropped and c.relkind in ('r', 'p') and not c.relispartition
              and n.nspname not in ('socle', 'pg_catalog', 'information_schema')
            order by 1`,
      );
      // Foreign keys between tenant tables are checked at the end of each statement: a table
      // referenced by another is emptied once the one referencing it is, so the deletes run in
      // passes until every table of the tenant is empty (a table a pass could not empty waits
      // behind a savepoint for the next).
      let remaining = tables.map((table) => table.name);
      for (let pass = 0; remaining.length > 0 && pass <= tables.length; pass++) {
        const left: string[] = [];
        for (const table of remaining) {
          await connection.execute('savepoint socle_tenant_delete');
          try {
            await connection.query(`delete from ${table} where tenant_id = $1`, [tenantId]);
            await connection.execute('release savepoint socle_tenant_delete');
          } catch (error) {
            if ((error as { code?: string }).code !== '23503') throw error;
            await connection.execute('rollback to savepoint socle_tenant_delete');
            left.push(table);
          }
        }
        remaining = left;
      }
      if (remaining.length > 0)
        throw new Error(
          `Rows of tenant ${tenantId} on shard ${shard} are still referenced in ${remaining.join(', ')}`,
        );
      const { rows: jobs } = await connection.query<{ present: boolean }>(
        `select to_regclass('${JOBS_TABLE}') is not null as present`,
      );
      if (jobs[0]?.present)
        await connection.query(`delete from ${JOBS_TABLE} where data->>'tenantId' = $1`, [tenantId]);
    });
    await withBackendSession(primary, 'owner', (connection) =>
      connection.query('delete from socle.tenant_shards where tenant_id = $1 and deleted_at is not null', [
        tenantId,
      ]),
    );
    done.push(tenantId);
  }
  return done;
}
