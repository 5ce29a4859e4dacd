import { filesErrors } from './files.errors.js';

/** Who an object of a bucket belongs to, and so who may read it. */
export type BucketScope =
  /** The organization of the request (`X-Org-Id`): every member reads, members upload. */
  | 'tenant'
  /** The signed-in user alone, whatever organization (avatars, personal documents). */
  | 'user';

/** What happens to a bucket's objects as they age; days count from the upload. */
export interface BucketLifecycle {
  /** Move objects to the archive storage class (S3 `GLACIER_IR` by default) after this many days. */
  readonly archiveAfterDays?: number;
  /** Delete objects (bytes and records) after this many days. */
  readonly deleteAfterDays?: number;
}

/** A bucket as declared in code. */
export interface BucketDefinition {
  /** lower-kebab-case, unique in the server; part of URLs and blob keys. */
  readonly name: string;
  /** Largest object, in bytes; enforced while the bytes stream in. */
  readonly maxBytes: number;
  /**
   * Content types accepted, checked on the bytes (sniffed), never on the client's header:
   * `image/png`, `image/*`, `audio/*`, `application/pdf`… Omitted: any content.
   */
  readonly allowedTypes?: readonly string[];
  /** Public objects are served without a signature, cacheable by any CDN; default private. */
  readonly public?: boolean;
  /** Default `tenant`. */
  readonly scope?: BucketScope;
  readonly lifecycle?: BucketLifecycle;
  /**
   * When the uploader's data is erased (GDPR), keep their objects of this bucket as the
   * organization's (the owner is cleared) instead of deleting them: invoices, contracts. Default
   * false: their objects are deleted.
   */
  readonly keepOnErase?: boolean;
  /**
   * Objects of this bucket are archives of records about several people: gzip-compressed NDJSON,
   * one record (a JSON object) a line, naming its person's user id in `subjectField` (old chat
   * exported from the database). Each upload says which people it names (`subjects`); a
   * person's privacy export then includes their records from every archive, and their erasure
   * rewrites each archive without them (removed, not pseudonymized: a record's own text may name
   * or describe them). Organization-scoped buckets only.
   */
  readonly recordArchive?: { readonly subjectField: string };
}

/** A declared bucket with its defaults applied. */
export interface Bucket
  extends Required<Omit<BucketDefinition, 'lifecycle' | 'allowedTypes' | 'recordArchive'>> {
  readonly allowedTypes: readonly string[] | undefined;
  readonly recordArchive: { readonly subjectField: string } | undefined;
  readonly lifecycle: BucketLifecycle | undefined;
}

const BUCKET_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Declares a bucket: its limits are checked where it is written, so a typo fails at start. Pass
 * it to `createFilesModule({ buckets })`, or register it from a module's `setup` with
 * `files.registerBucket(bucket)`.
 *
 * @example
 * export const recordings = defineBucket({
 *   name: 'call-recordings',
 *   maxBytes: 200 * 1024 * 1024,
 *   allowedTypes: ['audio/*'],
 *   lifecycle: { archiveAfterDays: 180, deleteAfterDays: 730 },
 * });
 */
export function defineBucket(definition: BucketDefinition): Bucket {
  const { name } = definition;
  if (!BUCKET_NAME.test(name))
    throw filesErrors.invalidBucket(name, 'must be lower-kebab-case (a-z, 0-9, -), starting with a letter');
  if (!Number.isSafeInteger(definition.maxBytes) || definition.maxBytes < 1)
    throw filesErrors.invalidBucket(name, 'needs maxBytes, a positive integer');
  for (const type of definition.allowedTypes ?? []) {
    if (!/^[a-z0-9.+-]+\/(\*|[a-z0-9.+-]+)$/.test(type))
      throw filesErrors.invalidBucket(
        name,
        `has an invalid content type "${type}" (e.g. image/png, image/*)`,
      );
  }
  const { archiveAfterDays, deleteAfterDays } = definition.lifecycle ?? {};
  for (const days of [archiveAfterDays, deleteAfterDays]) {
    if (days !== undefined && (!Number.isInteger(days) || days < 1))
      throw filesErrors.invalidBucket(name, 'lifecycle days must be positive integers');
  }
  if (archiveAfterDays !== undefined && deleteAfterDays !== undefined && deleteAfterDays <= archiveAfterDays)
    throw filesErrors.invalidBucket(
      name,
      'must delete after it archives (deleteAfterDays > archiveAfterDays)',
    );
  if (definition.recordArchive !== undefined && (definition.scope ?? 'tenant') !== 'tenant')
    throw filesErrors.invalidBucket(name, 'a record archive must be organization-scoped (scope: tenant)');
  if (
    definition.recordArchive !== undefined &&
    !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(definition.recordArchive.subjectField)
  )
    throw filesErrors.invalidBucket(name, 'recordArchive.subjectField must name a JSON field (e.g. userId)');
  return Object.freeze({
    name,
    maxBytes: definition.maxBytes,
    allowedTypes:
      definition.allowedTypes === undefined ? undefined : Object.freeze([...definition.allowedTypes]),
    public: definition.public ?? false,
    scope: definition.scope ?? 'tenant',
    lifecycle: definition.lifecycle === undefined ? undefined : Object.freeze({ ...definition.lifecycle }),
    keepOnErase: definition.keepOnErase ?? false,
    recordArchive:
      definition.recordArchive === undefined ? undefined : Object.freeze({ ...definition.recordArchive }),
  });
}

/** Whether `contentType` is one of `allowed` (`image/*` matches every image type). */
export function isTypeAllowed(contentType: string, allowed: readonly string[] | undefined): boolean {
  if (allowed === undefined) return true;
  return allowed.some((pattern) =>
    pattern.endsWith('/*') ? contentType.startsWith(pattern.slice(0, -1)) : contentType === pattern,
  );
}
