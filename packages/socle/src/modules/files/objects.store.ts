import { type Kysely, sql, type Transaction } from 'kysely';
import type { SqlConnection } from '../../kernel/index.js';
import type { FilesTables } from './files.tables.js';

type Executor = Kysely<FilesTables> | Transaction<FilesTables>;

/** An object record as stored. */
export interface ObjectRow {
  readonly id: string;
  readonly tenant_id: string | null;
  readonly owner_id: string | null;
  readonly bucket: string;
  readonly blob_key: string;
  readonly name: string | null;
  readonly size: string | number;
  readonly sha256: string;
  readonly content_type: string;
  readonly metadata: Record<string, unknown>;
  readonly storage_class: 'standard' | 'archive';
  readonly created_at: Date;
}

export interface NewObjectRow {
  readonly id: string;
  readonly tenant_id: string | null;
  readonly owner_id: string | null;
  readonly bucket: string;
  readonly blob_key: string;
  readonly name: string | null;
  readonly size: number;
  readonly sha256: string;
  readonly content_type: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly created_at: Date;
}

/** A lifecycle rule of one bucket, as thresholds on `created_at`. */
export interface DueRule {
  readonly bucket: string;
  readonly archiveBefore: Date | undefined;
  readonly deleteBefore: Date | undefined;
}

const OBJECT_COLUMNS = [
  'id',
  'tenant_id',
  'owner_id',
  'bucket',
  'blob_key',
  'name',
  'size',
  'sha256',
  'content_type',
  'metadata',
  'storage_class',
  'created_at',
] as const;

