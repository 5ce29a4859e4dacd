/**
 * The files module: buckets declared in code, streamed and verified uploads, signed downloads,
 * lifecycle, quotas and GDPR hooks over the kernel's blob store. Other modules (image variants,
 * resumable uploads) build on {@link FilesServices}.
 */
export {
  type Bucket,
  type BucketDefinition,
  type BucketLifecycle,
  type BucketScope,
  defineBucket,
  isTypeAllowed,
} from './buckets.js';
export { filesErrors } from './files.errors.js';
export {
  createFilesModule,
  type FilesModule,
  type FilesOptions,
  type FilesServices,
} from './files.module.js';
export type { FilesTables } from './files.tables.js';
export {
  contentDisposition,
  type DownloadUrl,
  type DownloadUrlOptions,
  type FileObject,
  type FilesActor,
  type FilesQuota,
  type FilesScope,
  type OpenedObject,
  parseScopeToken,
  scopeToken,
  type UploadInput,
} from './objects.service.js';
export { EXPIRES_PARAMETER, SIGNATURE_PARAMETER, type UrlSigner } from './signed-urls.js';
export { createUploadInspection, type InspectedUpload } from './upload-inspection.js';
export type { FilesUploadRoute, UploadRequest, UploadRouteOptions } from './upload-route.js';
