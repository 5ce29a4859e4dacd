import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BlobStore } from './blob-store.js';
import { createLocalBlobStore } from './local-blob-store.js';
import { createS3BlobStore, parseS3Url } from './s3-blob-store.js';

/**
 * The blob store `BLOB_URL` names: unset, a local directory `<dataDir>/blobs`; `file:///path`, that
 * directory; `s3://bucket[/prefix]?endpoint=…&region=…&forcePathStyle=true`, an S3-compatible store
 * (credentials from the usual AWS variables). The kernel calls it once; modules get `context.blobs`.
 */
export function openBlobStore(options: BlobLocationOptions): BlobStore {
  const directory = localBlobDirectory(options);
  if (directory !== undefined) return createLocalBlobStore(directory);
  return createS3BlobStore(parseS3Url(options.blobUrl as string));
}

export interface BlobLocationOptions {
  readonly blobUrl: string | undefined;
  /** Absolute directory of embedded state. */
  readonly dataDir: string;
}

/** The directory of a local blob store (`socle backup` copies it); undefined for S3. */
export function localBlobDirectory(options: BlobLocationOptions): string | undefined {
  const { blobUrl } = options;
  if (blobUrl === undefined) return path.join(options.dataDir, 'blobs');
  if (blobUrl.startsWith('file:')) return fileURLToPath(blobUrl);
  return undefined;
}
