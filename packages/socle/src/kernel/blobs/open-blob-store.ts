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
export function openBlobStore(options: {
  readonly blobUrl: string | undefined;
  /** Absolute directory of embedded state. */
  readonly dataDir: string;
}): BlobStore {
  const { blobUrl } = options;
  if (blobUrl === undefined) return createLocalBlobStore(path.join(options.dataDir, 'blobs'));
  if (blobUrl.startsWith('file:')) return createLocalBlobStore(fileURLToPath(blobUrl));
  return createS3BlobStore(parseS3Url(blobUrl));
}
