import { createHash, randomUUID } from 'node:crypto';
import { PassThrough, type Readable, Transform, type TransformCallback } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { type BlobStore, type Clock, type Logger, SocleError } from '../../../kernel/index.js';
import type { Bucket } from '../buckets.js';
import { filesErrors } from '../files.errors.js';
import { type FileObject, type FilesActor, type FilesService, scopeToken } from '../objects.service.js';
import type { StagingArea } from './staging.js';

/** Where presigned uploads wait, as blob keys (never under `t.`/`u.`, so never objects). */
const STAGING_PREFIX = '.staging/presigned/';
/** The path a completion token is signed for (the token is a signed query string). */
const TOKEN_PATH = '/files/presigned/complete';
/** Socle's own upload URLs (local backend). */
export const LOCAL_UPLOAD_PATH = '/files/presigned-upload';
const DEFAULT_SECONDS = 3600;
const MAX_SECONDS = 24 * 3600;
/** S3's limits, kept on the local backend too so a client works the same on both. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
const DEFAULT_PART_BYTES = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;
/** Staged presigned uploads older than this are removed by the cleanup job. */
const ABANDONED_AFTER_MS = 24 * 3600 * 1000;

export interface PresignedUploadRequest {
  /** Exact size in bytes the client will upload. */
  readonly size: number;
  /** Hex SHA-256 the client promises; the object is refused when the bytes do not match. */
  readonly sha256?: string | undefined;
  readonly name?: string | undefined;
  /** Multipart: the client uploads parts of `partSize` bytes (the last one shorter). */
  readonly multipart?: boolean | undefined;
  /** Default 8 MiB; at least 5 MiB (S3's rule). */
  readonly partSize?: number | undefined;
  /** Default 3600 s; at most a day. */
  readonly expiresInSeconds?: number | undefined;
}

export interface PresignedUpload {
  readonly uploadId: string;
  /** Send it back to `complete`: it names the upload, its bucket and its uploader, signed. */
  readonly token: string;
  readonly expiresAt: Date;
  readonly method: 'PUT';
  /** Single upload: where to PUT the bytes (S3 presigned URL, or Socle's own signed path). */
  readonly url?: string;
  /** Multipart: where to PUT each part; keep each response's ETag for `complete`. */
  readonly parts?: readonly { readonly partNumber: number; readonly url: string; readonly size: number }[];
  readonly partSize?: number;
}

export interface CompletedPart {
  readonly partNumber: number;
  readonly etag: string;
}

/** The signed parameters of a completion token. */
interface TokenParams {
  readonly upload: string;
  readonly bucket: string;
  readonly scope: string;
  readonly owner: string;
  readonly size: string;
  readonly sha256?: string;
  readonly name?: string;
  /** S3 multipart upload id, or `local` for parts Socle stores. */
  readonly multipart?: string;
  readonly partSize?: string;
}

/**
 * Presigned direct uploads: the client asks for upload URLs (size and, optionally, the SHA-256
 * announced), sends its bytes straight to the store (S3 presigned `PUT`, single or multipart; on
 * the local backend, Socle's own HMAC-signed URLs with the same expiry and size rules), then calls
 * `complete`. Socle then reads the staged bytes back through the bucket's verification (sniffed
 * type, size, quota, sha256), checks they are what was announced, and only then records the
 * object; the staged bytes are deleted whatever the outcome.
 */
