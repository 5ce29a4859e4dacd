import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { assertBlobKey, type BlobInfo, type BlobStore, blobErrors } from './blob-store.js';
import { byteLimit } from './local-blob-store.js';

/** What `BLOB_URL=s3://bucket/prefix?endpoint=…&region=…&forcePathStyle=true` names. */
export interface S3Location {
  readonly bucket: string;
  /** Keys are stored under this prefix (`''` or ending with `/`). */
  readonly prefix: string;
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly forcePathStyle: boolean;
  /** The S3 storage class `archive` maps to; default `STANDARD_IA` (readable at once; R2 has it too). */
  readonly archiveStorageClass: string;
}

/** Parses an `s3://` BLOB_URL; throws `blobs.invalid_url` naming what is wrong. */
export function parseS3Url(text: string): S3Location {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw blobErrors.invalidUrl('must be a URL');
  }
  if (url.protocol !== 's3:' || url.hostname === '')
    throw blobErrors.invalidUrl('must be s3://bucket[/prefix][?endpoint=…&region=…&forcePathStyle=true]');
  const known = new Set(['endpoint', 'region', 'forcePathStyle', 'archiveStorageClass']);
  for (const name of url.searchParams.keys())
    if (!known.has(name)) throw blobErrors.invalidUrl(`has an unknown parameter "${name}"`);
  const endpoint = url.searchParams.get('endpoint') ?? undefined;
  if (endpoint !== undefined && !/^https?:\/\/[^/]/.test(endpoint))
    throw blobErrors.invalidUrl('endpoint must be an http(s) URL');
  const path = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  return {
    bucket: url.hostname,
    prefix: path === '' ? '' : `${path}/`,
    endpoint,
    region: url.searchParams.get('region') ?? 'us-east-1',
    forcePathStyle: ['1', 'true'].includes(url.searchParams.get('forcePathStyle') ?? 'false'),
    archiveStorageClass: url.searchParams.get('archiveStorageClass') ?? 'STANDARD_IA',
  };
}

const isMissing = (error: unknown) => {
  const name = (error as { name?: string }).name;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return name === 'NotFound' || name === 'NoSuchKey' || status === 404;
};

/** Parts of a streamed multipart upload, and how many are in flight: bounds memory per upload. */
const PART_SIZE = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT = 2;

/**
 * Blobs in an S3-compatible store (AWS, R2, B2, Spaces, MinIO, GCS interop) through the official
 * SDK. Credentials come from the SDK's usual chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
 * profiles, instance roles). Uploads stream through `@aws-sdk/lib-storage`: a single PUT for small
 * bodies, else a multipart upload (at most `PARTS_IN_FLIGHT` parts of `PART_SIZE` in memory) that
 * becomes visible only when completed and is aborted on failure.
 */
