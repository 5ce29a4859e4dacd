import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';

/** Credentials the test S3 server accepts (it never checks signatures made with them). */
export const TEST_S3_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * A local S3-compatible server (npm `s3rver`) speaking the real wire format, for the official
 * `@aws-sdk/client-s3` to talk to. It stores objects on disk, supports multipart uploads, ranges
 * and presigned URLs, but does not verify SigV4 signatures nor keep storage classes: tests against
 * it cannot prove those.
 */
export async function startS3Server(bucket: string): Promise<{
  readonly endpoint: string;
  /** A BLOB_URL for this server and bucket (a fresh key prefix each call). */
  blobUrl(prefix: string): string;
  close(): Promise<void>;
}> {
  const directory = mkdtempSync(path.join(tmpdir(), 'socle-s3-'));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    directory,
    silent: true,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const { port } = (await server.run()) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    blobUrl: (prefix) =>
      `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}&region=us-east-1&forcePathStyle=true`,
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
