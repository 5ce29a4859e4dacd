import { SocleError } from '../../kernel/index.js';

/** Errors of the files module: stable codes, rendered as problem+json. */
export const filesErrors = {
  bucketNotFound: (bucket: string) =>
    new SocleError('files.bucket_not_found', `There is no bucket "${bucket}"`, {
      status: 404,
      details: { bucket },
    }),
  notFound: () => new SocleError('files.not_found', 'There is no such file', { status: 404 }),
  tooLarge: (maxBytes: number) =>
    new SocleError('files.too_large', `The file is larger than this bucket's limit of ${maxBytes} bytes`, {
      status: 413,
      details: { maxBytes },
    }),
  typeNotAllowed: (detected: string, allowed: readonly string[]) =>
    new SocleError(
      'files.type_not_allowed',
      `The file's content is ${detected}, which this bucket does not accept (allowed: ${allowed.join(', ')})`,
      { status: 415, details: { detected, allowed } },
    ),
  quotaExceeded: (quotaBytes: number, usedBytes: number) =>
    new SocleError(
      'files.quota_exceeded',
      `Storing this file would exceed the storage quota of ${quotaBytes} bytes (${usedBytes} used)`,
      { status: 409, details: { quotaBytes, usedBytes } },
    ),
  emptyFile: () => new SocleError('files.empty', 'The request has no file content', { status: 400 }),
  signatureInvalid: () =>
    new SocleError('files.signature_invalid', 'The link is not valid (its signature does not match)', {
      status: 403,
    }),
  signatureExpired: () =>
    new SocleError('files.signature_expired', 'The link has expired: ask for a new one', { status: 403 }),
  rangeNotSatisfiable: (size: number) =>
    new SocleError('files.range_not_satisfiable', `The range is outside the file (${size} bytes)`, {
      status: 416,
      details: { size },
    }),
  invalidBucket: (name: string, message: string) =>
    new SocleError('files.invalid_bucket', `Bucket "${name}" ${message}`, { status: 500 }),
  duplicateBucket: (name: string) =>
    new SocleError('files.duplicate_bucket', `Bucket "${name}" is declared twice`, { status: 500 }),
  notPerUserBucket: (bucket: string) =>
    new SocleError(
      'files.not_per_user_bucket',
      `Bucket "${bucket}" holds organizations' files, not a person's: list them as the organization`,
      { status: 400, details: { bucket } },
    ),
  invalidCursor: () =>
    new SocleError('files.invalid_cursor', 'The cursor is not one this listing returned', { status: 400 }),
  uploadAborted: () =>
    new SocleError('files.upload_aborted', 'The upload was interrupted before the file was complete', {
      status: 400,
    }),
};