export function createS3BlobStore(location: S3Location, client?: S3Client): BlobStore {
  const s3 =
    client ??
    new S3Client({
      region: location.region,
      forcePathStyle: location.forcePathStyle,
      ...(location.endpoint === undefined ? {} : { endpoint: location.endpoint }),
    });
  const Bucket = location.bucket;
  const keyOf = (key: string) => {
    assertBlobKey(key);
    return `${location.prefix}${key}`;
  };
  const classOf = (storageClass: string | undefined): BlobInfo['storageClass'] =>
    storageClass === undefined || storageClass === 'STANDARD' ? 'standard' : 'archive';

  return {
    kind: 's3',

    async put(key, body, options = {}) {
      const Key = keyOf(key);
      const counted = byteLimit(options.maxBytes ?? Number.POSITIVE_INFINITY);
      // Errors of the source (a client that hung up) fail the limiter, so the upload fails.
      pipeline(body, counted, () => undefined);
      const upload = new Upload({
        client: s3,
        params: {
          Bucket,
          Key,
          Body: counted as Readable,
          ...(options.contentType === undefined ? {} : { ContentType: options.contentType }),
        },
        partSize: PART_SIZE,
        queueSize: PARTS_IN_FLIGHT,
        leavePartsOnError: false,
      });
      const onAbort = () => {
        counted.destroy(options.signal?.reason as Error);
        void upload.abort().catch(() => undefined);
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      try {
        if (options.signal?.aborted) throw options.signal.reason;
        await upload.done();
        return { size: counted.bytes };
      } catch (error) {
        // A body error surfaces from the SDK wrapped or not: report the stream's own error.
        throw counted.errored ?? error;
      } finally {
        options.signal?.removeEventListener('abort', onAbort);
      }
    },

    async get(key, options = {}) {
      const range = options.range;
      try {
        const response = await s3.send(
          new GetObjectCommand({
            Bucket,
            Key: keyOf(key),
            ...(range === undefined ? {} : { Range: `bytes=${range.start}-${range.end}` }),
          }),
        );
        const contentLength = Number(response.ContentLength ?? 0);
        const total = response.ContentRange?.split('/')[1];
        return {
          body: response.Body as Readable,
          size: total === undefined || total === '*' ? contentLength : Number(total),
          contentLength,
        };
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    },

    async head(key) {
      try {
        const response = await s3.send(new HeadObjectCommand({ Bucket, Key: keyOf(key) }));
        return {
          key,
          size: Number(response.ContentLength ?? 0),
          lastModified: response.LastModified ?? new Date(0),
          storageClass: classOf(response.StorageClass),
        };
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
    },

    async delete(key) {
      await s3.send(new DeleteObjectCommand({ Bucket, Key: keyOf(key) }));
    },

    async *list(prefix) {
      let ContinuationToken: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({
            Bucket,
            Prefix: `${location.prefix}${prefix}`,
            ...(ContinuationToken === undefined ? {} : { ContinuationToken }),
          }),
        );
        for (const item of page.Contents ?? []) {
          if (item.Key === undefined) continue;
          yield {
            key: item.Key.slice(location.prefix.length),
            size: Number(item.Size ?? 0),
            lastModified: item.LastModified ?? new Date(0),
            storageClass: classOf(item.StorageClass),
          };
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken !== undefined);
    },

    async setStorageClass(key, storageClass) {
      const Key = keyOf(key);
      // S3 changes the class of an object by copying it onto itself with the new class. REPLACE
      // (with the object's own type) rather than COPY: some S3-compatible stores only take a
      // self-copy that replaces metadata.
      const head = await s3.send(new HeadObjectCommand({ Bucket, Key }));
      await s3.send(
        new CopyObjectCommand({
          Bucket,
          Key,
          CopySource: `${Bucket}/${Key.split('/').map(encodeURIComponent).join('/')}`,
          StorageClass: (storageClass === 'archive'
            ? location.archiveStorageClass
            : 'STANDARD') as StorageClass,
          MetadataDirective: 'REPLACE',
          ...(head.ContentType === undefined ? {} : { ContentType: head.ContentType }),
          ...(head.Metadata === undefined ? {} : { Metadata: head.Metadata }),
        }),
      );
    },

    presignGet(key, options) {
      return getSignedUrl(
        s3,
        new GetObjectCommand({
          Bucket,
          Key: keyOf(key),
          ...(options.contentDisposition === undefined
            ? {}
            : { ResponseContentDisposition: options.contentDisposition }),
          ...(options.contentType === undefined ? {} : { ResponseContentType: options.contentType }),
        }),
        { expiresIn: options.expiresInSeconds },
      );
    },

    presignPut(key, options) {
      return getSignedUrl(
        s3,
        new PutObjectCommand({
          Bucket,
          Key: keyOf(key),
          ...(options.contentType === undefined ? {} : { ContentType: options.contentType }),
        }),
        { expiresIn: options.expiresInSeconds },
      );
    },

    removeStaleTemporaryFiles: async () => 0,

    async close() {
      if (client === undefined) s3.destroy();
    },
  };
}
