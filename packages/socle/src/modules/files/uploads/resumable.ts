import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { FileStore } from '@tus/file-store';
import { S3Store } from '@tus/s3-store';
import { Server as TusServer } from '@tus/server';
import { type DataStore, Metadata, type Upload } from '@tus/utils';
import { type Logger, SocleError } from '../../../kernel/index.js';
import type { Bucket } from '../buckets.js';
import { filesErrors } from '../files.errors.js';
import type { FileObject, FilesActor, FilesService } from '../objects.service.js';
import { scopeToken } from '../objects.service.js';
import type { StagingArea } from './staging.js';

/** Where Socle mounts the tus endpoint (`POST` creates, `HEAD`/`PATCH`/`DELETE` on `/<id>`). */
export const TUS_PATH = '/files/tus';
/** Response header of the `PATCH` that completed an upload: the id of the object it became. */
export const OBJECT_ID_HEADER = 'Socle-Object-Id';
/** Staged tus uploads not completed within this are removed by the cleanup job. */
export const TUS_EXPIRY_MS = 24 * 60 * 60 * 1000;
/** Metadata keys Socle stamps on a tus upload (a client's own values for them are dropped). */
const STAMPED = ['socle_bucket', 'socle_scope', 'socle_owner'] as const;
const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** S3 parts the tus store buffers on disk before sending (S3's minimum is 5 MiB). */
const S3_PART_BYTES = 8 * 1024 * 1024;

/** What one request brings to the tus hooks: who acts, and the error to answer with. */
interface RequestContext {
  readonly actor: FilesActor;
  readonly bucket: Bucket;
  error?: SocleError;
  object?: FileObject;
}

/** A tus request as the route hands it over: its Web form, and who acts when already known. */
export interface TusRequest {
  readonly request: Request;
  /** Upload id of `HEAD`/`PATCH`/`DELETE` (the last path segment); undefined for `POST`. */
  readonly uploadId: string | undefined;
  /** Resolves the actor once the bucket is known (tenant member or signed-in user). */
  readonly actorFor: (bucket: Bucket) => FilesActor;
}

export interface TusResponse {
  readonly response: Response;
  /** The object a completing `PATCH` committed. */
  readonly object: FileObject | undefined;
}

/**
 * tus's FileStore creating `directory` without the one failure of its own that kills the process:
 * its constructor starts a `mkdir` whose callback throws when it fails, an uncaught exception
 * (seen when the data directory went away as a node closed right after starting). The directory
 * is created the same way, and a failure is logged; the first upload then reports it.
 */
function createStagingFileStore(directory: string, log: Logger): FileStore {
  class StagingFileStore extends FileStore {}
  // Replaces FileStore's (private) checkOrCreateDirectory, which its constructor calls.
  Object.defineProperty(StagingFileStore.prototype, 'checkOrCreateDirectory', {
    value() {
      void mkdir(directory, { recursive: true, mode: 0o777 }).catch((error: unknown) =>
        log.warn({ err: error, directory }, 'Could not create the directory of resumable uploads'),
      );
    },
  });
  return new StagingFileStore({ directory, expirationPeriodInMilliseconds: TUS_EXPIRY_MS });
}

/**
 * Resumable uploads with the tus 1.0 protocol (`@tus/server`, with `@tus/file-store` on the local
 * backend and `@tus/s3-store` on S3), so tus-js-client and Uppy work unchanged. Socle adds what
 * the files module guarantees everywhere: the bucket and the uploader's scope are fixed at
 * creation (Upload-Metadata `bucket`, `filename`, `filetype`), the declared Upload-Length is
 * checked against the bucket's limit and the quota at once, only the uploader can resume, and the
 * completed upload is streamed through the same verification as a direct upload (sniffed type,
 * size, quota, sha256) and committed as an object: the object exists only then, and a refused or
 * abandoned upload leaves nothing visible. Staged uploads expire after {@link TUS_EXPIRY_MS}.
 */
export function createResumableUploads(options: {
  readonly files: FilesService;
  readonly staging: StagingArea;
  readonly log: Logger;
}) {
  const { files, staging, log } = options;
  const contexts = new WeakMap<Request, RequestContext>();

  const datastore: DataStore =
    staging.kind === 'local'
      ? createStagingFileStore(staging.directory, log)
      : new S3Store({
          partSize: S3_PART_BYTES,
          // Tags on incomplete parts help bucket lifecycle rules; Socle expires them itself, and
          // several S3-compatible stores (B2, s3rver) refuse them.
          useTags: false,
          expirationPeriodInMilliseconds: TUS_EXPIRY_MS,
          s3ClientConfig: {
            bucket: staging.location.bucket,
            region: staging.location.region,
            forcePathStyle: staging.location.forcePathStyle,
            // Parts of unknown length would otherwise go out aws-chunked with a trailing checksum,
            // which several S3-compatible stores (and s3rver) store as is.
            requestChecksumCalculation: 'WHEN_REQUIRED',
            ...(staging.location.endpoint === undefined ? {} : { endpoint: staging.location.endpoint }),
          },
        });
  const storeIdOf = (uploadId: string) =>
    staging.kind === 'local' ? uploadId : `${staging.prefix}tus/${uploadId}`;
  const uploadIdOf = (storeId: string) => storeId.slice(storeId.lastIndexOf('/') + 1);

  const contextOf = (request: Request): RequestContext => {
    const context = contexts.get(request);
    if (context === undefined) throw new Error('tus request without a Socle context');
    return context;
  };

  const server = new TusServer({
    path: TUS_PATH,
    datastore,
    relativeLocation: true,
    exposedHeaders: [OBJECT_ID_HEADER],
    // Without a deferred length nobody can stream past what the bucket and the quota allowed.
    namingFunction: () => storeIdOf(randomUUID()),
    generateUrl: (_request, { path, id }) => `${path}/${uploadIdOf(id)}`,
    getFileIdFromRequest: (_request, lastPath) =>
      lastPath !== undefined && UPLOAD_ID.test(lastPath) ? storeIdOf(lastPath) : undefined,
    onUploadCreate: async (request, upload) => {
      const { actor, bucket } = contextOf(request);
      const metadata: Record<string, string | null> = { ...upload.metadata };
      for (const key of STAMPED) delete metadata[key];
      return {
        metadata: {
          ...metadata,
          socle_bucket: bucket.name,
          socle_scope: scopeToken(scopeOfActor(bucket, actor)),
          socle_owner: actor.userId ?? null,
        },
      };
    },
    onUploadFinish: async (request, upload) => {
      const context = contextOf(request);
      try {
        context.object = await commit(context, upload);
      } catch (error) {
        context.error = error instanceof SocleError ? error : filesErrors.uploadAborted();
        if (!(error instanceof SocleError)) log.error({ err: error }, 'A tus upload could not be committed');
        throw { status_code: context.error.status, body: `${context.error.message}\n` };
      }
      return { headers: { [OBJECT_ID_HEADER]: context.object.id } };
    },
  });

  /** Streams the staged upload through the bucket's verification into an object, then drops it. */
  async function commit(context: RequestContext, upload: Upload): Promise<FileObject> {
    const metadata = upload.metadata ?? {};
    const own: Record<string, string> = {};
    for (const [key, value] of Object.entries(metadata)) {
      if (
        !key.startsWith('socle_') &&
        !['bucket', 'filename', 'filetype', 'name'].includes(key) &&
        value !== null
      )
        own[key] = value;
    }
    try {
      const body = (await (datastore as DataStore & { read(id: string): Promise<Readable> | Readable }).read(
        upload.id,
      )) as Readable;
      const { object } = await files.upload({
        ...context.actor,
        bucket: context.bucket.name,
        body,
        declaredType: metadata.filetype ?? undefined,
        declaredLength: upload.size,
        name: metadata.filename ?? metadata.name ?? undefined,
        metadata: own,
      });
      return object;
    } finally {
      await dropStaged(upload.id).catch((error: unknown) => {
        log.warn({ err: error, uploadId: upload.id }, 'A staged tus upload could not be removed');
      });
    }
  }

  /**
   * Removes a complete staged upload. On S3 the tus store's own `remove` aborts the multipart
   * upload first, which S3 refuses (NoSuchUpload) once it is complete, and then deletes nothing:
   * Socle deletes the object and its `.info` itself and drops the store's cached metadata.
   */
  async function dropStaged(storeId: string): Promise<void> {
    if (staging.kind === 'local') return datastore.remove(storeId);
    for (const Key of [storeId, `${storeId}.info`, `${storeId}.part`])
      await staging.client.send(new DeleteObjectCommand({ Bucket: staging.location.bucket, Key }));
    await (datastore as unknown as { clearCache(id: string): Promise<void> }).clearCache(storeId);
  }

  /**
   * Answers one tus request. Creation checks the bucket, the declared length and the quota before
   * anything is staged; every later request must come from the uploader (another scope: 404).
   */
  async function handle(input: TusRequest): Promise<TusResponse> {
    const { request } = input;
    let bucket: Bucket;
    let actor: FilesActor;
    if (input.uploadId === undefined) {
      if (request.method === 'POST') {
        const metadata = parseMetadata(request.headers.get('upload-metadata'));
        const name = metadata.bucket;
        if (name === undefined || name === null) throw uploadsErrors.bucketRequired();
        bucket = files.bucket(name);
        actor = input.actorFor(bucket);
        await checkDeclaredLength(bucket, actor, request.headers.get('upload-length'));
      } else {
        // OPTIONS (discovery) needs no bucket.
        return { response: await server.handleWeb(request), object: undefined };
      }
    } else {
      if (!UPLOAD_ID.test(input.uploadId)) throw filesErrors.notFound();
      let upload: Upload;
      try {
        upload = await datastore.getUpload(storeIdOf(input.uploadId));
      } catch {
        throw filesErrors.notFound();
      }
      const metadata = upload.metadata ?? {};
      bucket = files.bucket(metadata.socle_bucket ?? '');
      actor = input.actorFor(bucket);
      if (
        metadata.socle_scope !== scopeToken(scopeOfActor(bucket, actor)) ||
        (metadata.socle_owner ?? undefined) !== actor.userId
      )
        throw filesErrors.notFound();
    }
    const context: RequestContext = { actor, bucket };
    contexts.set(request, context);
    const response = await server.handleWeb(request);
    if (context.error !== undefined) throw context.error;
    // @tus/server answers its own protocol refusals (a PATCH of the wrong type, an upload already
    // terminated, a wrong offset) as text/plain: every error of Socle is problem+json.
    if (response.status >= 400) throw await refusalOf(response);
    return { response, object: context.object };
  }

  async function checkDeclaredLength(bucket: Bucket, actor: FilesActor, header: string | null) {
    if (header === null || !/^\d{1,16}$/.test(header)) throw uploadsErrors.lengthRequired();
    const length = Number(header);
    if (length > bucket.maxBytes) throw filesErrors.tooLarge(bucket.maxBytes);
    if (length === 0) throw filesErrors.emptyFile();
    const { usedBytes, quotaBytes } = await files.usage(actor, bucket.name);
    if (quotaBytes !== null && usedBytes + length > quotaBytes)
      throw filesErrors.quotaExceeded(quotaBytes, usedBytes);
  }

  return {
    handle,
    /** Removes staged tus uploads older than {@link TUS_EXPIRY_MS}; returns how many. */
    removeExpired: () => server.cleanUpExpiredUploads(),
    /** Closes the S3 clients of the staging area (the tus store's and Socle's own). */
    close(): void {
      if (staging.kind !== 's3') return;
      staging.client.destroy();
      (datastore as unknown as { client?: { destroy?(): void } }).client?.destroy?.();
    },
  };
}

export type ResumableUploads = ReturnType<typeof createResumableUploads>;

function scopeOfActor(bucket: Bucket, actor: FilesActor) {
  const id = bucket.scope === 'user' ? actor.userId : actor.tenantId;
  if (id === undefined) throw filesErrors.notFound();
  return { kind: bucket.scope, id };
}

function parseMetadata(header: string | null): Record<string, string | null> {
  if (header === null) return {};
  try {
    return Metadata.parse(header);
  } catch {
    throw uploadsErrors.invalidMetadata();
  }
}

/** Errors of resumable and presigned uploads (files module codes). */
/** A refusal of the tus server itself, as a SocleError (404: the files module's own). */
async function refusalOf(response: Response): Promise<SocleError> {
  if (response.status === 404) return filesErrors.notFound();
  const message = (await response.text()).trim() || 'The tus request was refused';
  return uploadsErrors.tusRefused(response.status, message);
}

export const uploadsErrors = {
  tusRefused: (status: number, message: string) =>
    new SocleError('files.tus_refused', `tus: ${message}`, { status, details: { tusStatus: status } }),
  bucketRequired: () =>
    new SocleError('files.bucket_required', 'Upload-Metadata must name the bucket (bucket <base64 name>)', {
      status: 400,
      details: { field: 'Upload-Metadata.bucket' },
    }),
  invalidMetadata: () =>
    new SocleError('files.invalid_metadata', 'Upload-Metadata is not valid tus metadata', {
      status: 400,
      details: { field: 'Upload-Metadata' },
    }),
  lengthRequired: () =>
    new SocleError(
      'files.length_required',
      'Upload-Length must give the file size in bytes (deferred lengths are not accepted)',
      { status: 400, details: { field: 'Upload-Length' } },
    ),
};
