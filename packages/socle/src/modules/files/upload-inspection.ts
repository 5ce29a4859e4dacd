import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { fileTypeFromBuffer } from 'file-type';
import { isTypeAllowed } from './buckets.js';
import { filesErrors } from './files.errors.js';

/** What the inspection found once the last byte went through. */
export interface InspectedUpload {
  readonly size: number;
  readonly sha256: string;
  readonly contentType: string;
}

export interface UploadInspectionOptions {
  readonly maxBytes: number;
  /** Bytes left in the quota; crossing it fails with `files.quota_exceeded` (409). */
  readonly quota?: {
    readonly remainingBytes: number;
    readonly quotaBytes: number;
    readonly usedBytes: number;
  };
  readonly allowedTypes: readonly string[] | undefined;
  /** The client's `Content-Type`: believed only for text, which has no signature to sniff. */
  readonly declaredType: string | undefined;
}

/** Bytes file-type reads to recognize most formats (its `SNIFF_BYTES`). */
const SNIFF_BYTES = 4100;

/** Types whose bytes carry no signature: taken from the client's header when the head is text. */
const TEXT_TYPES = /^(text\/(plain|csv|markdown)|application\/json)$/;

/**
 * A pass-through stage that enforces a bucket's rules while the bytes stream: it holds back the
 * first bytes until their type is sniffed (`file-type`, the bytes' own signature, never the
 * client's header) and refused unless allowed (415), counts bytes against the size limit (413) and
 * the quota (409), and hashes everything (sha256). An error here fails the blob write, so nothing
 * is stored. `result()` is valid once the stream ended.
 */
export function createUploadInspection(options: UploadInspectionOptions): Transform & {
  result(): InspectedUpload;
} {
  const hash = createHash('sha256');
  let size = 0;
  let contentType: string | undefined;
  let head: Buffer[] = [];
  let headBytes = 0;

  const count = (chunk: Buffer): Error | undefined => {
    size += chunk.length;
    if (size > options.maxBytes) return filesErrors.tooLarge(options.maxBytes);
    const { quota } = options;
    if (quota !== undefined && size > quota.remainingBytes)
      return filesErrors.quotaExceeded(quota.quotaBytes, quota.usedBytes);
    hash.update(chunk);
    return undefined;
  };

  const decideType = async (bytes: Buffer): Promise<string> => {
    const sniffed = (await fileTypeFromBuffer(bytes))?.mime;
    const declared = options.declaredType?.split(';')[0]?.trim().toLowerCase();
    const detected =
      sniffed ??
      (declared !== undefined && TEXT_TYPES.test(declared) && !bytes.includes(0)
        ? declared
        : 'application/octet-stream');
    if (!isTypeAllowed(detected, options.allowedTypes))
      throw filesErrors.typeNotAllowed(detected, options.allowedTypes ?? []);
    return detected;
  };

  const releaseHead = async (stream: Transform): Promise<void> => {
    const bytes = Buffer.concat(head);
    head = [];
    contentType = await decideType(bytes);
    stream.push(bytes);
  };

  const inspection = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      const refused = count(chunk);
      if (refused !== undefined) return callback(refused);
      if (contentType !== undefined) return callback(null, chunk);
      head.push(chunk);
      headBytes += chunk.length;
      if (headBytes < SNIFF_BYTES) return callback();
      releaseHead(this).then(() => callback(), callback);
    },
    flush(callback: TransformCallback) {
      if (contentType !== undefined) return callback();
      if (headBytes === 0) return callback(filesErrors.emptyFile());
      releaseHead(this).then(() => callback(), callback);
    },
  });
  return Object.assign(inspection, {
    result(): InspectedUpload {
      if (contentType === undefined) throw filesErrors.uploadAborted();
      return { size, sha256: hash.digest('hex'), contentType };
    },
  });
}
