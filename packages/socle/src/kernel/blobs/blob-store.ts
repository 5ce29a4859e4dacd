import type { Readable } from 'node:stream';
import { SocleError } from '../errors/index.js';

/** What a store knows of one stored blob. */
export interface BlobInfo {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date;
  /** `standard` or `archive` (S3 `STANDARD_IA` by default, see BLOB_URL); local: always `standard`. */
  readonly storageClass: BlobStorageClass;
}

export type BlobStorageClass = 'standard' | 'archive';

/** A byte range, both ends inclusive (`bytes=start-end`), already checked against the blob's size. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/** A blob being read: its bytes (the whole blob or the asked range) and its total size. */
export interface BlobRead {
  readonly body: Readable;
  /** Size of the whole blob. */
  readonly size: number;
  /** Bytes `body` carries: `size`, or the length of the range. */
  readonly contentLength: number;
  /** The local file holding the blob, when there is one (lets a server hand it to sendfile). */
  readonly filePath?: string;
}

export interface PutBlobOptions {
  /**
   * Refuse bodies longer than this: the write fails with `blobs.too_large` as soon as the limit
   * is crossed, and nothing is stored.
   */
  readonly maxBytes?: number;
  /** Aborting fails the write (with the signal's reason) and leaves nothing stored. */
  readonly signal?: AbortSignal;
  /** Stored with the blob where the backend keeps it (S3 `Content-Type`). */
  readonly contentType?: string;
}

export interface PresignOptions {
  /** Seconds the URL stays valid. */
  readonly expiresInSeconds: number;
  /** Download: the `Content-Disposition` the store answers with. */
  readonly contentDisposition?: string;
  /** Download: the `Content-Type` the store answers with; upload: the one the client must send. */
  readonly contentType?: string;
}

/**
 * Where bytes live: a local directory when embedded, any S3-compatible store with `BLOB_URL`. The
 * kernel picks the backend and hands it to modules as `context.blobs`; modules never know which.
 * Everything streams: no method holds a whole blob in memory.
 *
 * Writes are all-or-nothing: a blob becomes visible under its key only once every byte is
 * stored (local: written to a temporary file, then renamed; S3: a multipart upload completed at the
 * end, aborted on failure). A failed or aborted `put` leaves no object; the local backend's
 * temporary files of a crashed process are removed by `removeStaleTemporaryFiles`.
 *
 * @example
 * const { size } = await context.blobs.put('reports/2026/q1.pdf', fs.createReadStream(file), { maxBytes: 50e6 });
 * const read = await context.blobs.get('reports/2026/q1.pdf', { range: { start: 0, end: 1023 } });
 */
export interface BlobStore {
  /** `local` or `s3`: for logs and for the few callers that choose between serving and presigning. */
  readonly kind: 'local' | 's3';
  /** Streams `body` to `key`, replacing any blob there once complete; resolves with its size. */
  put(key: string, body: Readable, options?: PutBlobOptions): Promise<{ readonly size: number }>;
  /** The blob's bytes (or `range` of them); undefined when there is no blob at `key`. */
  get(key: string, options?: { readonly range?: ByteRange }): Promise<BlobRead | undefined>;
  head(key: string): Promise<BlobInfo | undefined>;
  /** Deletes the blob; deleting a missing key does nothing. */
  delete(key: string): Promise<void>;
  /** Every blob whose key starts with `prefix`, in pages the caller does not see. */
  list(prefix: string): AsyncIterable<BlobInfo>;
  /** Moves the blob to a cheaper storage class (archive) or back; a no-op on the local backend. */
  setStorageClass(key: string, storageClass: BlobStorageClass): Promise<void>;
  /**
   * A URL the client downloads the blob from directly, when the backend serves clients itself
   * (S3); undefined for the local backend, whose blobs Socle serves (modules sign their own URLs).
   */
  presignGet(key: string, options: PresignOptions): Promise<string | undefined>;
  /** A URL the client uploads the blob to with one `PUT`, when the backend takes them (S3). */
  presignPut(key: string, options: PresignOptions): Promise<string | undefined>;
  /** Local backend: deletes temporary files older than `olderThan` (left by a crash). */
  removeStaleTemporaryFiles(olderThan: Date): Promise<number>;
  close(): Promise<void>;
}

/** Keys: segments of letters, digits and `._=-` separated by `/`; no empty, `.` or `..` segment. */
const KEY = /^(?!.*(^|\/)\.{1,2}(\/|$))[A-Za-z0-9._=-]+(\/[A-Za-z0-9._=-]+)*$/;
const MAX_KEY_LENGTH = 900;

export const blobErrors = {
  invalidKey: (key: string) =>
    new SocleError(
      'blobs.invalid_key',
      `Blob key ${JSON.stringify(key.slice(0, 100))} must be /-separated segments of letters, digits and ._=- (no . or .. segment)`,
      { status: 500 },
    ),
  tooLarge: (maxBytes: number) =>
    new SocleError('blobs.too_large', `The blob is larger than ${maxBytes} bytes`, {
      status: 413,
      details: { maxBytes },
    }),
  invalidUrl: (message: string) =>
    new SocleError('blobs.invalid_url', `BLOB_URL ${message}`, { status: 500 }),
};

/** Throws `blobs.invalid_key` unless `key` is a safe key (no path traversal on the local backend). */
export function assertBlobKey(key: string): void {
  if (key.length > MAX_KEY_LENGTH || !KEY.test(key)) throw blobErrors.invalidKey(key);
}
