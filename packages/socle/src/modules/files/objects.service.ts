import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { Transaction } from 'kysely';
import {
  type BlobRead,
  type BlobStore,
  type ByteRange,
  type Clock,
  type Database,
  isUuid,
  type Logger,
  type MetricCounter,
  type ScopeAccess,
  type SecretBox,
  tenantSettings,
  withOwnerTransaction,
} from '../../kernel/index.js';
import { type Bucket, type BucketDefinition, defineBucket } from './buckets.js';
import { filesErrors } from './files.errors.js';
import type { FilesTables } from './files.tables.js';
import { parseRange } from './http-ranges.js';
import { type DueRule, type ObjectRow, objectsStore } from './objects.store.js';
import { createUrlSigner, type UrlSigner } from './signed-urls.js';
import { createUploadInspection } from './upload-inspection.js';
import { VARIANT_KEY_PREFIX, variantBlobDirectory } from './variants/index.js';

/** A stored object: its bytes are complete and verified. */
export interface FileObject {
  readonly id: string;
  readonly bucket: string;
  /** The organization of a tenant-scoped bucket's object; null in per-user buckets. */
  readonly tenantId: string | null;
  /** Who uploaded it (null once erased from a `keepOnErase` bucket). */
  readonly ownerId: string | null;
  readonly name: string | null;
  readonly size: number;
  /** Hex SHA-256 of the bytes; also the ETag. */
  readonly sha256: string;
  /** Sniffed from the bytes, never taken from the client's header (except for plain text). */
  readonly contentType: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly storageClass: 'standard' | 'archive';
  readonly createdAt: Date;
}

/** Who acts: the organization (tenant buckets) and the user (owner; per-user buckets). */
export interface FilesActor {
  readonly tenantId?: string | undefined;
  readonly userId?: string | undefined;
}

/** An upload, as a route or a module hands it to `upload`. */
export interface UploadInput extends FilesActor {
  readonly bucket: string;
  /** The bytes, streamed: never held whole in memory. */
  readonly body: Readable;
  /** The client's `Content-Type`; only believed for text (see docs/files.md). */
  readonly declaredType?: string | undefined;
  /** The client's `Content-Length`: refused at once when over the limit or the quota. */
  readonly declaredLength?: number | undefined;
  /** The file's name, for `Content-Disposition`. */
  readonly name?: string | undefined;
  readonly metadata?: Readonly<Record<string, unknown>> | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Of a record archive (a bucket's `recordArchive`): the user ids its records name. */
  readonly subjects?: readonly string[] | undefined;
}

/** A download link and when it stops working. */
export interface DownloadUrl {
  /** Socle's own path (local backend, public buckets) or the store's presigned URL (S3). */
  readonly url: string;
  readonly expiresAt: Date | null;
}

export interface DownloadUrlOptions {
  /** Default 3600 seconds; at most 7 days (S3's limit). */
  readonly expiresInSeconds?: number;
  /** `attachment` (save) or `inline` (show in the browser); default inline for media and PDF. */
  readonly disposition?: 'inline' | 'attachment';
}

/** An object opened for reading, with what its response needs. */
export interface OpenedObject {
  readonly object: FileObject;
  /** Undefined when If-None-Match matched (answer 304). */
  readonly read: BlobRead | undefined;
  readonly range: ByteRange | undefined;
}

export interface FilesServiceOptions {
  readonly db: Database<FilesTables>;
  readonly blobs: BlobStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly secrets: SecretBox;
  readonly scope: ScopeAccess;
  readonly buckets: readonly (Bucket | BucketDefinition)[];
  /** Bytes each organization (or user, for per-user buckets) may store; undefined: no limit. */
  readonly quotaBytes: FilesQuota | undefined;
  readonly metrics: {
    readonly bytesIn: MetricCounter;
    readonly bytesOut: MetricCounter;
    readonly objectsStored: MetricCounter;
    readonly objectsDeleted: MetricCounter;
    readonly uploadsFailed: MetricCounter;
    readonly uploadsAbandoned: MetricCounter;
  };
}

const DEFAULT_URL_SECONDS = 3600;
const MAX_URL_SECONDS = 7 * 24 * 3600;
/** Blobs younger than this are never taken for abandoned: their upload may still be committing. */
const ABANDONED_AFTER_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const WALK_PAGE = 200;
/** Record archives are read and rewritten whole, in memory (see archivedRecordsOf). */
const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);
const RESERVED_BUCKET_NAMES = new Set(['signed', 'public', 'tus', 'presigned']);