export function createPresignedUploads(options: {
  readonly files: FilesService;
  readonly blobs: BlobStore;
  readonly staging: StagingArea;
  readonly clock: Clock;
  readonly log: Logger;
}) {
  const { files, blobs, staging, clock, log } = options;
  const signer = files.signer;
  const stagedKey = (uploadId: string) => `${STAGING_PREFIX}${uploadId}`;
  const partKey = (uploadId: string, partNumber: number) =>
    `${STAGING_PREFIX}${uploadId}.parts/${partNumber}`;
  const s3Key = (key: string) => (staging.kind === 's3' ? `${staging.location.prefix}${key}` : key);

  async function start(
    actor: FilesActor,
    bucketName: string,
    request: PresignedUploadRequest,
  ): Promise<PresignedUpload> {
    const bucket = files.bucket(bucketName);
    const scope = scopeOf(bucket, actor);
    const { size } = request;
    if (!Number.isSafeInteger(size) || size < 1) throw presignedErrors.invalidSize();
    if (size > bucket.maxBytes) throw filesErrors.tooLarge(bucket.maxBytes);
    const { usedBytes, quotaBytes } = await files.usage(actor, bucket.name);
    if (quotaBytes !== null && usedBytes + size > quotaBytes)
      throw filesErrors.quotaExceeded(quotaBytes, usedBytes);
    const seconds = Math.min(Math.max(request.expiresInSeconds ?? DEFAULT_SECONDS, 1), MAX_SECONDS);
    const expiresAt = new Date(clock.now().getTime() + seconds * 1000);
    const uploadId = randomUUID();
    const params: Record<string, string> = {
      upload: uploadId,
      bucket: bucket.name,
      scope: scopeToken(scope),
      owner: actor.userId ?? '',
      size: String(size),
      ...(request.sha256 === undefined ? {} : { sha256: request.sha256.toLowerCase() }),
      ...(request.name === undefined ? {} : { name: request.name }),
    };

    if (request.multipart !== true) {
      const url =
        (await blobs.presignPut(stagedKey(uploadId), { expiresInSeconds: seconds })) ??
        signer.sign(`${LOCAL_UPLOAD_PATH}/${uploadId}`, { max: String(size) }, expiresAt);
      return { uploadId, token: tokenOf(params, expiresAt), expiresAt, method: 'PUT', url };
    }

    const partSize = request.partSize ?? DEFAULT_PART_BYTES;
    if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_BYTES) throw presignedErrors.invalidPartSize();
    const count = Math.ceil(size / partSize);
    if (count > MAX_PARTS) throw presignedErrors.invalidPartSize();
    const sizeOf = (partNumber: number) => (partNumber < count ? partSize : size - partSize * (count - 1));
    let multipart = 'local';
    let urlOf = async (partNumber: number) =>
      signer.sign(
        `${LOCAL_UPLOAD_PATH}/${uploadId}/${partNumber}`,
        { max: String(sizeOf(partNumber)) },
        expiresAt,
      );
    if (staging.kind === 's3') {
      const created = await staging.client.send(
        new CreateMultipartUploadCommand({
          Bucket: staging.location.bucket,
          Key: s3Key(stagedKey(uploadId)),
        }),
      );
      multipart = created.UploadId as string;
      urlOf = (partNumber) =>
        getSignedUrl(
          staging.client,
          new UploadPartCommand({
            Bucket: staging.location.bucket,
            Key: s3Key(stagedKey(uploadId)),
            UploadId: multipart,
            PartNumber: partNumber,
          }),
          { expiresIn: seconds },
        );
    }
    const parts = [];
    for (let partNumber = 1; partNumber <= count; partNumber += 1)
      parts.push({ partNumber, url: await urlOf(partNumber), size: sizeOf(partNumber) });
    return {
      uploadId,
      token: tokenOf({ ...params, multipart, partSize: String(partSize) }, expiresAt),
      expiresAt,
      method: 'PUT',
      parts,
      partSize,
    };
  }

  const tokenOf = (params: Record<string, string>, expiresAt: Date) =>
    signer.sign(TOKEN_PATH, params, expiresAt).slice(TOKEN_PATH.length + 1);

  /**
   * Local backend: stores the body of a signed upload URL (a whole upload or one part), refusing
   * an invalid or expired signature (403) and more bytes than announced (413). Returns the MD5
   * ETag S3 would give (multipart completion names parts by it).
   */
  async function receive(
    path: string,
    query: Readonly<Record<string, string | undefined>>,
    body: Readable,
  ): Promise<{ readonly etag: string }> {
    const { params } = signer.verify(path, query, clock.now());
    const match = /^\/files\/presigned-upload\/([0-9a-f-]{36})(?:\/(\d{1,5}))?$/.exec(path);
    if (match === null) throw filesErrors.signatureInvalid();
    const uploadId = match[1] as string;
    const key = match[2] === undefined ? stagedKey(uploadId) : partKey(uploadId, Number(match[2]));
    const md5 = createHash('md5');
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, callback: TransformCallback) {
        md5.update(chunk);
        callback(null, chunk);
      },
    });
    body.once('error', (error) => hashing.destroy(error));
    try {
      await blobs.put(key, body.pipe(hashing), { maxBytes: Number(params.max) });
    } catch (error) {
      if (error instanceof SocleError && error.code === 'blobs.too_large')
        throw filesErrors.tooLarge(Number(params.max));
      throw error;
    }
    return { etag: `"${md5.digest('hex')}"` };
  }

  /**
   * Verifies and records an uploaded object: the token must be valid and the caller its uploader
   * (else 404), the bytes complete, of an allowed type, within limits and quota, and of the size
   * and SHA-256 announced (400 `files.checksum_mismatch`). The staged bytes are then deleted.
   */
  async function complete(
    actor: FilesActor,
    bucketName: string,
    token: string,
    parts: readonly CompletedPart[] | undefined,
  ): Promise<FileObject> {
    const query = Object.fromEntries(new URLSearchParams(token));
    const { params } = signer.verify(TOKEN_PATH, query, clock.now()) as unknown as {
      params: TokenParams;
    };
    const bucket = files.bucket(bucketName);
    if (params.bucket !== bucket.name) throw filesErrors.notFound();
    const scope = scopeOf(bucket, actor);
    if (params.scope !== scopeToken(scope) || params.owner !== (actor.userId ?? ''))
      throw filesErrors.notFound();
    const size = Number(params.size);
    const uploadId = params.upload;
    const staged: string[] = [stagedKey(uploadId)];
    try {
      let body: Readable;
      if (params.multipart === undefined) {
        body = await openStaged(stagedKey(uploadId));
      } else {
        const given = checkParts(parts, Math.ceil(size / Number(params.partSize)));
        if (params.multipart === 'local') {
          for (const part of given) staged.push(partKey(uploadId, part.partNumber));
          body = concatenateParts(uploadId, given);
        } else {
          if (staging.kind !== 's3') throw presignedErrors.notUploaded();
          await staging.client
            .send(
              new CompleteMultipartUploadCommand({
                Bucket: staging.location.bucket,
                Key: s3Key(stagedKey(uploadId)),
                UploadId: params.multipart,
                MultipartUpload: {
                  Parts: given.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag })),
                },
              }),
            )
            .catch((error: unknown) => {
              throw presignedErrors.partsRejected((error as Error).message);
            });
          body = await openStaged(stagedKey(uploadId));
        }
      }
      const { object } = await files.upload(
        {
          ...actor,
          bucket: bucket.name,
          body,
          declaredLength: size,
          name: params.name,
        },
        async (_trx, object) => {
          // Inside the object's transaction: a mismatch rolls the record back and drops the blob.
          if (object.size !== size) throw presignedErrors.sizeMismatch(size, object.size);
          if (params.sha256 !== undefined && object.sha256 !== params.sha256)
            throw presignedErrors.checksumMismatch();
        },
      );
      return object;
    } finally {
      for (const key of staged) await files.deleteBlobQuietly(key);
    }
  }

  async function openStaged(key: string): Promise<Readable> {
    const read = await blobs.get(key);
    if (read === undefined) throw presignedErrors.notUploaded();
    return read.body;
  }

  /** The local parts, in order, as one stream; a part whose MD5 is not its ETag fails it. */
  function concatenateParts(uploadId: string, parts: readonly CompletedPart[]): Readable {
    const output = new PassThrough();
    (async () => {
      for (const part of parts) {
        const read = await blobs.get(partKey(uploadId, part.partNumber));
        if (read === undefined) throw presignedErrors.notUploaded();
        const md5 = createHash('md5');
        for await (const chunk of read.body as AsyncIterable<Buffer>) {
          md5.update(chunk);
          if (!output.write(chunk)) await new Promise((resolve) => output.once('drain', resolve));
        }
        if (`"${md5.digest('hex')}"` !== normalizeEtag(part.etag))
          throw presignedErrors.partsRejected(`part ${part.partNumber} does not match its ETag`);
      }
      output.end();
    })().catch((error: Error) => output.destroy(error));
    return output;
  }

  /**
   * Removes presigned uploads never completed: staged blobs older than a day and, on S3, multipart
   * uploads started over a day ago (where the store lists them). Returns how many it removed.
   */
  async function removeAbandoned(): Promise<number> {
    const olderThan = new Date(clock.now().getTime() - ABANDONED_AFTER_MS);
    let removed = 0;
    for await (const info of blobs.list(STAGING_PREFIX)) {
      if (info.lastModified >= olderThan) continue;
      await blobs.delete(info.key);
      removed += 1;
    }
    if (staging.kind === 's3') {
      try {
        const listed = await staging.client.send(
          new ListMultipartUploadsCommand({
            Bucket: staging.location.bucket,
            Prefix: s3Key(STAGING_PREFIX),
          }),
        );
        for (const upload of listed.Uploads ?? []) {
          if (upload.Initiated === undefined || upload.Initiated >= olderThan) continue;
          await staging.client.send(
            new AbortMultipartUploadCommand({
              Bucket: staging.location.bucket,
              Key: upload.Key,
              UploadId: upload.UploadId,
            }),
          );
          removed += 1;
        }
      } catch (error) {
        // Some S3-compatible stores cannot list multipart uploads: their own lifecycle rule
        // (AbortIncompleteMultipartUpload) must then do it.
        log.warn({ err: error }, 'Multipart uploads could not be listed for cleanup');
      }
    }
    return removed;
  }

  return { start, receive, complete, removeAbandoned };
}

