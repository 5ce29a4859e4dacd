export {
  assertBlobKey,
  type BlobInfo,
  type BlobRead,
  type BlobStorageClass,
  type BlobStore,
  type ByteRange,
  blobErrors,
  type PresignOptions,
  type PutBlobOptions,
} from './blob-store.js';
export { byteLimit, createLocalBlobStore } from './local-blob-store.js';
export { openBlobStore } from './open-blob-store.js';
export { createS3BlobStore, parseS3Url, type S3Location } from './s3-blob-store.js';
