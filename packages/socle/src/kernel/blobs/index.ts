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
export {
  byteLimit,
  createLocalBlobStore,
  TEMPORARY_DIRECTORY as LOCAL_BLOB_TEMPORARY_DIRECTORY,
} from './local-blob-store.js';
export { type BlobLocationOptions, localBlobDirectory, openBlobStore } from './open-blob-store.js';
export { createS3BlobStore, parseS3Url, type S3Location } from './s3-blob-store.js';