/** SQL of the files module. Row-level security confines every application query to its scope. */
export const objectsStore = {
  insertObject(trx: Executor, row: NewObjectRow): Promise<ObjectRow> {
    return trx
      .insertInto('files.objects')
      .values({ ...row, metadata: JSON.stringify(row.metadata) })
      .returning(OBJECT_COLUMNS)
      .executeTakeFirstOrThrow();
  },

  /**
   * Adds an object of `bytes` to the scope's usage, unless that takes it past `quotaBytes`: one
   * statement, so concurrent uploads cannot overshoot together. False when refused.
   */
  async chargeUsage(
    trx: Executor,
    scope: { readonly id: string; readonly kind: 'tenant' | 'user' },
    bytes: number,
    quotaBytes: number | undefined,
  ): Promise<boolean> {
    if (quotaBytes !== undefined && bytes > quotaBytes) return false;
    const limit = quotaBytes ?? Number.MAX_SAFE_INTEGER;
    const { rows } = await sql<{ bytes: string }>`
      insert into files.usage as u (scope_id, scope_kind, bytes, objects)
      values (${scope.id}, ${scope.kind}, ${bytes}, 1)
      on conflict (scope_id) do update set bytes = u.bytes + excluded.bytes, objects = u.objects + 1
        where u.bytes + excluded.bytes <= ${limit}
      returning u.bytes`.execute(trx);
    return rows.length === 1;
  },

  /** The people a record archive names (in the transaction that records it). */
  async insertArchiveSubjects(trx: Executor, objectId: string, tenantId: string, userIds: readonly string[]) {
    if (userIds.length === 0) return;
    await sql`
      insert into files.archive_subjects (object_id, tenant_id, user_id)
      select ${objectId}::uuid, ${tenantId}::uuid, user_id
        from unnest(${`{${userIds.join(',')}}`}::uuid[]) as u (user_id)
      on conflict do nothing`.execute(trx);
  },

  /** Record archives naming `userId` (owner session: every organization), with their rows. */
  async archivesNaming(connection: SqlConnection, userId: string): Promise<ObjectRow[]> {
    const { rows } = await connection.query<ObjectRow>(
      `select o.* from files.objects o
         join files.archive_subjects s on s.object_id = o.id
        where s.user_id = $1
        order by o.created_at, o.id`,
      [userId],
    );
    return rows;
  },

  /** Locks a record archive's row for its rewrite (owner session); undefined when it is gone. */
  async lockObject(connection: SqlConnection, objectId: string): Promise<ObjectRow | undefined> {
    const { rows } = await connection.query<ObjectRow>(
      'select * from files.objects where id = $1 for update',
      [objectId],
    );
    return rows[0];
  },

  /**
   * A record archive rewritten without a person's records: its new bytes, and the person no longer
   * named (owner session, in the transaction that locked it).
   */
  async replaceArchive(
    connection: SqlConnection,
    row: ObjectRow,
    userId: string,
    replacement: { readonly blobKey: string; readonly size: number; readonly sha256: string },
  ): Promise<void> {
    await connection.query('update files.objects set blob_key = $2, size = $3, sha256 = $4 where id = $1', [
      row.id,
      replacement.blobKey,
      replacement.size,
      replacement.sha256,
    ]);
    await connection.query('update files.usage set bytes = greatest(bytes + $2, 0) where scope_id = $1', [
      row.tenant_id ?? row.owner_id,
      replacement.size - Number(row.size),
    ]);
    await connection.query('delete from files.archive_subjects where object_id = $1 and user_id = $2', [
      row.id,
      userId,
    ]);
  },

  async releaseUsage(trx: Executor, scopeId: string, bytes: number, objects: number): Promise<void> {
    await sql`
      update files.usage set bytes = greatest(bytes - ${bytes}, 0), objects = greatest(objects - ${objects}, 0)
       where scope_id = ${scopeId}`.execute(trx);
  },

  async usedBytes(executor: Executor, scopeId: string): Promise<number> {
    const row = await executor
      .selectFrom('files.usage')
      .select('bytes')
      .where('scope_id', '=', scopeId)
      .executeTakeFirst();
    return Number(row?.bytes ?? 0);
  },

  /** Objects and bytes per bucket of what the executor's settings let it see (RLS). */
  async usageByBucket(executor: Executor) {
    const rows = await executor
      .selectFrom('files.objects')
      .select((eb) => [
        'bucket',
        eb.fn.countAll<string>().as('objects'),
        eb.fn.coalesce(eb.fn.sum<string>('size'), sql<string>`0`).as('bytes'),
      ])
      .groupBy('bucket')
      .execute();
    return rows.map((row) => ({
      bucket: row.bucket,
      objects: Number(row.objects),
      bytes: Number(row.bytes),
    }));
  },

  /** The scopes storing the most bytes (the global totals: no names, no contents). */
  async largestScopes(executor: Executor, kind: 'tenant' | 'user' | undefined, limit: number) {
    let query = executor
      .selectFrom('files.usage')
      .select(['scope_id', 'scope_kind', 'bytes', 'objects'])
      .where('objects', '>', 0 as never);
    if (kind !== undefined) query = query.where('scope_kind', '=', kind);
    const rows = await query.orderBy('bytes', 'desc').orderBy('scope_id').limit(limit).execute();
    return rows.map((row) => ({
      kind: row.scope_kind as 'tenant' | 'user',
      id: row.scope_id,
      bytes: Number(row.bytes),
      objects: Number(row.objects),
    }));
  },

  /** Scopes holding objects, after `afterScopeId` (pages of the lifecycle and cleanup walks). */
  scopesWithObjects(executor: Executor, afterScopeId: string | undefined, limit: number) {
    let query = executor
      .selectFrom('files.usage')
      .select(['scope_id', 'scope_kind'])
      .where('objects', '>', 0 as never);
    if (afterScopeId !== undefined) query = query.where('scope_id', '>', afterScopeId);
    return query.orderBy('scope_id').limit(limit).execute();
  },

  findObject(executor: Executor, bucket: string, id: string, options: { forUpdate?: boolean } = {}) {
    const query = executor
      .selectFrom('files.objects')
      .select(OBJECT_COLUMNS)
      .where('id', '=', id)
      .where('bucket', '=', bucket);
    return (options.forUpdate ? query.forUpdate() : query).executeTakeFirst() as Promise<
      ObjectRow | undefined
    >;
  },

  listObjects(executor: Executor, bucket: string, limit: number, after: Date | undefined) {
    let query = executor.selectFrom('files.objects').select(OBJECT_COLUMNS).where('bucket', '=', bucket);
    if (after !== undefined) query = query.where('created_at', '<', after);
    return query.orderBy('created_at', 'desc').limit(limit).execute() as Promise<ObjectRow[]>;
  },

  /**
   * One person's objects in per-user buckets (all of them, or `bucket`'s), newest first, after a
   * keyset position. The position is the creation time as text with its microseconds, which a JS
   * Date would lose, so that objects created in the same millisecond are neither skipped nor repeated.
   */
  personalObjects(
    executor: Executor,
    ownerId: string,
    bucket: string | undefined,
    limit: number,
    after: { readonly createdAt: string; readonly id: string } | undefined,
  ) {
    let query = executor
      .selectFrom('files.objects')
      .select(['id', 'bucket', 'name', 'size', 'content_type', 'storage_class', 'created_at'])
      .select(
        sql<string>`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`.as('position'),
      )
      .where('tenant_id', 'is', null)
      .where('owner_id', '=', ownerId);
    if (bucket !== undefined) query = query.where('bucket', '=', bucket);
    if (after !== undefined)
      query = query.where(
        sql<boolean>`(created_at, id) < (cast(${after.createdAt} as timestamptz), cast(${after.id} as uuid))`,
      );
    return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  },

  deleteObject(trx: Executor, id: string): Promise<ObjectRow | undefined> {
    return trx
      .deleteFrom('files.objects')
      .where('id', '=', id)
      .returning(OBJECT_COLUMNS)
      .executeTakeFirst() as Promise<ObjectRow | undefined>;
  },

  /** Objects of the scope a lifecycle rule makes due: to delete, or to archive (still standard). */
  dueObjects(executor: Executor, rules: readonly DueRule[], limit: number): Promise<ObjectRow[]> {
    if (rules.length === 0) return Promise.resolve([]);
    return executor
      .selectFrom('files.objects')
      .select(OBJECT_COLUMNS)
      .where((eb) =>
        eb.or(
          rules.flatMap((rule) => [
            ...(rule.deleteBefore === undefined
              ? []
              : [eb.and([eb('bucket', '=', rule.bucket), eb('created_at', '<', rule.deleteBefore)])]),
            ...(rule.archiveBefore === undefined
              ? []
              : [
                  eb.and([
                    eb('bucket', '=', rule.bucket),
                    eb('created_at', '<', rule.archiveBefore),
                    eb('storage_class', '=', 'standard'),
                  ]),
                ]),
          ]),
        ),
      )
      .orderBy('created_at')
      .limit(limit)
      .execute() as Promise<ObjectRow[]>;
  },

  async markArchived(executor: Executor, id: string): Promise<void> {
    await executor
      .updateTable('files.objects')
      .set({ storage_class: 'archive' })
      .where('id', '=', id)
      .execute();
  },

  /** Which of `blobKeys` have a record (in the scope the executor acts in). */
  async recordedBlobKeys(executor: Executor, blobKeys: readonly string[]): Promise<Set<string>> {
    if (blobKeys.length === 0) return new Set();
    const rows = await executor
      .selectFrom('files.objects')
      .select('blob_key')
      .where('blob_key', 'in', blobKeys)
      .execute();
    return new Set(rows.map((row) => row.blob_key));
  },

  async signingKey(executor: Executor): Promise<string | undefined> {
    const row = await executor
      .selectFrom('files.signing_keys')
      .select('sealed_key')
      .where('id', '=', 'download')
      .executeTakeFirst();
    return row?.sealed_key;
  },

  async insertSigningKey(executor: Executor, sealedKey: string): Promise<void> {
    await executor
      .insertInto('files.signing_keys')
      .values({ id: 'download', sealed_key: sealedKey })
      .onConflict((conflict) => conflict.column('id').doNothing())
      .execute();
  },

  /** Privacy (owner role, every tenant): the person's objects. */
  /**
   * Cleanup (owner role, across scopes: variants are shared by every object with the same bytes):
   * which of these contents some object still holds.
   */
  async heldContents(connection: SqlConnection, sha256s: readonly string[]): Promise<Set<string>> {
    if (sha256s.length === 0) return new Set();
    const { rows } = await connection.query<{ sha256: string }>(
      'select distinct sha256 from files.objects where sha256 = any($1::text[])',
      [sha256s],
    );
    return new Set(rows.map((row) => row.sha256));
  },

  async objectsOwnedBy(connection: SqlConnection, userId: string): Promise<ObjectRow[]> {
    const { rows } = await connection.query<ObjectRow>(
      `select ${OBJECT_COLUMNS.join(', ')} from files.objects where owner_id = $1 order by created_at`,
      [userId],
    );
    return rows;
  },

  /**
   * Privacy (owner role): deletes the person's objects except in `keptBuckets`, whose objects stay
   * their organization's with no owner; returns the deleted rows (their blobs go next) after
   * releasing their usage.
   */
  /**
   * An organization deleted: its objects' records and its usage row (no foreign key reaches them:
   * objects may belong to a user alone). Returns the records, whose blobs the caller deletes.
   */
  async eraseTenantObjects(connection: SqlConnection, tenantId: string): Promise<ObjectRow[]> {
    const { rows } = await connection.query<ObjectRow>(
      `delete from files.objects where tenant_id = $1 returning ${OBJECT_COLUMNS.join(', ')}`,
      [tenantId],
    );
    await connection.query(`delete from files.usage where scope_id = $1 and scope_kind = 'tenant'`, [
      tenantId,
    ]);
    return rows;
  },

  async eraseObjectsOwnedBy(
    connection: SqlConnection,
    userId: string,
    keptBuckets: readonly string[],
  ): Promise<ObjectRow[]> {
    await connection.query(
      `update files.objects set owner_id = null
        where owner_id = $1 and tenant_id is not null and bucket = any($2::text[])`,
      [userId, keptBuckets],
    );
    const { rows } = await connection.query<ObjectRow>(
      `delete from files.objects where owner_id = $1 returning ${OBJECT_COLUMNS.join(', ')}`,
      [userId],
    );
    await connection.query(
      `update files.usage u set bytes = greatest(u.bytes - d.bytes, 0), objects = greatest(u.objects - d.objects, 0)
         from (select coalesce(tenant_id, owner_id) as scope_id, sum(size) as bytes, count(*) as objects
                 from jsonb_to_recordset($1::jsonb) as r(tenant_id uuid, owner_id uuid, size bigint)
                group by 1) d
        where u.scope_id = d.scope_id`,
      [
        JSON.stringify(
          rows.map((row) => ({ tenant_id: row.tenant_id, owner_id: row.owner_id, size: row.size })),
        ),
      ],
    );
    return rows;
  },
};