export type PresignedUploads = ReturnType<typeof createPresignedUploads>;

function scopeOf(bucket: Bucket, actor: FilesActor) {
  const id = bucket.scope === 'user' ? actor.userId : actor.tenantId;
  if (id === undefined) throw filesErrors.notFound();
  return { kind: bucket.scope, id };
}

const normalizeEtag = (etag: string) => `"${etag.replace(/^W\//, '').replace(/"/g, '')}"`;

function checkParts(parts: readonly CompletedPart[] | undefined, count: number): CompletedPart[] {
  const given = [...(parts ?? [])].sort((a, b) => a.partNumber - b.partNumber);
  if (given.length !== count || given.some((part, index) => part.partNumber !== index + 1))
    throw presignedErrors.partsRejected(`expected parts 1 to ${count}, each with its ETag`);
  return given.map((part) => ({ partNumber: part.partNumber, etag: normalizeEtag(part.etag) }));
}

export const presignedErrors = {
  invalidSize: () =>
    new SocleError('files.invalid_size', 'size must be the file size in bytes, at least 1', {
      status: 400,
      details: { field: 'size' },
    }),
  invalidPartSize: () =>
    new SocleError(
      'files.invalid_part_size',
      `partSize must be at least ${MIN_PART_BYTES} bytes, with at most ${MAX_PARTS} parts`,
      { status: 400, details: { field: 'partSize' } },
    ),
  notUploaded: () =>
    new SocleError(
      'files.not_uploaded',
      'The bytes of this upload have not been uploaded (or were removed)',
      {
        status: 409,
      },
    ),
  partsRejected: (reason: string) =>
    new SocleError('files.parts_invalid', `The parts do not make up the upload: ${reason}`, {
      status: 400,
      details: { field: 'parts' },
    }),
  sizeMismatch: (expected: number, actual: number) =>
    new SocleError('files.size_mismatch', `The upload has ${actual} bytes, not the ${expected} announced`, {
      status: 400,
      details: { expected, actual },
    }),
  checksumMismatch: () =>
    new SocleError('files.checksum_mismatch', 'The bytes do not have the SHA-256 announced', {
      status: 400,
      details: { field: 'sha256' },
    }),
};
