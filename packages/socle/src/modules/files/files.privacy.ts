import { type Database, type PrivacyHooks, withOwnerTransaction } from '../../kernel/index.js';
import type { FilesService } from './objects.service.js';
import { toFileObject } from './objects.service.js';
import { objectsStore } from './objects.store.js';

/** How long the download links of an export work. */
const EXPORT_LINK_SECONDS = 7 * 24 * 3600;

/**
 * The person's files: export lists every object they uploaded, each with a signed download link;
 * erasure deletes them (records first, in one transaction, then their blobs), except in buckets
 * declared `keepOnErase`, whose objects stay their organization's with no owner.
 */
export function createFilesPrivacy(db: Pick<Database, 'withConnection'>, files: FilesService): PrivacyHooks {
  return {
    exportSubject: async (subject) => {
      const rows = await withOwnerTransaction(db, (connection) =>
        objectsStore.objectsOwnedBy(connection, subject.userId),
      );
      const objects = [];
      for (const row of rows) {
        const object = toFileObject(row);
        const link = await files.downloadUrl(object, {
          expiresInSeconds: EXPORT_LINK_SECONDS,
          disposition: 'attachment',
        });
        objects.push({ ...object, url: link.url, urlExpiresAt: link.expiresAt });
      }
      return { objects };
    },
    eraseSubject: async (subject) => {
      const rows = await withOwnerTransaction(db, (connection) =>
        objectsStore.eraseObjectsOwnedBy(connection, subject.userId, files.bucketsKeptOnErase()),
      );
      // Records are gone: a blob (or variant) whose deletion fails here is removed by the cleanup job.
      for (const row of rows) await files.deleteObjectBlobs(row);
    },
  };
}