/** Whose objects: an organization's (tenant buckets) or a user's (per-user buckets). */
export interface FilesScope {
  readonly kind: 'tenant' | 'user';
  readonly id: string;
}
type Scope = FilesScope;

/** Bytes a scope may store: one number for all, or per scope (plans); undefined: no limit. */
export type FilesQuota = number | ((scope: FilesScope) => number | undefined | Promise<number | undefined>);

export function toFileObject(row: ObjectRow): FileObject {
  return {
    id: row.id,
    bucket: row.bucket,
    tenantId: row.tenant_id,
    ownerId: row.owner_id,
    name: row.name,
    size: Number(row.size),
    sha256: row.sha256,
    contentType: row.content_type,
    metadata: row.metadata,
    storageClass: row.storage_class,
    createdAt: row.created_at,
  };
}

const tenantScopeOf = (scope: Scope) => (scope.kind === 'tenant' ? { tenantId: scope.id } : {});

const settingsOf = (scope: Scope, userId?: string) =>
  scope.kind === 'tenant'
    ? tenantSettings({ tenantId: scope.id, ...(userId === undefined ? {} : { userId }) })
    : tenantSettings({ tenantId: '', userId: scope.id });

/** `scope` parameter of signed URLs and blob key segment: `t.<uuid>` or `u.<uuid>`. */
export const scopeToken = (scope: Scope) => `${scope.kind === 'tenant' ? 't' : 'u'}.${scope.id}`;
export function parseScopeToken(token: string | undefined): Scope | undefined {
  const match = /^([tu])\.([0-9a-f-]{36})$/.exec(token ?? '');
  if (match === null) return undefined;
  return { kind: match[1] === 't' ? 'tenant' : 'user', id: match[2] as string };
}

const POSITION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** A listing's opaque cursor: base64url of `<created_at with microseconds>|<id>`. */
const encodeObjectCursor = (createdAt: string, id: string) =>
  Buffer.from(`${createdAt}|${id}`, 'utf8').toString('base64url');

