import { type Database, type PrivacyHooks, withOwnerTransaction } from '../../kernel/index.js';
import type { FilesService } from './objects.service.js';
import { toFileObject } from './objects.service.js';
import { objectsStore } from './objects.store.js';

/** How long the download links of an export work. */
const EXPORT_LINK_SECONDS = 7 * 24 * 3600;

/**
 * The person's files: export lists every object they uploaded, each with a signed download link;
 * erasure deletes them (records first, in one transaction, then their blobs), except in buckets
 * declared `keepOnErase`, whose objects stay their organization's with no owner; in record archives
 * (buckets declared `recordArchive`) export includes their records and erasure removes them. An organization
 * deleted takes all its objects' records and bytes with it.
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
      // Their records in archives of several people (old chat), whoever uploaded them.
      return { objects, archivedRecords: await files.archivedRecordsOf(subject.userId) };
    },
    eraseSubject: async (subject) => {
      // Archives naming them are rewritten without their records first: an erasure run again
      // after a crash finds what is left (every step is idempotent).
      await files.eraseArchivedRecordsOf(subject.userId);
      const rows = await withOwnerTransaction(db, (connection) =>
        objectsStore.eraseObjectsOwnedBy(connection, subject.userId, files.bucketsKeptOnErase()),
      );
      // Records are gone: a blob (or variant) whose deletion fails here is removed by the cleanup job.
      for (const row of rows) await files.deleteObjectBlobs(row);
    },
    // The organization's records, then its bytes: every blob of its scope, recorded or not (an
    // upload abandoned half-way). A blob whose deletion fails is left to the cleanup job, which
    // removes blobs no record names.
    organizationDeleted: async (tenantId) => {
      const rows = await withOwnerTransaction(db, (connection) =>
        objectsStore.eraseTenantObjects(connection, tenantId),
      );
      for (const row of rows) await files.deleteObjectBlobs(row);
      await files.deleteTenantBlobs(tenantId);
    },
  };
}
