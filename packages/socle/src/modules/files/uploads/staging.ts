import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { type Config, parseS3Url, type S3Location } from '../../../kernel/index.js';

/**
 * Where uploads that are not complete yet (tus uploads, presigned uploads) wait before Socle
 * verifies them and commits them into their bucket: a directory beside the blobs (local backend),
 * or a `.staging/` prefix in the same S3 bucket (S3 backend). Nothing here is ever served: only a
 * committed object, whose record exists, is.
 */
export type StagingArea =
  | { readonly kind: 'local'; readonly directory: string }
  | {
      readonly kind: 's3';
      readonly location: S3Location;
      /** `<BLOB_URL prefix>.staging/`: keys under it are never objects. */
      readonly prefix: string;
      readonly client: S3Client;
    };

export function openStagingArea(config: Pick<Config, 'blobUrl' | 'dataDir' | 'baseDir'>): StagingArea {
  const dataDir = path.resolve(config.baseDir, config.dataDir);
  if (config.blobUrl === undefined || config.blobUrl.startsWith('file:'))
    return { kind: 'local', directory: path.join(dataDir, 'uploads') };
  const location = parseS3Url(config.blobUrl);
  return {
    kind: 's3',
    location,
    prefix: `${location.prefix}.staging/`,
    client: new S3Client({
      region: location.region,
      forcePathStyle: location.forcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      ...(location.endpoint === undefined ? {} : { endpoint: location.endpoint }),
    }),
  };
}