/** The position a cursor stands for, or 400 `files.invalid_cursor`. */
function decodeObjectCursor(cursor: string): { createdAt: string; id: string } {
  const [createdAt, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (
    rest.length > 0 ||
    createdAt === undefined ||
    id === undefined ||
    !POSITION.test(createdAt) ||
    Number.isNaN(Date.parse(createdAt)) ||
    !isUuid(id)
  )
    throw filesErrors.invalidCursor();
  return { createdAt, id };
}

/** A `Content-Disposition` value with the file's name (ASCII fallback and RFC 6266 UTF-8 form). */
export function contentDisposition(kind: 'inline' | 'attachment', name: string | null): string {
  if (name === null) return kind;
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

const defaultDisposition = (contentType: string) =>
  /^(image|audio|video)\/|^application\/pdf$|^text\/plain$/.test(contentType) ? 'inline' : 'attachment';

/**
 * Buckets and objects: streamed, verified uploads, signed downloads, lifecycle and cleanup. The
 * object record is written only after the blob is complete, in one transaction with the quota
 * charge and (optionally) the caller's own rows and jobs; a failure at any step deletes the blob.
 */
export async function createFilesService(options: FilesServiceOptions) {
  const { db, blobs, clock, log, metrics, scope: scopeAccess } = options;
  const buckets = new Map<string, Bucket>();

  const registerBucket = (definition: Bucket | BucketDefinition): Bucket => {
    const bucket = defineBucket(definition);
    if (RESERVED_BUCKET_NAMES.has(bucket.name))
      throw filesErrors.invalidBucket(bucket.name, 'is a reserved name (signed, public)');
    if (buckets.has(bucket.name)) throw filesErrors.duplicateBucket(bucket.name);
    buckets.set(bucket.name, bucket);
    return bucket;
  };
  for (const definition of options.buckets) registerBucket(definition);

  const bucketOf = (name: string): Bucket => {
    const bucket = buckets.get(name);
    if (bucket === undefined) throw filesErrors.bucketNotFound(name);
    return bucket;
  };

  /** The scope an actor's object of `bucket` belongs to; 400/401 when the actor lacks it. */
  const scopeOf = (bucket: Bucket, actor: FilesActor): Scope => {
    if (bucket.scope === 'user') {
      if (actor.userId === undefined) throw filesErrors.notFound();
      return { kind: 'user', id: actor.userId };
    }
    if (actor.tenantId === undefined) throw filesErrors.notFound();
    return { kind: 'tenant', id: actor.tenantId };
  };

  const signer: UrlSigner = createUrlSigner(await loadSigningKey());

  async function loadSigningKey(): Promise<Buffer> {
    const context = 'files.signing_key';
    let sealed = await objectsStore.signingKey(db.kysely);
    if (sealed === undefined) {
      await objectsStore.insertSigningKey(
        db.kysely,
        options.secrets.seal(randomBytes(32).toString('base64'), context),
      );
      sealed = (await objectsStore.signingKey(db.kysely)) as string;
    }
    return Buffer.from(options.secrets.openStored(sealed, context), 'base64');
  }

  const deleteBlobQuietly = (key: string) =>
    blobs.delete(key).catch((error: unknown) => {
      // The cleanup job removes it later: a blob without a record is never served.
      log.warn({ err: error, key }, 'Blob could not be deleted; the cleanup job will retry');
    });

  /**
   * Deletes an object's blob and the cached variants of its bytes (an erased photo leaves no
   * thumbnail behind; another object with the same bytes renders its variants again), logging
   * failures: the cleanup job removes what is left.
   */
  const deleteObjectBlobs = async (row: Pick<ObjectRow, 'blob_key' | 'sha256'>): Promise<void> => {
    await deleteBlobQuietly(row.blob_key);
    try {
      for await (const info of blobs.list(`${VARIANT_KEY_PREFIX}${variantBlobDirectory(row.sha256)}`))
        await blobs.delete(info.key);
    } catch (error) {
      log.warn(
        { err: error, sha256: row.sha256 },
        'Variants could not be deleted; the cleanup job will retry',
      );
    }
  };

  /** A record archive's records (gzip-compressed NDJSON, one JSON object a line). */
  async function readArchive(blobKey: string): Promise<Record<string, unknown>[]> {
    const read = await blobs.get(blobKey);
    if (read === undefined) return [];
    const text = (await gunzipAsync(await buffer(read.body))).toString('utf8');
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  async function upload<T = undefined, Tables = FilesTables>(
    input: UploadInput,
    attach?: (trx: Transaction<Tables>, object: FileObject) => Promise<T>,
  ): Promise<{ readonly object: FileObject; readonly attached: T }> {
    const bucket = bucketOf(input.bucket);
    const scope = scopeOf(bucket, input);
    const settings = settingsOf(scope, input.userId);
    try {
      if (input.declaredLength !== undefined && input.declaredLength > bucket.maxBytes)
        throw filesErrors.tooLarge(bucket.maxBytes);
      let quota: { remainingBytes: number; quotaBytes: number; usedBytes: number } | undefined;
      const quotaBytes =
        typeof options.quotaBytes === 'function' ? await options.quotaBytes(scope) : options.quotaBytes;
      if (quotaBytes !== undefined) {
        const usedBytes = await objectsStore.usedBytes(db.withSettings(settings), scope.id);
        quota = { quotaBytes, usedBytes, remainingBytes: quotaBytes - usedBytes };
        if ((input.declaredLength ?? 1) > quota.remainingBytes)
          throw filesErrors.quotaExceeded(quota.quotaBytes, usedBytes);
      }
      const inspection = createUploadInspection({
        maxBytes: bucket.maxBytes,
        ...(quota === undefined ? {} : { quota }),
        allowedTypes: bucket.allowedTypes,
        declaredType: input.declaredType,
      });
      const id = randomUUID();
      const blobKey = `${scopeToken(scope)}/${bucket.name}/${id}`;
      // Errors of the request body (a client that hung up) fail the inspection, so the write. The
      // reverse does not hold: a refusal leaves the body alone, so the client still gets its 413.
      // The inspection's refusal is read from `inspection.errored` below. A body shorter than
      // the sniffing window is refused at its end (flush), and the stream then emits its 'error'
      // after the blob store stopped listening: without a listener of its own that event was an
      // uncaught exception (an 8-byte non-image posted to an image bucket).
      inspection.on('error', () => {});
      const forwardBodyError = (error: Error) => inspection.destroy(error);
      input.body.once('error', forwardBodyError);
      input.body.pipe(inspection);
      try {
        await blobs.put(blobKey, inspection, input.signal === undefined ? {} : { signal: input.signal });
      } catch (error) {
        input.body.unpipe(inspection);
        // The inspection's own refusal (413, 415, 409) explains better than the store's wrapping.
        throw inspection.errored ?? error;
      } finally {
        input.body.off('error', forwardBodyError);
      }
      const inspected = inspection.result();
      metrics.bytesIn.inc(inspected.size);
      try {
        // In the object's scope, so jobs the caller enqueues in `attach` carry its tenant.
        const stored = await scopeAccess.run({ ...tenantScopeOf(scope), userId: input.userId }, () =>
          db.transaction(
            async (trx) => {
              if (!(await objectsStore.chargeUsage(trx, scope, inspected.size, quotaBytes))) {
                const used = await objectsStore.usedBytes(trx, scope.id);
                throw filesErrors.quotaExceeded(quotaBytes ?? 0, used);
              }
              const row = await objectsStore.insertObject(trx, {
                id,
                tenant_id: scope.kind === 'tenant' ? scope.id : null,
                owner_id: input.userId ?? null,
                bucket: bucket.name,
                blob_key: blobKey,
                name: input.name ?? null,
                size: inspected.size,
                sha256: inspected.sha256,
                content_type: inspected.contentType,
                metadata: input.metadata ?? {},
                created_at: clock.now(),
              });
              if (bucket.recordArchive !== undefined && scope.kind === 'tenant')
                await objectsStore.insertArchiveSubjects(
                  trx,
                  id,
                  scope.id,
                  [...new Set(input.subjects ?? [])].filter((userId) => isUuid(userId)),
                );
              const object = toFileObject(row);
              const attached = (await attach?.(trx as unknown as Transaction<Tables>, object)) as T;
              return { object, attached };
            },
            { settings },
          ),
        );
        metrics.objectsStored.inc();
        return stored;
      } catch (error) {
        await deleteBlobQuietly(blobKey);
        throw error;
      }
    } catch (error) {
      metrics.uploadsFailed.inc();
      throw error;
    }
  }

  /** The object, or undefined (another scope's objects are invisible: row-level security). */
  async function find(actor: FilesActor, bucketName: string, id: string): Promise<FileObject | undefined> {
    const bucket = bucketOf(bucketName);
    const scope = scopeOf(bucket, actor);
    const row = await objectsStore.findObject(
      db.withSettings(settingsOf(scope, actor.userId)),
      bucket.name,
      id,
    );
    return row === undefined ? undefined : toFileObject(row);
  }

  /** Inside the caller's transaction (which carries its tenant): attach an existing object to a row. */
  async function findInTransaction<Tables>(
    trx: Transaction<Tables>,
    bucketName: string,
    id: string,
  ): Promise<FileObject | undefined> {
    const bucket = bucketOf(bucketName);
    const row = await objectsStore.findObject(trx as unknown as Transaction<FilesTables>, bucket.name, id, {
      forUpdate: true,
    });
    return row === undefined ? undefined : toFileObject(row);
  }

  async function list(actor: FilesActor, bucketName: string, limit: number, before?: Date) {
    const bucket = bucketOf(bucketName);
    const scope = scopeOf(bucket, actor);
    const rows = await objectsStore.listObjects(
      db.withSettings(settingsOf(scope, actor.userId)),
      bucket.name,
      limit,
      before,
    );
    return rows.map(toFileObject);
  }

  /** Deletes the record, then the blob (a blob left by a crash is removed by the cleanup job). */
  async function remove(actor: FilesActor, bucketName: string, id: string): Promise<boolean> {
    const bucket = bucketOf(bucketName);
    const scope = scopeOf(bucket, actor);
    const row = await deleteRecord(scope, bucket.name, id);
    if (row === undefined) return false;
    await deleteObjectBlobs(row);
    return true;
  }

  async function deleteRecord(scope: Scope, bucket: string, id: string): Promise<ObjectRow | undefined> {
    const row = await db.transaction(
      async (trx) => {
        const existing = await objectsStore.findObject(trx, bucket, id, { forUpdate: true });
        if (existing === undefined) return undefined;
        await objectsStore.deleteObject(trx, id);
        await objectsStore.releaseUsage(trx, scope.id, Number(existing.size), 1);
        return existing;
      },
      { settings: settingsOf(scope) },
    );
    if (row !== undefined) metrics.objectsDeleted.inc();
    return row;
  }

  async function downloadUrl(object: FileObject, urlOptions: DownloadUrlOptions = {}): Promise<DownloadUrl> {
    const bucket = bucketOf(object.bucket);
    const disposition = urlOptions.disposition ?? defaultDisposition(object.contentType);
    const scope: Scope =
      object.tenantId === null
        ? { kind: 'user', id: object.ownerId as string }
        : { kind: 'tenant', id: object.tenantId };
    if (bucket.public) {
      return { url: `/files/public/${bucket.name}/${scope.id}/${object.id}`, expiresAt: null };
    }
    const seconds = Math.min(
      Math.max(urlOptions.expiresInSeconds ?? DEFAULT_URL_SECONDS, 1),
      MAX_URL_SECONDS,
    );
    const expiresAt = new Date(clock.now().getTime() + seconds * 1000);
    const presigned = await blobs.presignGet(`${scopeToken(scope)}/${bucket.name}/${object.id}`, {
      expiresInSeconds: seconds,
      contentDisposition: contentDisposition(disposition, object.name),
      contentType: object.contentType,
    });
    if (presigned !== undefined) return { url: presigned, expiresAt };
    return {
      url: signer.sign(
        `/files/signed/${bucket.name}/${object.id}`,
        { scope: scopeToken(scope), disposition },
        expiresAt,
      ),
      expiresAt,
    };
  }

  /**
   * Opens an object for a response: reads its record in `scope` (404 for anything else) and its
   * blob (or the range), unless `ifNoneMatch` names its ETag.
   */
  async function open(
    scope: Scope,
    bucketName: string,
    id: string,
    request: { readonly range?: string | undefined; readonly ifNoneMatch?: string | undefined },
  ): Promise<OpenedObject> {
    const bucket = bucketOf(bucketName);
    if (bucket.scope !== scope.kind) throw filesErrors.notFound();
    const row = await objectsStore.findObject(db.withSettings(settingsOf(scope)), bucket.name, id);
    if (row === undefined) throw filesErrors.notFound();
    const object = toFileObject(row);
    if (request.ifNoneMatch !== undefined && etagMatches(request.ifNoneMatch, object.sha256))
      return { object, read: undefined, range: undefined };
    const range = parseRange(request.range, object.size);
    const read = await blobs.get(row.blob_key, range === undefined ? {} : { range });
    if (read === undefined) throw filesErrors.notFound();
    metrics.bytesOut.inc(read.contentLength);
    return { object, read, range };
  }

  /** Applies every bucket's lifecycle, scope by scope (each under its own row-level security). */
  async function runLifecycle(): Promise<{ archived: number; deleted: number }> {
    const now = clock.now().getTime();
    const rules: DueRule[] = [...buckets.values()].flatMap((bucket) =>
      bucket.lifecycle === undefined
        ? []
        : [
            {
              bucket: bucket.name,
              archiveBefore:
                bucket.lifecycle.archiveAfterDays === undefined
                  ? undefined
                  : new Date(now - bucket.lifecycle.archiveAfterDays * DAY_MS),
              deleteBefore:
                bucket.lifecycle.deleteAfterDays === undefined
                  ? undefined
                  : new Date(now - bucket.lifecycle.deleteAfterDays * DAY_MS),
            },
          ],
    );
    let archived = 0;
    let deleted = 0;
    if (rules.length === 0) return { archived, deleted };
    for await (const scope of scopes()) {
      for (;;) {
        const due = await objectsStore.dueObjects(db.withSettings(settingsOf(scope)), rules, WALK_PAGE);
        let skipped = 0;
        for (const row of due) {
          const rule = rules.find((candidate) => candidate.bucket === row.bucket) as DueRule;
          try {
            if (rule.deleteBefore !== undefined && row.created_at < rule.deleteBefore) {
              if ((await deleteRecord(scope, row.bucket, row.id)) !== undefined) {
                await deleteObjectBlobs(row);
                deleted += 1;
              }
            } else {
              await blobs.setStorageClass(row.blob_key, 'archive');
              await objectsStore.markArchived(db.withSettings(settingsOf(scope)), row.id);
              archived += 1;
            }
          } catch (error) {
            // A module row still referencing the object (foreign key), or a store hiccup: the
            // other objects go on, this one is tried again on the next run.
            skipped += 1;
            log.warn(
              { err: error, objectId: row.id, bucket: row.bucket },
              'Lifecycle could not apply to an object',
            );
          }
        }
        if (due.length < WALK_PAGE || skipped === due.length) break;
      }
    }
    return { archived, deleted };
  }

  async function* scopes(): AsyncGenerator<Scope> {
    let after: string | undefined;
    for (;;) {
      const page = await objectsStore.scopesWithObjects(db.kysely, after, WALK_PAGE);
      for (const row of page) yield { kind: row.scope_kind, id: row.scope_id };
      if (page.length < WALK_PAGE) return;
      after = page[page.length - 1]?.scope_id;
    }
  }

  /**
   * Deletes blobs no record names (an upload that crashed between its last byte and its commit, a
   * delete whose blob removal failed) once older than an hour, and the local backend's stale
   * temporary files. Returns how many it removed.
   */
  async function removeAbandonedUploads(): Promise<number> {
    const olderThan = new Date(clock.now().getTime() - ABANDONED_AFTER_MS);
    let removed = await blobs.removeStaleTemporaryFiles(olderThan);
    for (const prefix of ['t.', 'u.']) {
      let batch: { key: string; scope: Scope }[] = [];
      const sweep = async () => {
        const byScope = new Map<string, { scope: Scope; keys: string[] }>();
        for (const { key, scope } of batch) {
          const group = byScope.get(scope.id) ?? { scope, keys: [] };
          group.keys.push(key);
          byScope.set(scope.id, group);
        }
        for (const { scope, keys } of byScope.values()) {
          const recorded = await objectsStore.recordedBlobKeys(db.withSettings(settingsOf(scope)), keys);
          for (const key of keys) {
            if (recorded.has(key)) continue;
            await blobs.delete(key);
            removed += 1;
          }
        }
        batch = [];
      };
      for await (const info of blobs.list(prefix)) {
        if (info.lastModified >= olderThan) continue;
        const scope = parseScopeToken(info.key.split('/')[0]);
        if (scope === undefined) continue;
        batch.push({ key: info.key, scope });
        if (batch.length >= WALK_PAGE) await sweep();
      }
      await sweep();
    }
    removed += await removeOrphanVariants(olderThan);
    if (removed > 0) {
      metrics.uploadsAbandoned.inc(removed);
      log.info({ removed }, 'Removed abandoned uploads');
    }
    return removed;
  }

  /**
   * Deletes cached variants whose source bytes no object holds any more (a delete whose variant
   * removal failed, a render that finished after its source was erased) and variants stored
   * before they were grouped by source. Returns how many it removed.
   */
  async function removeOrphanVariants(olderThan: Date): Promise<number> {
    let removed = 0;
    let batch: string[] = [];
    const contentOf = (key: string) => {
      const parts = key.slice(VARIANT_KEY_PREFIX.length).split('/');
      return parts.length === 2 && /^[0-9a-f]{64}$/.test(parts[0] as string)
        ? (parts[0] as string)
        : undefined;
    };
    const sweep = async () => {
      const contents = [...new Set(batch.map(contentOf).filter((sha) => sha !== undefined))];
      const held = await withOwnerTransaction(db, (connection) =>
        objectsStore.heldContents(connection, contents),
      );
      for (const key of batch) {
        const sha256 = contentOf(key);
        if (sha256 !== undefined && held.has(sha256)) continue;
        await blobs.delete(key);
        removed += 1;
      }
      batch = [];
    };
    for await (const info of blobs.list(VARIANT_KEY_PREFIX)) {
      if (info.lastModified >= olderThan) continue;
      batch.push(info.key);
      if (batch.length >= WALK_PAGE) await sweep();
    }
    await sweep();
    return removed;
  }

  async function usage(actor: FilesActor, bucketName: string) {
    const scope = scopeOf(bucketOf(bucketName), actor);
    const bytes = await objectsStore.usedBytes(db.withSettings(settingsOf(scope, actor.userId)), scope.id);
    const quotaBytes =
      typeof options.quotaBytes === 'function' ? await options.quotaBytes(scope) : options.quotaBytes;
    return { usedBytes: bytes, quotaBytes: quotaBytes ?? null };
  }

  /**
   * An organization's use of each tenant bucket (objects, bytes) and its quota: read under its
   * row-level security, so per-user buckets (one person's files) are left out.
   */
  async function organizationUsage(tenantId: string) {
    const byBucket = await objectsStore.usageByBucket(db.withSettings(tenantSettings({ tenantId })));
    const scope: Scope = { kind: 'tenant', id: tenantId };
    const quotaBytes =
      typeof options.quotaBytes === 'function' ? await options.quotaBytes(scope) : options.quotaBytes;
    return {
      usedBytes: await objectsStore.usedBytes(db.withSettings(tenantSettings({ tenantId })), tenantId),
      quotaBytes: quotaBytes ?? null,
      buckets: [...buckets.values()].map((bucket) => {
        const used =
          bucket.scope === 'tenant' ? byBucket.find((row) => row.bucket === bucket.name) : undefined;
        return {
          bucket,
          objects: bucket.scope === 'tenant' ? (used?.objects ?? 0) : null,
          bytes: bucket.scope === 'tenant' ? (used?.bytes ?? 0) : null,
        };
      }),
    };
  }

  /**
   * A person's objects in per-user buckets, for the operator (names, sizes, types; never the
   * content), newest first, a page at a time: read under that person's row-level security, as
   * the person's own listing is.
   */
  async function personalObjects(
    userId: string,
    bucketName: string | undefined,
    limit: number,
    cursor: string | undefined,
  ) {
    if (bucketName !== undefined && bucketOf(bucketName).scope !== 'user')
      throw filesErrors.notPerUserBucket(bucketName);
    const rows = await objectsStore.personalObjects(
      db.withSettings(settingsOf({ kind: 'user', id: userId })),
      userId,
      bucketName,
      limit,
      cursor === undefined ? undefined : decodeObjectCursor(cursor),
    );
    const last = rows.length === limit ? rows[rows.length - 1] : undefined;
    return {
      objects: rows.map((row) => ({
        id: row.id,
        bucket: row.bucket,
        name: row.name,
        size: Number(row.size),
        contentType: row.content_type,
        storageClass: row.storage_class,
        createdAt: row.created_at.toISOString(),
      })),
      next: last === undefined ? null : encodeObjectCursor(last.position, last.id),
    };
  }

  /** The organizations (and users of per-user buckets) storing the most, with their quotas. */
  async function largestScopes(kind: 'tenant' | 'user' | undefined, limit: number) {
    const rows = await objectsStore.largestScopes(db.kysely, kind, limit);
    return Promise.all(
      rows.map(async (row) => {
        const quotaBytes =
          typeof options.quotaBytes === 'function'
            ? await options.quotaBytes({ kind: row.kind, id: row.id })
            : options.quotaBytes;
        return { ...row, quotaBytes: quotaBytes ?? null };
      }),
    );
  }

  return {
    registerBucket,
    bucket: bucketOf,
    /** Every bucket declared, in the order they were. */
    buckets: () => [...buckets.values()],
    organizationUsage,
    largestScopes,
    personalObjects,
    upload,
    find,
    findInTransaction,
    list,
    delete: remove,
    downloadUrl,
    open,
    usage,
    runLifecycle,
    removeAbandonedUploads,
    signer,
    /** Deletes a blob, logging a failure (the cleanup job removes what is left). */
    deleteBlobQuietly,
    deleteObjectBlobs,
    /** Deletes every blob of an organization's scope (it was deleted), logging failures. */
    async deleteTenantBlobs(tenantId: string): Promise<void> {
      const keys: string[] = [];
      for await (const info of blobs.list(`${scopeToken({ kind: 'tenant', id: tenantId })}/`))
        keys.push(info.key);
      for (const key of keys) await deleteBlobQuietly(key);
    },
    /**
     * A person's records in every record archive that names them (buckets declared with
     * `recordArchive`), by archive: what their privacy export includes. An archive is read whole
     * (one object is one export run: 10,000 chat messages are a few MB).
     */
    async archivedRecordsOf(userId: string) {
      const rows = await withOwnerTransaction(db, (connection) =>
        objectsStore.archivesNaming(connection, userId),
      );
      const archives = [];
      for (const row of rows) {
        const field = buckets.get(row.bucket)?.recordArchive?.subjectField;
        if (field === undefined) continue;
        const records = (await readArchive(row.blob_key)).filter((record) => record[field] === userId);
        archives.push({ objectId: row.id, bucket: row.bucket, name: row.name, records });
      }
      return archives;
    },

    /**
     * Rewrites every record archive naming the person without their records (erasure): per
     * archive, in one transaction holding its row, the new bytes are written to a new blob, the
     * row points at them and stops naming the person; the old blob is deleted after the commit. A
     * crash before the commit leaves the archive as it was (and a new blob no row names, which the
     * cleanup job removes); run again, it finds what is left to do. Returns how many it rewrote.
     */
    async eraseArchivedRecordsOf(userId: string): Promise<number> {
      const rows = await withOwnerTransaction(db, (connection) =>
        objectsStore.archivesNaming(connection, userId),
      );
      let rewritten = 0;
      for (const { id } of rows) {
        const replaced = await withOwnerTransaction(db, async (connection) => {
          const row = await objectsStore.lockObject(connection, id);
          const field = row === undefined ? undefined : buckets.get(row.bucket)?.recordArchive?.subjectField;
          if (row === undefined || field === undefined) return undefined;
          const kept = (await readArchive(row.blob_key)).filter((record) => record[field] !== userId);
          const bytes = await gzipAsync(
            Buffer.from(kept.map((record) => `${JSON.stringify(record)}\n`).join(''), 'utf8'),
          );
          const blobKey = `${row.blob_key.slice(0, row.blob_key.lastIndexOf('/'))}/${randomUUID()}`;
          await blobs.put(blobKey, Readable.from([bytes]));
          await objectsStore.replaceArchive(connection, row, userId, {
            blobKey,
            size: bytes.length,
            sha256: createHash('sha256').update(bytes).digest('hex'),
          });
          return row.blob_key;
        });
        if (replaced === undefined) continue;
        await deleteBlobQuietly(replaced);
        rewritten++;
      }
      return rewritten;
    },

    /** Buckets whose objects survive their uploader's erasure. */
    bucketsKeptOnErase: () => [...buckets.values()].filter((bucket) => bucket.keepOnErase).map((b) => b.name),
  };
}

/** Whether an `If-None-Match` header names the object's ETag (`"<sha256>"`, or `*`). */
function etagMatches(header: string, sha256: string): boolean {
  return header
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//, ''))
    .some((tag) => tag === '*' || tag === `"${sha256}"`);
}

/** The files service (`socle.servicesOf(files)`): see {@link createFilesService}. */
export type FilesService = Awaited<ReturnType<typeof createFilesService>>;
