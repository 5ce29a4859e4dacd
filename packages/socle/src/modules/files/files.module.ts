import {
  defineJob,
  defineModule,
  type ModuleDefinition,
  type SetupContext,
  Type,
} from '../../kernel/index.js';
import type { Bucket, BucketDefinition } from './buckets.js';
import { createFilesPrivacy } from './files.privacy.js';
import { describeObject, registerFilesRoutes } from './files.routes.js';
import type { FilesTables } from './files.tables.js';
import { registerFilesAdminRoutes } from './files-admin.routes.js';
import { createFilesService, type FilesQuota, type FilesService } from './objects.service.js';
import { createUploadRoute, type FilesUploadRoute } from './upload-route.js';
import { createPresignedUploads, type PresignedUploads } from './uploads/presigned.js';
import { createResumableUploads, type ResumableUploads } from './uploads/resumable.js';
import { openStagingArea } from './uploads/staging.js';
import { registerUploadRoutes } from './uploads/uploads.routes.js';
import { createVariantDownloads, type VariantDownloads } from './variant-downloads.js';

export interface FilesOptions {
  /** Buckets declared up front; modules may also call `files.registerBucket` from their setup. */
  readonly buckets?: readonly (Bucket | BucketDefinition)[];
  /**
   * Bytes one organization (or one user, in per-user buckets) may store: a number, or a function
   * of the scope (plans); default: no limit. Checked while streaming and charged atomically with
   * the object's record (409 `files.quota_exceeded`).
   */
  readonly quotaBytes?: FilesQuota;
}

/** What the files module gives other modules, apps and tests (`socle.servicesOf(files)`). */
export type FilesServices = FilesService & {
  /** Resumable (tus) uploads, staged then committed into their bucket: see docs/files.md. */
  readonly uploads: ResumableUploads;
  /** Presigned direct uploads (S3 presigned PUT or multipart; Socle's signed URLs locally). */
  readonly presigned: PresignedUploads;
  /** Signed links to image variants (`variantUrl(object, { width, format })`): see docs/files.md. */
  readonly variants: VariantDownloads;
  /**
   * Declares a route of yours whose body is a file's bytes streamed into a bucket (size, sniffed
   * type, quota, `attach` in the record's transaction, problem+json refusals): see docs/files.md.
   */
  readonly uploadRoute: FilesUploadRoute;
};

/** The files module's definition; its public API is {@link FilesServices}. */
export type FilesModule = ModuleDefinition<FilesTables, FilesServices>;

/**
 * Files: buckets declared in code, objects whose bytes live in the kernel's blob store
 * (`context.blobs`: a local directory or S3) and whose records live in Postgres under forced
 * row-level security, written only once the bytes are complete and verified. Streamed uploads
 * with size, type (sniffed) and quota enforced while streaming; signed downloads with Range and
 * ETag; lifecycle (archive, delete) and abandoned-upload cleanup as cron jobs; GDPR hooks. See
 * docs/files.md.
 *
 * @example
 * const socle = await createSocle({
 *   config,
 *   modules: [...createBuiltInModules(), createFilesModule({ buckets: [recordings], quotaBytes: 50e9 })],
 * });
 */
export function createFilesModule(options: FilesOptions = {}): FilesModule {
  return defineModule({
    name: 'files',
    dependsOn: ['identity', 'tenancy'],
    migrations: new URL('./migrations/', import.meta.url),
    globalTables: {
      usage:
        'Byte and object totals per organization or user (quotas): no file names or contents; the lifecycle and cleanup jobs walk it to visit each scope under its own RLS',
      signing_keys: 'The deployment-wide key that signs download links, sealed with SECRET_KEY',
    },
    setup: async (context: SetupContext<FilesTables>) => {
      const files = await createFilesService({
        db: context.db,
        blobs: context.blobs,
        clock: context.clock,
        log: context.log,
        secrets: context.secrets,
        scope: context.scope,
        buckets: options.buckets ?? [],
        quotaBytes: options.quotaBytes,
        metrics: {
          bytesIn: context.metrics.counter({
            name: 'socle_files_bytes_in_total',
            help: 'Bytes of files stored (verified uploads)',
          }),
          bytesOut: context.metrics.counter({
            name: 'socle_files_bytes_out_total',
            help: 'Bytes of files served by Socle (downloads and ranges)',
          }),
          objectsStored: context.metrics.counter({
            name: 'socle_files_objects_stored_total',
            help: 'Objects stored (bytes complete, verified and recorded)',
          }),
          objectsDeleted: context.metrics.counter({
            name: 'socle_files_objects_deleted_total',
            help: 'Objects deleted (by a client, the lifecycle or an erasure)',
          }),
          uploadsFailed: context.metrics.counter({
            name: 'socle_files_uploads_failed_total',
            help: 'Uploads refused or interrupted (too large, wrong type, quota, client gone)',
          }),
          uploadsAbandoned: context.metrics.counter({
            name: 'socle_files_uploads_abandoned_total',
            help: 'Blobs and temporary files of abandoned uploads removed by the cleanup job',
          }),
        },
      });
      const staging = openStagingArea(context.config);
      const uploads = createResumableUploads({ files, staging, log: context.log });
      const presigned = createPresignedUploads({
        files,
        blobs: context.blobs,
        staging,
        clock: context.clock,
        log: context.log,
      });
      const variants = createVariantDownloads({
        files,
        blobs: context.blobs,
        now: () => context.clock.now(),
        metrics: {
          cacheHits: context.metrics.counter({
            name: 'socle_files_variant_cache_hits_total',
            help: 'Image variants served from the blob cache (or from a render already under way)',
          }),
          rendered: context.metrics.counter({
            name: 'socle_files_variants_rendered_total',
            help: 'Image variants rendered with sharp and cached',
          }),
        },
      });
      const uploadRoute = createUploadRoute(files, (object) => describeObject(files, object));
      return { ...files, uploads, presigned, variants, uploadRoute };
    },
    routes(app, { services, clock }) {
      registerFilesRoutes(app, services, () => clock.now());
      registerFilesAdminRoutes(app, services);
      registerUploadRoutes(app, {
        files: services,
        resumable: services.uploads,
        presigned: services.presigned,
      });
      services.variants.registerRoutes(app);
    },
    jobs: {
      lifecycle: defineJob({
        schema: Type.Object({}),
        cron: '23 3 * * *',
        queue: 'low',
        handler: async (_job, files: FilesServices) => {
          await files.runLifecycle();
        },
      }),
      removeAbandonedUploads: defineJob({
        schema: Type.Object({}),
        cron: '41 * * * *',
        queue: 'low',
        handler: async (_job, files: FilesServices) => {
          await files.removeAbandonedUploads();
          await files.uploads.removeExpired();
          await files.presigned.removeAbandoned();
        },
      }),
    },
    privacy: ({ db, services }) => createFilesPrivacy(db, services),
    onStop: ({ services }) => services.uploads.close(),
  });
}
