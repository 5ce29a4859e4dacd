/** What the files scenarios' servers share: sizes, the bucket, the header that carries the path. */

/** Bytes of the downloaded file. */
export const DOWNLOAD_BYTES = 10 * 1024 * 1024;
/** Bytes of each uploaded file. */
export const UPLOAD_BYTES = 50 * 1024 * 1024;
/** The bucket of the Socle servers. */
export const BENCH_BUCKET = 'bench';
/**
 * A server tells the harness which path to load in this header of its `requestHeaders` (Socle's
 * signed URL is made at start and known only to it); the harness removes it from the requests.
 */
export const PATH_HEADER = 'x-bench-path';

/** The downloaded file's bytes: text, the same on both servers. */
export const downloadContent = () => Buffer.alloc(DOWNLOAD_BYTES, 'socle bench download\n');
